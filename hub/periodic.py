"""A background job run every few seconds on its own thread, until stopped.

The hub's housekeeping (fleet alarms, the ledger's sync and signed heads) runs this way in
``coldloop hub serve``. Each round is one call; a database error is logged and retried next
round, any other error is logged with its traceback and the thread keeps going. Tests call the
round function directly with an explicit time instead of running the thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

logger = logging.getLogger(__name__)


class Periodic:
    """Calls ``work`` every ``every_s`` seconds (the first round at once) until :meth:`stop`."""

    def __init__(self, name: str, every_s: float, work: Callable[[], object], *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self._clock = clock  # seconds, for the health check's "how long since"
        self.every_s = every_s
        self.work = work
        self.rounds = 0
        self.failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started_at: float | None = None
        self._succeeded_at: float | None = None

    def status(self) -> dict[str, Any]:
        """How the job fares, for the health check: ``ok`` while it runs and a round has
        succeeded within three periods (or it started less than three periods ago)."""
        now = self._clock()
        last = self._succeeded_at if self._succeeded_at is not None else self._started_at
        ok = self.running and last is not None and now - last <= 3 * self.every_s
        ago = None if self._succeeded_at is None else round(now - self._succeeded_at, 1)
        return {"ok": ok, "rounds": self.rounds, "failures": self.failures,
                "last_success_s_ago": ago, "every_s": self.every_s}

    @property
    def running(self) -> bool:
        """Whether the thread is running."""
        return self._thread is not None

    def start(self) -> None:
        """Start the thread."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name} is already running")
        self._stop.clear()
        self._started_at = self._clock()
        self._thread = threading.Thread(target=self._run, name=f"coldloop-{self.name}",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to stop and wait for its current round to end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning("%s did not stop within %.0f s", self.name, timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.work()
                self.rounds += 1
                self._succeeded_at = self._clock()
            except SQLAlchemyError as err:  # the database is away: try again next round
                self.failures += 1
                logger.warning("%s failed, retrying in %.0f s: %s", self.name, self.every_s,
                               err)
            except Exception:  # a bug must not end the thread silently or take the hub down
                self.failures += 1
                logger.exception("%s failed", self.name)
            self._stop.wait(self.every_s)
