"""The background evaluator of fleet alarms, run by ``coldloop hub serve``.

A thread calls :func:`hub.alarms.evaluate_alarms` every ``FleetSettings.evaluate_every_s``,
one transaction per round. Tests call ``evaluate_alarms`` (or :meth:`FleetWatch.evaluate_once`)
with an explicit ``now`` instead of running the thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from hub.alarms import AlarmChanges, describe, evaluate_alarms
from hub.db import transaction
from hub.periodic import Periodic
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
        self._job = Periodic("fleet-watch", settings.evaluate_every_s, self.evaluate_once)

    @property
    def failures(self) -> int:
        """Rounds that failed since start."""
        return self._job.failures

    @property
    def running(self) -> bool:
        """Whether the evaluator thread is running."""
        return self._job.running

    def evaluate_once(self) -> AlarmChanges:
        """Run one evaluation in its own transaction and log what was raised or cleared."""
        with transaction(self.factory) as session:
            changes = evaluate_alarms(session, self.clock(), self.settings,
                                      listening_since=self.listening_since)
        for line in describe(changes.raised):
            logger.warning("fleet alarm raised: %s", line)
        for line in describe(changes.cleared):
            logger.info("fleet alarm cleared: %s", line)
        return changes

    def start(self) -> None:
        """Start the evaluator thread (the first round runs at once)."""
        self._job.start()

    def status(self) -> dict[str, Any]:
        """The health check's view of the job (``hub.periodic.Periodic.status``)."""
        return self._job.status()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to stop and wait for its current round to end."""
        self._job.stop(timeout)
