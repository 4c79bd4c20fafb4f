"""A virtual clock: simulated time that moves only when the scenario moves it."""

from __future__ import annotations

import threading
from datetime import UTC, datetime


class VirtualClock:
    """Callable returning epoch seconds; ``advance_to`` and ``advance`` move it forward only."""

    def __init__(self, start: datetime) -> None:
        self._now = start.timestamp()
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def now(self) -> datetime:
        """The virtual time as an aware datetime."""
        return datetime.fromtimestamp(self(), UTC)

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``."""
        if seconds < 0:
            raise ValueError("a virtual clock never goes back")
        with self._lock:
            self._now += seconds

    def advance_to(self, when: datetime) -> None:
        """Move time forward to ``when`` (no-op if it is already later)."""
        with self._lock:
            self._now = max(self._now, when.timestamp())
