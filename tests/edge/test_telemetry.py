"""Telemetry batches and the disk policy: downsample when low, drop (counted) when full."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from edge.outbox import DiskLevel, Outbox
from edge.recorder import Recorder
from edge.settings import TelemetrySettings
from edge.telemetry import TelemetryPump, per_minute
from firmware_sim.clock import VirtualClock
from protocols.probe_frame import ProbeFrame, Reading, ReadingStatus

T0 = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)
MB = 1024 * 1024


@pytest.fixture
def rig(tmp_path: Path):  # type: ignore[no-untyped-def]
    free = {"bytes": 10_000 * MB}
    outbox = Outbox(tmp_path / "o.db", telemetry_reserve_mb=200, event_reserve_mb=50,
                    free_bytes=lambda: free["bytes"])
    clock = VirtualClock(T0)
    recorder = Recorder("gw-1", "s1", outbox.next_boot(), outbox, clock)
    pump = TelemetryPump(recorder, TelemetrySettings(interval_s=60, batch_size=1000))
    return pump, outbox, clock, free


def _feed(pump: TelemetryPump, clock: VirtualClock, seconds: int) -> None:
    for i in range(seconds):
        frame = ProbeFrame("b1", i % 65536, i * 1000, (Reading(1, 2.0 + (i % 5) / 10,
                                                                ReadingStatus.OK),))
        pump.take("/dev/ttyB1", frame)
        clock.advance(1)


def _readings(outbox: Outbox) -> list[list[Any]]:
    return [r for p in outbox.due(1000, 1e12, 0) for r in json.loads(p.payload)["readings"]]


def test_normal_disk_keeps_every_reading(rig) -> None:  # type: ignore[no-untyped-def]
    pump, outbox, clock, _free = rig
    _feed(pump, clock, 120)
    pump.flush()
    assert len(_readings(outbox)) == 120 == pump.readings_committed
    assert outbox.disk_level() is DiskLevel.OK


def test_low_disk_keeps_per_minute_min_max_mean(rig) -> None:  # type: ignore[no-untyped-def]
    pump, outbox, clock, free = rig
    free["bytes"] = 120 * MB
    _feed(pump, clock, 120)
    pump.flush()
    readings = _readings(outbox)
    assert outbox.disk_level() is DiskLevel.LOW
    assert [r[0] for r in readings] == ["b1-1/min", "b1-1/max", "b1-1/mean"] * 2
    assert readings[0][2] == 2.0 and readings[1][2] == 2.4 and readings[2][2] == 2.2
    assert pump.readings_downsampled == 120


def test_full_disk_drops_telemetry_and_counts_it(rig) -> None:  # type: ignore[no-untyped-def]
    pump, outbox, clock, free = rig
    free["bytes"] = 10 * MB
    _feed(pump, clock, 30)
    pump.flush()
    assert outbox.depth() == 0 and pump.readings_dropped == 30


def test_per_minute_keeps_gaps_visible() -> None:
    assert per_minute([("p", 60.0, None), ("p", 61.0, None)]) == [("p/mean", 60.0, None)]
