"""Message schemas: round trips, versioning, unknown fields kept, clear errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import topics
from protocols.errors import MessageError, UnsupportedVersion
from protocols.messages import (
    Ack,
    AckEntry,
    AckStatus,
    Command,
    ConfigDocument,
    CustodyAction,
    CustodyEvent,
    FaultEvent,
    GatewayState,
    Grade,
    GradeEvent,
    MessageId,
    ScanEvent,
    Severity,
    TelemetryBatch,
    decode_as,
    decode_event,
    decode_for_topic,
)

TS = datetime(2026, 11, 2, 8, 0, 0, 123000, tzinfo=UTC)
SCAN = ScanEvent(id="gw-1:3:42", ts=TS, station="st-1", item_id="IT-000001-1",
                 tag_uid="a1b2c3d4", lot="L261101-1", gtin="06901234000115", core_temp_c=4.25)


def _scan_dict(**changes: object) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCAN.encode())
    data.update(changes)
    return data


@pytest.mark.parametrize("message", [
    SCAN,
    GradeEvent(id="gw-1:3:43", ts=TS, station="st-1", item_id="IT-1", scan_id="gw-1:3:42",
               grade=Grade.DISCOUNT, model_version="rules-0.1", scores={"discount": 0.8},
               features={"core_temp_c": 6.1, "x": None}, rule="core_temp_above_discount_limit"),
    CustodyEvent(id="gw-1:3:44", ts=TS, station="dock", item_id="IT-1",
                 action=CustodyAction.RECEIVED, actor="worker-3", location="sha-sc1"),
    FaultEvent(id="gw-1:3:45", ts=TS, station="st-1", component="probe", code="unplugged",
               severity=Severity.ERROR, detail="probe 2 reads the sentinel", historical=True),
])
def test_events_round_trip(message) -> None:  # type: ignore[no-untyped-def]
    event_type = message.type
    assert decode_event(event_type, message.encode()) == message


@pytest.mark.parametrize("message", [
    TelemetryBatch(id="gw-1:1:9", ts=TS, readings=[("p1", 1.5, 3.25), ("p2", 1.5, None)]),
    GatewayState(online=True, boot=4, software="coldloop-edge/0.1.0", backlog=3),
    Ack(ts=TS, entries=[AckEntry(id="gw-1:1:1", status=AckStatus.DUPLICATE)]),
    Command(id="cmd-1", ts=TS, args={"manifest": "v12"}),
    ConfigDocument(version=3, settings={"mqtt": {"inflight": 50}}),
])
def test_other_messages_round_trip(message) -> None:  # type: ignore[no-untyped-def]
    assert decode_as(type(message), message.encode()) == message


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12),
       st.one_of(st.integers(), st.booleans(), st.text(max_size=20, alphabet=st.characters(
           blacklist_characters="\x00", blacklist_categories=["Cs"]))))  # storable text
def test_unknown_fields_within_major_are_kept(key: str, value: object) -> None:
    data = _scan_dict(v="1.9", **{f"x_{key}": value})
    decoded = decode_event("scan", json.dumps(data))
    assert json.loads(decoded.encode())[f"x_{key}"] == value


@pytest.mark.parametrize("version", ["2.0", "0.9", "10.1"])
def test_unknown_major_is_rejected_clearly(version: str) -> None:
    with pytest.raises(UnsupportedVersion, match=f"major version {int(version.split('.')[0])}"):
        decode_event("scan", json.dumps(_scan_dict(v=version)))


@pytest.mark.parametrize(("payload", "message"), [
    (b"not json", "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (json.dumps({k: v for k, v in _scan_dict().items() if k != "v"}), "missing schema version"),
    (json.dumps(_scan_dict(v="one")), "not MAJOR.MINOR"),
    (json.dumps(_scan_dict(id="gw-1-42")), "not gateway:boot:seq"),
    (json.dumps(_scan_dict(item_id="")), "item_id"),
    (json.dumps(_scan_dict(core_temp_c=400)), "core_temp_c"),
    (json.dumps(_scan_dict(core_temp_c="warm")), "core_temp_c"),
    (json.dumps(_scan_dict(ts="2026-11-02T08:00:00")), "ts"),  # naive time: whose clock?
    (json.dumps(_scan_dict(ts="0001-01-01T00:00:00+01:00")), "ts: .*outside the accepted"),
    # fields the schema does not know are kept, so they must be storable too
    (json.dumps(_scan_dict(note="a\x00b")), "note: contains a NUL character"),
    (json.dumps(_scan_dict(note=["ok", float("inf")])), r"note\.1: inf is not a JSON number"),
    (json.dumps(_scan_dict(note={"\ud800": 1})), "the name holds a lone UTF-16 surrogate"),
    (json.dumps(_scan_dict(ts="2100-01-01T00:00:00Z")), "ts: .*outside the accepted"),
    (json.dumps(_scan_dict(gtin="123")), "gtin"),
    (json.dumps(_scan_dict(station="st\u00001")), "station"),
    (json.dumps(_scan_dict(core_temp_c=float("nan"))), "core_temp_c"),
    (json.dumps(_scan_dict(type="grade")), "type"),
    (b"{" + b" " * 300_000 + b"}", "over the"),
])
def test_bad_payloads_name_the_problem(payload: bytes | str, message: str) -> None:
    with pytest.raises(MessageError, match=message):
        decode_event("scan", payload)


def test_a_gateway_clock_that_never_synced_is_still_in_range() -> None:
    assert decode_event("scan", json.dumps(_scan_dict(ts="1970-01-01T00:02:00Z"))).ts.year == 1970


@pytest.mark.parametrize(("reading", "message"), [
    (["p-1", -1.0, 4.0], "greater than or equal to 0"),
    (["p-1", 1e30, 4.0], "less than 4102444800"),
    (["p\x001", 1.0e9, 4.0], "readings.0.0: contains a NUL character"),
])
def test_telemetry_readings_carry_times_in_range_and_printable_probe_ids(
        reading: list[object], message: str) -> None:
    payload = {"v": "1.1", "id": "gw-1:3:50", "ts": TS.isoformat(), "readings": [reading]}
    with pytest.raises(MessageError, match=message):
        decode_as(TelemetryBatch, json.dumps(payload))


def test_message_must_come_from_the_topics_gateway() -> None:
    topic = topics.parse(topics.event("s1", "gw-2", "scan"))
    with pytest.raises(MessageError, match="belongs to gateway 'gw-1'"):
        decode_for_topic(topic, SCAN.encode())


def test_payload_decoded_by_topic_kind() -> None:
    topic = topics.parse(topics.telemetry("s1", "gw-1"))
    batch = TelemetryBatch(id="gw-1:1:2", ts=TS, readings=[("p", 0.0, 1.0)])
    assert decode_for_topic(topic, batch.encode()) == batch
    with pytest.raises(MessageError, match="readings"):
        decode_for_topic(topic, TelemetryBatch(id="gw-1:1:2", ts=TS, readings=[("p", 0.0, 1.0)])
                         .encode().replace(b'[["p",0.0,1.0]]', b"[]"))


@given(st.from_regex(r"[a-z0-9][a-z0-9_-]{0,31}", fullmatch=True),
       st.integers(0, 10**9 - 1), st.integers(0, 10**15 - 1))
def test_message_id_round_trip(gateway: str, boot: int, seq: int) -> None:
    mid = MessageId(gateway, boot, seq)
    assert MessageId.parse(str(mid)) == mid


@pytest.mark.parametrize("text", ["", "gw:1", "gw:1:2:3", "GW:1:2", "gw:-1:2", "gw:a:2"])
def test_bad_message_ids(text: str) -> None:
    with pytest.raises(MessageError, match="gateway:boot:seq"):
        MessageId.parse(text)
