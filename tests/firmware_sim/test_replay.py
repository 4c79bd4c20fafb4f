"""Captures replayed into simulated devices under the real gateway and hub."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Literal

import pytest
from sqlalchemy import create_engine, select

from firmware_sim import capture
from firmware_sim.capture import CardPresented, PinChange, SerialBytes
from firmware_sim.replay import replay_capture
from firmware_sim.shifts import record_shift
from hub.models import FaultRecord, Scan
from tests.conftest import CAPTURES


def _rows(data_dir: Path, *columns):  # type: ignore[no-untyped-def]
    engine = create_engine(f"sqlite:///{data_dir / 'hub.db'}")
    with engine.connect() as conn:
        rows = conn.execute(select(*columns).order_by(columns[0])).all()
    engine.dispose()
    return rows


@pytest.mark.parametrize("name", ["normal_shift", "outage", "faulty_probe"])
def test_same_capture_twice_gives_identical_hub_output(replay, name: str) -> None:  # type: ignore[no-untyped-def]
    first, _ = replay(name)
    second, _ = replay(name)
    assert first.digest == second.digest
    assert first.hub_records == second.hub_records
    assert first.scans == first.hub_records["scans"] == 12
    assert first.pin_mismatches == []  # the lamps and gate did what the capture recorded


def test_outage_backlog_is_stored_and_flagged_historical(replay) -> None:  # type: ignore[no-untyped-def]
    _, data_dir = replay("outage")
    scans = _rows(data_dir, Scan.ts, Scan.historical)
    start = capture.load(CAPTURES / "outage.jsonl").header.started_at.timestamp()
    flags = {round(ts.timestamp() - start): historical for ts, historical in scans}
    # The hub was down from t=150 s to t=270 s: the scans in between are backlog.
    assert flags == {t: 150 < t < 270 for t in flags}
    assert sum(flags.values()) == 3


def test_faulty_probe_faults_reach_the_hub(replay) -> None:  # type: ignore[no-untyped-def]
    _, data_dir = replay("faulty_probe")
    codes = Counter(code for code, in _rows(data_dir, FaultRecord.code))
    assert set(codes) >= {"noise", "truncated", "corrupt", "unplugged", "stuck",
                          "disconnected", "reconnected", "sensor_error"}


def test_a_tampered_pin_is_reported(tmp_path: Path, broker) -> None:  # type: ignore[no-untyped-def]
    lines = (CAPTURES / "normal_shift.jsonl").read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if '"kind":"pin"' in line)
    event = json.loads(lines[index])
    event["state"] = 1 - event["state"]
    lines[index] = json.dumps(event)
    result = replay_capture(capture.parse_lines(lines), tmp_path, broker=broker.url)
    assert len(result.pin_mismatches) == 1
    assert f"pin {event['pin']}" in result.pin_mismatches[0]


def test_recording_a_scripted_shift_reproduces_the_shipped_capture(tmp_path: Path) -> None:
    out = tmp_path / "normal.jsonl"
    record_shift("normal_shift", out)
    made, shipped = capture.load(out), capture.load(CAPTURES / "normal_shift.jsonl")

    Cards = list[tuple[float, str, str]]
    Pins = list[tuple[float, int, Literal[0, 1]]]

    def content(cap: capture.Capture) -> tuple[bytes, Cards, Pins]:
        serial = b"".join(e.raw for e in cap.events if isinstance(e, SerialBytes))
        cards = [(e.t, e.uid, e.data) for e in cap.events if isinstance(e, CardPresented)]
        pins = [(e.t, e.pin, e.state) for e in cap.events if isinstance(e, PinChange)]
        return serial, cards, pins

    assert content(made) == content(shipped)
    assert made.header == shipped.header
