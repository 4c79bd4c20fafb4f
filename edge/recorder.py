"""Turn what a station saw into numbered protocol messages committed to the outbox."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from edge.outbox import MessageClass, NewMessage, Outbox
from protocols import topics
from protocols.messages import (
    ClockState,
    CustodyEvent,
    FaultEvent,
    GradeEvent,
    HealthReport,
    MessageId,
    ScanEvent,
    TelemetryBatch,
)
from protocols.topics import EventType

EVENT_TYPES: dict[type[Any], EventType] = {
    ScanEvent: EventType.SCAN,
    GradeEvent: EventType.GRADE,
    CustodyEvent: EventType.CUSTODY,
    FaultEvent: EventType.FAULT,
}
Clock = Callable[[], float]
_COUNTS = frozenset({"outbox_depth", "dead_letters", "reader_errors"})


class Recorder:
    """Allocates message ids (gateway:boot:seq) and commits messages durably."""

    def __init__(self, gateway: str, site: str, boot: int, outbox: Outbox,
                 clock: Clock, is_live: Callable[[], bool] = lambda: True,
                 clock_state: Callable[[], ClockState] = lambda: ClockState.SYNCED) -> None:
        self.gateway, self.site, self.boot = gateway, site, boot
        self.outbox = outbox
        self.clock = clock
        self.is_live = is_live
        self.clock_state = clock_state
        self.events_committed = 0
        self._seq = itertools.count(1)
        self._lock = threading.Lock()

    def next_id(self) -> str:
        """Allocate the next message id of this boot."""
        with self._lock:
            return str(MessageId(self.gateway, self.boot, next(self._seq)))

    def now(self) -> datetime:
        """The gateway clock as an aware datetime."""
        return datetime.fromtimestamp(self.clock(), UTC)

    def common(self) -> dict[str, Any]:
        """Fields every event carries: id, time, clock state, and whether it is backlog."""
        return {"id": self.next_id(), "ts": self.now(), "clock": self.clock_state(),
                "historical": not self.is_live()}

    def commit_events(self, events: Sequence[ScanEvent | GradeEvent | CustodyEvent | FaultEvent]
                      ) -> None:
        """Commit events in one durable transaction (before any light turns on)."""
        self.outbox.put([
            NewMessage(e.id, MessageClass.EVENT,
                       topics.event(self.site, self.gateway, EVENT_TYPES[type(e)]), e.encode())
            for e in events], self.clock())
        self.events_committed += len(events)

    def commit_health(self, values: dict[str, float], uptime_s: float) -> HealthReport:
        """Commit one health report (it leaves the outbox like telemetry)."""
        fields: dict[str, Any] = {k: (int(v) if k in _COUNTS else v) for k, v in values.items()}
        report = HealthReport.model_validate({
            "id": self.next_id(), "ts": self.now(), "historical": not self.is_live(),
            "clock": self.clock_state(), "uptime_s": uptime_s, **fields})
        self.outbox.put([NewMessage(report.id, MessageClass.TELEMETRY,
                                    topics.health(self.site, self.gateway), report.encode())],
                        self.clock())
        return report

    def commit_telemetry(self, readings: Sequence[tuple[str, float, float | None]]
                         ) -> TelemetryBatch:
        """Commit one batch of probe readings."""
        batch = TelemetryBatch(id=self.next_id(), ts=self.now(), readings=list(readings),
                               historical=not self.is_live())
        self.outbox.put([NewMessage(batch.id, MessageClass.TELEMETRY,
                                    topics.telemetry(self.site, self.gateway), batch.encode())],
                        self.clock())
        return batch
