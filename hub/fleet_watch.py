"""The background evaluator of fleet alarms, run by ``coldloop hub serve``.

A thread calls :func:`hub.alarms.evaluate_alarms` every ``FleetSettings.evaluate_every_s``,
one transaction per round. Tests call ``evaluate_alarms`` (or :meth:`FleetWatch.evaluate_once`)
with an explicit ``now`` instead of running the thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from hub.alarms import AlarmChanges, describe, evaluate_alarms
from hub.db import transaction
from hub.settings import FleetSettings

logger = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class FleetWatch:
    """Evaluates fleet alarms periodically on its own thread until :meth:`stop`."""

    def __init__(self, factory: sessionmaker[Session], settings: FleetSettings, *,
                 clock: Callable[[], datetime] = _utcnow) -> None:
        self.factory = factory
        self.settings = settings
        self.clock = clock
        self.listening_since = clock()  # the hub starts receiving with this process
        self.rounds = 0
        self.failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def evaluate_once(self) -> AlarmChanges:
        """Run one evaluation in its own transaction and log what was raised or cleared."""
        with transaction(self.factory) as session:
            changes = evaluate_alarms(session, self.clock(), self.settings,
                                      listening_since=self.listening_since)
        self.rounds += 1
        for line in describe(changes.raised):
            logger.warning("fleet alarm raised: %s", line)
        for line in describe(changes.cleared):
            logger.info("fleet alarm cleared: %s", line)
        return changes

    def start(self) -> None:
        """Start the evaluator thread (the first round runs at once)."""
        if self._thread is not None:
            raise RuntimeError("the fleet watch is already running")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="coldloop-fleet-watch",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to stop and wait for its current round to end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning("fleet watch did not stop within %.0f s", timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.evaluate_once()
            except SQLAlchemyError as err:  # the database is away: try again next round
                self.failures += 1
                logger.warning("fleet alarm evaluation failed, retrying in %.0f s: %s",
                               self.settings.evaluate_every_s, err)
            except Exception:  # a bug must not end the thread silently or take the hub down
                self.failures += 1
                logger.exception("fleet alarm evaluation failed")
            self._stop.wait(self.settings.evaluate_every_s)
