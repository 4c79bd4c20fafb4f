"""The background SLA evaluator of ``coldloop hub serve``: warnings, breaches and the queue.

Every ``every_s`` seconds, one transaction: :func:`hub.tickets.shifts.apply_shifts` (planned
shifts start and end), :func:`hub.tickets.sla.evaluate_sla`, then
:func:`hub.tickets.routing.route_queue` (queued tickets are offered again each round). All read
only stored rows and the clock, so a restarted hub carries on where the last one stopped. Tests call
:meth:`SlaWatch.evaluate_once` with a clock instead of running the thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from hub.db import transaction
from hub.periodic import Periodic
from hub.tickets.policy import DEFAULT_CONFIG, TicketConfig
from hub.tickets.routing import route_queue
from hub.tickets.shifts import apply_shifts
from hub.tickets.sla import SlaReport, evaluate_sla

logger = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SlaWatch:
    """Evaluates SLA clocks and works the queue periodically until :meth:`stop`."""

    def __init__(self, factory: sessionmaker[Session], *, every_s: float = 60.0,
                 config: TicketConfig = DEFAULT_CONFIG,
                 clock: Callable[[], datetime] = _utcnow) -> None:
        self.factory = factory
        self.config = config
        self.clock = clock
        self._job = Periodic("sla-watch", every_s, self.evaluate_once)

    def evaluate_once(self) -> SlaReport:
        """Run one round in its own transaction."""
        now = self.clock()
        with transaction(self.factory) as session:
            apply_shifts(session, now, config=self.config)  # logs what it changed
            report = evaluate_sla(session, now, self.config)
            assigned = route_queue(session, now, config=self.config)
        if report.breaches or assigned:
            logger.info("sla: %d breaches escalated, %d warnings, %d queued tickets assigned",
                        len(report.breaches), len(report.warnings), assigned)
        return report

    def start(self) -> None:
        """Start the thread (the first round runs at once)."""
        self._job.start()

    def status(self) -> dict[str, Any]:
        """The health check's view of the job (``hub.periodic.Periodic.status``)."""
        return self._job.status()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread after its current round."""
        self._job.stop(timeout)
