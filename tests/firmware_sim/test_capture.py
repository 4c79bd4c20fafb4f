"""The capture format: round trip, and every mistake named by line and field."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest

from firmware_sim import capture
from firmware_sim.capture import CaptureError, CardPresented, CardRemoved, LinkChange, PinChange

HEADER = capture.header("gw-1", "site-a", ["st-1"], datetime(2026, 11, 2, 6, tzinfo=UTC))
DATA = "434c" + "00" * 46


def _lines(*events: object) -> list[str]:
    return [json.dumps(HEADER.model_dump(mode="json"))] + [json.dumps(e) for e in events]


def test_writer_and_parser_round_trip() -> None:
    out = io.StringIO()
    ticks = iter([100.0, 101.5, 102.0, 103.25, 104.0, 104.0])
    writer = capture.CaptureWriter(out, HEADER, lambda: next(ticks))
    writer.write(CardPresented(t=writer.now(), source="rfid:st-1", uid="a1b2c3d4", data=DATA))
    writer.write(capture.serial_event(writer.now(), "st-1", b"$CLT,noise\xff\r\n"))
    writer.write(CardRemoved(t=writer.now(), source="rfid:st-1"))
    writer.write(PinChange(t=writer.now(), source="gpio:st-1", pin=17, state=1))
    writer.write(LinkChange(t=writer.now(), up=False))
    parsed = capture.parse_lines(out.getvalue().splitlines())
    assert parsed.header == HEADER
    assert [e.kind for e in parsed.events] == ["card_presented", "bytes", "card_removed", "pin",
                                              "link"]
    serial = parsed.events[1]
    assert isinstance(serial, capture.SerialBytes)
    assert serial.raw == b"$CLT,noise\xff\r\n"
    assert parsed.duration_s == 4.0
    assert list(capture.dump(parsed)) == out.getvalue().splitlines()


@pytest.mark.parametrize(("lines", "message"), [
    ([], "empty capture"),
    (["{not json"], ":1: not JSON"),
    (["[" * 100_000 + "]" * 100_000], ":1: not JSON: nested too deeply"),
    (['{"format": "other/1"}'], ":1: bad header"),
    (_lines({"t": 1, "kind": "card_presented", "source": "rfid:st-1", "uid": "xyz",
             "data": DATA}), ":2: bad event 'card_presented': card_presented.uid"),
    (_lines({"t": 1, "kind": "bytes", "source": "serial:st-1", "data": "%%%"}),
     ":2: data is not base64"),
    (_lines({"t": 1, "kind": "card_removed", "source": "rfid:st-9"}), "unknown station 'st-9'"),
    (_lines({"t": 2, "kind": "link", "up": True}, {"t": 1, "kind": "link", "up": False}),
     ":3: time goes backwards"),
    (_lines({"t": -1, "kind": "link", "up": True}), ":2: bad event 'link': link.t"),
    (_lines({"t": 1, "kind": "smell", "source": "nose"}), ":2: bad event 'smell'"),
    (_lines({"t": 1, "kind": "pin", "source": "gpio:st-1", "pin": 17, "state": 2}), "state"),
    (_lines([1, 2]), ":2: expected a JSON object"),
    # what a replay could not build a gateway from, or a clock from (once tracebacks)
    ([json.dumps(HEADER.model_dump(mode="json") | {"stations": ["ST 1!"]})], "stations.0"),
    ([json.dumps(HEADER.model_dump(mode="json") | {"stations": ["st-1", "st-1"]})],
     "named more than once"),
    ([json.dumps(HEADER.model_dump(mode="json") | {"gateway": "GW bad"})], "gateway"),
    ([json.dumps(HEADER.model_dump(mode="json") | {"started_at": "9999-12-31T00:00:00Z"})],
     "outside the accepted range"),
    (_lines({"t": 1e12, "kind": "link", "up": True}), ":2: bad event 'link': link.t"),
])
def test_bad_captures_name_line_and_field(lines: list[str], message: str) -> None:
    with pytest.raises(CaptureError, match=message):
        capture.parse_lines(lines, "shift.jsonl")


def test_load_refuses_non_utf8(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(CaptureError, match="not UTF-8"):
        capture.load(path)
