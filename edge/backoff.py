"""Reconnect delays: exponential, capped, with jitter so a fleet does not reconnect in step."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delay before the next attempt: a random point in [base/2, base], base doubling to a cap."""

    min_s: float
    max_s: float
    rng: random.Random = field(default_factory=random.Random)
    attempts: int = 0

    def next_delay(self) -> float:
        """The delay before the next attempt (and count the attempt)."""
        base = min(self.max_s, self.min_s * 2 ** min(self.attempts, 32))
        self.attempts += 1
        return self.rng.uniform(base / 2, base)

    def reset(self) -> None:
        """Start over after a success."""
        self.attempts = 0
