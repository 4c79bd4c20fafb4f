"""A virtual clock: simulated time that moves only when the scenario moves it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime


class VirtualClock:
    """Callable returning epoch seconds; ``advance_to`` and ``advance`` move it forward only."""

    def __init__(self, start: datetime, *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._now = start.timestamp()
        self._lock = threading.Lock()
        self._monotonic = monotonic
        self._live_since: float | None = None  # monotonic() when it began to follow real time

    def __call__(self) -> float:
        with self._lock:
            if self._live_since is None:
                return self._now
            return self._now + (self._monotonic() - self._live_since)

    def go_live(self) -> None:
        """From now on move with real time, from where the scenario left it (an interactive
        demo after its scenario: SLA clocks run, "ago" grows). It is never moved by hand
        again."""
        with self._lock:
            self._live_since = self._monotonic()

    def now(self) -> datetime:
        """The virtual time as an aware datetime."""
        return datetime.fromtimestamp(self(), UTC)

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``."""
        if seconds < 0:
            raise ValueError("a virtual clock never goes back")
        with self._lock:
            self._check_not_live()
            self._now += seconds

    def advance_to(self, when: datetime) -> None:
        """Move time forward to ``when`` (no-op if it is already later)."""
        with self._lock:
            self._check_not_live()
            self._now = max(self._now, when.timestamp())

    def _check_not_live(self) -> None:
        if self._live_since is not None:
            raise RuntimeError("the clock follows real time now; it cannot be moved")
