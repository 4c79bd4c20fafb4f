"""Probe-board output -> telemetry batches and fault events, committed through the recorder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edge.errors import OutboxFull
from edge.outbox import DiskLevel
from edge.probe import FaultCode, ProbeFault
from edge.recorder import Recorder
from edge.settings import TelemetrySettings
from protocols.messages import FaultEvent, Severity
from protocols.probe_frame import ProbeFrame, ReadingStatus

SEVERITY = {FaultCode.DISCONNECTED: Severity.ERROR, FaultCode.UNPLUGGED: Severity.ERROR,
            FaultCode.SENSOR_ERROR: Severity.ERROR, FaultCode.STUCK: Severity.ERROR,
            FaultCode.STALE: Severity.WARNING, FaultCode.RECONNECTED: Severity.INFO}


@dataclass
class _Repeats:
    last_sent: float
    suppressed: int = 0


@dataclass
class TelemetryPump:
    """Buffers probe readings into batches; turns probe faults into (rate-limited) fault events."""

    recorder: Recorder
    settings: TelemetrySettings
    station_of_port: dict[str, str] = field(default_factory=dict)
    readings_committed: int = 0
    batches_committed: int = 0
    readings_downsampled: int = 0  # raw readings folded into per-minute aggregates
    readings_dropped: int = 0  # lost to a full disk
    _buffer: list[tuple[str, float, float | None]] = field(default_factory=list)
    _last_flush: float | None = None
    _repeats: dict[tuple[str, str, int | None], _Repeats] = field(default_factory=dict)

    def take(self, port: str, item: ProbeFrame | ProbeFault) -> None:
        """Account for one thing the board on ``port`` said."""
        now = self.recorder.clock()
        if isinstance(item, ProbeFrame):
            for reading in item.readings:
                value = reading.temp_c if reading.status is ReadingStatus.OK else None
                self._buffer.append((f"{item.board_id}-{reading.probe}", now, value))
        else:
            self._fault(port, Path(port).name, item, now)

    def flush_due(self) -> None:
        """Commit the buffered readings when the batch is full or the interval has passed."""
        now = self.recorder.clock()
        if self._last_flush is None:
            self._last_flush = now
        if self._buffer and (len(self._buffer) >= self.settings.batch_size
                             or now - self._last_flush >= self.settings.interval_s):
            self.flush()

    def flush(self) -> None:
        """Commit whatever is buffered, as the disk allows (see OutboxSettings)."""
        level = self.recorder.outbox.disk_level()
        if level is DiskLevel.FULL:
            self.readings_dropped += len(self._buffer)
            self._buffer.clear()
        elif level is DiskLevel.LOW:
            self.readings_downsampled += len(self._buffer)
            self._buffer[:] = per_minute(self._buffer)
        while self._buffer:
            batch = self._buffer[:self.settings.batch_size]
            try:
                self.recorder.commit_telemetry(batch)
            except OutboxFull:
                self.readings_dropped += len(self._buffer)
                self._buffer.clear()
                break
            self.readings_committed += len(batch)
            self.batches_committed += 1
            del self._buffer[:len(batch)]
        self._last_flush = self.recorder.clock()

    def _fault(self, port: str, board_id: str, fault: ProbeFault, now: float) -> None:
        key = (port, str(fault.code), fault.probe)
        seen = self._repeats.get(key)
        if seen is not None and now - seen.last_sent < self.settings.fault_repeat_s:
            seen.suppressed += 1
            return
        # The board's name, not its full device path: stable across machines and replays.
        detail = f"{board_id}: {fault.detail.replace(port, board_id)}"
        if seen is not None and seen.suppressed:
            detail += f" (+{seen.suppressed} more since the last report)"
        self._repeats[key] = _Repeats(now)
        station = self.station_of_port.get(port, board_id)
        event = FaultEvent(**self.recorder.common(), station=station,
                           component=f"probe:{board_id}"[:64], code=str(fault.code),
                           severity=SEVERITY.get(fault.code, Severity.WARNING),
                           detail=detail[:500])
        self.recorder.commit_events([event])


def per_minute(readings: list[tuple[str, float, float | None]]
               ) -> list[tuple[str, float, float | None]]:
    """Fold readings into per-probe, per-minute min/max/mean (probe ids get /min /max /mean)."""
    groups: dict[tuple[str, int], list[float]] = {}
    for probe, ts, value in readings:
        values = groups.setdefault((probe, int(ts // 60)), [])
        if value is not None:
            values.append(value)
    out: list[tuple[str, float, float | None]] = []
    for (probe, minute), values in groups.items():
        at = minute * 60.0
        if not values:
            out.append((f"{probe}/mean", at, None))
            continue
        out += [(f"{probe}/min", at, min(values)), (f"{probe}/max", at, max(values)),
                (f"{probe}/mean", at, round(sum(values) / len(values), 3))]
    return out
