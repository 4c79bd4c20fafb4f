"""store_batch against real databases: SQLite always, PostgreSQL when COLDLOOP_TEST_PG is set."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, sessionmaker

from hub.db import transaction
from hub.ingest import IngestResult, Received, store_batch
from hub.models import (
    CustodyRecord,
    FaultRecord,
    Gateway,
    GradeRecord,
    Item,
    QuarantinedMessage,
    Scan,
    StoredMessage,
    TelemetryBatchRecord,
)
from hub.telemetry import decode_document, iter_batches
from protocols import topics
from protocols.messages import (
    AckStatus,
    ClockState,
    CustodyAction,
    CustodyEvent,
    FaultEvent,
    GatewayState,
    Grade,
    GradeEvent,
    ScanEvent,
    Severity,
    TelemetryBatch,
)

SITE, GW = "site-a", "gw-a"
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def factory(hub_db: sessionmaker[Session]) -> sessionmaker[Session]:
    """A session factory over a freshly migrated, empty database."""
    return hub_db


def scan(seq: int, item_id: str = "ITEM-1", gateway: str = GW, **fields: Any) -> ScanEvent:
    return ScanEvent(id=f"{gateway}:1:{seq}", ts=T0 + timedelta(seconds=seq), station="st-1",
                     item_id=item_id, tag_uid="04a1b2c3d4", lot="L2603", gtin="04012345678901",
                     core_temp_c=4.5, **fields)


def grade(seq: int, item_id: str = "ITEM-1", value: str = "discount", **fields: Any) -> GradeEvent:
    return GradeEvent(id=f"{GW}:1:{seq}", ts=T0 + timedelta(seconds=seq), station="st-1",
                      item_id=item_id, scan_id=f"{GW}:1:{seq - 1}", grade=Grade(value),
                      model_version="grader-3", scores={"resell": 0.2, "discount": 0.7},
                      features={"core_temp_c": 4.5, "age_h": None}, **fields)


def custody(seq: int) -> CustodyEvent:
    return CustodyEvent(id=f"{GW}:1:{seq}", ts=T0, station="st-1", item_id="ITEM-1",
                        action=CustodyAction.RECEIVED, actor="sorter-7", location="sc-north")


def fault(seq: int) -> FaultEvent:
    return FaultEvent(id=f"{GW}:1:{seq}", ts=T0, station="st-1", component="rfid",
                      code="tag_unreadable", severity=Severity.ERROR, detail="CRC error x3")


def tlm(seq: int, count: int = 3) -> TelemetryBatch:
    readings: list[tuple[str, float, float | None]] = [
        ("probe-1", 1_772_352_000.0 + i, 3.5 + i / 10) for i in range(count)]
    readings[-1] = ("probe-2", readings[-1][1], None)
    return TelemetryBatch(id=f"{GW}:1:{seq}", ts=T0, readings=readings)


def on(topic: str, payload: bytes | Any, at: datetime = T0) -> Received:
    """A received message; ``payload`` is raw bytes or a message to encode."""
    raw = payload if isinstance(payload, bytes) else payload.encode()
    return Received(topic, raw, at)


def evt(message: Any, site: str = SITE, gateway: str = GW) -> Received:
    return on(topics.event(site, gateway, message.type), message)


def store(factory: sessionmaker[Session], batch: Sequence[Received]) -> IngestResult:
    with transaction(factory) as session:
        return store_batch(session, batch)


def count(factory: sessionmaker[Session], model: type[Any]) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def statuses(result: IngestResult, key: tuple[str, str] = (SITE, GW)) -> list[tuple[str, str]]:
    return [(entry.id, entry.status.value) for entry in result.acks.get(key, [])]


def test_stores_each_event_kind_and_acks_it(factory: sessionmaker[Session]) -> None:
    result = store(factory, [evt(scan(1)), evt(grade(2)), evt(custody(3)), evt(fault(4))])

    assert statuses(result) == [(f"{GW}:1:{n}", "stored") for n in (1, 2, 3, 4)]
    assert (result.stored, result.duplicates, result.quarantined) == (4, 0, 0)
    with factory() as session:
        kinds = dict(session.execute(select(StoredMessage.message_id, StoredMessage.kind)).all())
        assert kinds == {f"{GW}:1:1": "scan", f"{GW}:1:2": "grade",
                         f"{GW}:1:3": "custody", f"{GW}:1:4": "fault"}
        stored_scan = session.get_one(Scan, f"{GW}:1:1")
        assert (stored_scan.gateway_id, stored_scan.item_id, stored_scan.core_temp_c,
                stored_scan.clock, stored_scan.historical) == (GW, "ITEM-1", 4.5, "synced", False)
        assert stored_scan.ts == T0 + timedelta(seconds=1)
        stored_grade = session.get_one(GradeRecord, f"{GW}:1:2")
        assert (stored_grade.grade, stored_grade.scan_id) == ("discount", f"{GW}:1:1")
        assert stored_grade.features == {"core_temp_c": 4.5, "age_h": None}
        stored_custody = session.get_one(CustodyRecord, f"{GW}:1:3")
        assert (stored_custody.action, stored_custody.actor) == ("received", "sorter-7")
        stored_fault = session.get_one(FaultRecord, f"{GW}:1:4")
        assert (stored_fault.code, stored_fault.severity) == ("tag_unreadable", "error")


def test_timestamps_are_stored_in_utc(factory: sessionmaker[Session]) -> None:
    shanghai = timezone(timedelta(hours=8))
    event_ts = datetime(2026, 3, 1, 16, 0, tzinfo=shanghai)
    message = ScanEvent(**{**scan(1).model_dump(), "ts": event_ts})
    store(factory, [on(topics.event(SITE, GW, "scan"), message, at=event_ts)])

    with factory() as session:
        stored = session.get_one(Scan, f"{GW}:1:1")
        received = session.get_one(StoredMessage, f"{GW}:1:1").received_at
    assert stored.ts == event_ts
    assert stored.ts.utcoffset() == timedelta(0)
    assert stored.ts.hour == 8
    assert received.hour == 8


def test_received_at_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Received("coldloop/v1/a/b/tlm", b"{}", datetime(2026, 3, 1, 8, 0))


def test_duplicate_across_batches_is_acked_and_stored_once(
        factory: sessionmaker[Session]) -> None:
    store(factory, [evt(scan(1))])
    again = store(factory, [evt(scan(1)), evt(scan(2))])

    assert statuses(again) == [(f"{GW}:1:1", "duplicate"), (f"{GW}:1:2", "stored")]
    assert (again.stored, again.duplicates) == (1, 1)
    assert count(factory, Scan) == 2
    assert count(factory, StoredMessage) == 2


def test_duplicate_within_one_batch(factory: sessionmaker[Session]) -> None:
    result = store(factory, [evt(scan(1)), evt(scan(1)), evt(fault(2)), evt(fault(2))])

    assert statuses(result) == [(f"{GW}:1:1", "stored"), (f"{GW}:1:1", "duplicate"),
                                (f"{GW}:1:2", "stored"), (f"{GW}:1:2", "duplicate")]
    assert count(factory, Scan) == 1
    assert count(factory, FaultRecord) == 1


def test_acks_are_grouped_by_gateway(factory: sessionmaker[Session]) -> None:
    result = store(factory, [evt(scan(1)), evt(scan(1, gateway="gw-b"), "site-b", "gw-b")])

    assert statuses(result) == [(f"{GW}:1:1", "stored")]
    assert statuses(result, ("site-b", "gw-b")) == [("gw-b:1:1", "stored")]


def _add_item(factory: sessionmaker[Session], item_id: str) -> None:
    with transaction(factory) as session:
        session.add(Item(id=item_id, gtin="04012345678901", lot="L2603", product="strawberries",
                         family="berries", packed_at=T0 - timedelta(days=2)))


def _disposition(factory: sessionmaker[Session], item_id: str) -> str | None:
    with factory() as session:
        return session.get_one(Item, item_id).disposition


def test_grade_sets_disposition_of_a_known_item(factory: sessionmaker[Session]) -> None:
    _add_item(factory, "ITEM-1")
    result = store(factory, [evt(grade(2, "ITEM-1", "scrap")), evt(grade(4, "UNKNOWN-9"))])

    assert result.stored == 2
    assert _disposition(factory, "ITEM-1") == "scrap"
    assert count(factory, GradeRecord) == 2  # the unknown item's grade is evidence too
    assert count(factory, Item) == 1


def test_backlog_grade_does_not_overwrite_a_newer_disposition(
        factory: sessionmaker[Session]) -> None:
    _add_item(factory, "ITEM-1")
    store(factory, [evt(grade(10, value="resell"))])
    store(factory, [evt(grade(4, value="scrap", historical=True))])
    assert _disposition(factory, "ITEM-1") == "resell"

    store(factory, [evt(grade(12, value="discount")), evt(grade(11, value="scrap"))])
    assert _disposition(factory, "ITEM-1") == "discount"


def test_unknown_item_scan_is_stored(factory: sessionmaker[Session]) -> None:
    result = store(factory, [evt(scan(1, item_id="NOT-IN-HUB"))])

    assert statuses(result) == [(f"{GW}:1:1", "stored")]
    assert count(factory, Scan) == 1


def test_telemetry_is_stored_once_and_acked(
        factory: sessionmaker[Session]) -> None:
    topic = topics.telemetry(SITE, GW)
    first = store(factory, [on(topic, tlm(7)), on(topic, tlm(7))])
    again = store(factory, [on(topic, tlm(7)), on(topic, tlm(8, count=2))])

    assert (first.stored, first.duplicates, first.readings) == (1, 1, 3)
    assert (again.stored, again.duplicates, again.readings) == (1, 1, 2)
    assert statuses(first) == [(f"{GW}:1:7", "stored"), (f"{GW}:1:7", "duplicate")]
    assert statuses(again) == [(f"{GW}:1:7", "duplicate"), (f"{GW}:1:8", "stored")]
    with factory() as session:
        rows = [(record.batch_id, record.source, record.site, record.readings, record.missing,
                 [(p, t) for p, _, t in decode_document(record.data)])
                for record, _ in iter_batches(session)]
        kind = session.get_one(StoredMessage, f"{GW}:1:7").kind
    assert sorted(rows) == [
        (f"{GW}:1:7", GW, SITE, 3, 1, [("probe-1", 3.5), ("probe-1", 3.6), ("probe-2", None)]),
        (f"{GW}:1:8", GW, SITE, 2, 1, [("probe-1", 3.5), ("probe-2", None)])]
    assert kind == "tlm"


def _gateway(factory: sessionmaker[Session], gateway: str = GW) -> Gateway:
    with factory() as session:
        return session.get_one(Gateway, gateway)


def test_gateway_state_upserts_and_ignores_an_older_boot(
        factory: sessionmaker[Session]) -> None:
    topic = topics.state(SITE, GW)
    online = GatewayState(online=True, boot=3, software="edge 1.4", model_version="grader-3",
                          backlog=12, clock=ClockState.SYNCED)
    first = store(factory, [on(topic, online, T0)])
    assert (first.states, first.stale) == (1, 0)
    row = _gateway(factory)
    assert (row.site, row.online, row.boot, row.software, row.backlog, row.clock) == (
        SITE, True, 3, "edge 1.4", 12, "synced")
    assert row.last_seen == T0

    # The last will of the same boot says offline and omits what it does not know.
    will = GatewayState(online=False, boot=3)
    stale = GatewayState(online=True, boot=2, software="edge 1.3")
    later = store(factory, [on(topic, will, T0 + timedelta(minutes=5)),
                            on(topic, stale, T0 + timedelta(minutes=6))])
    assert (later.states, later.stale) == (1, 1)
    row = _gateway(factory)
    assert (row.online, row.boot, row.software, row.model_version) == (
        False, 3, "edge 1.4", "grader-3")
    assert row.last_seen == T0 + timedelta(minutes=5)

    reboot = store(factory, [on(topic, GatewayState(online=True, boot=4, software="edge 1.5"))])
    assert reboot.states == 1
    assert (_gateway(factory).boot, _gateway(factory).software) == (4, "edge 1.5")


def test_states_in_one_batch_apply_in_order(factory: sessionmaker[Session]) -> None:
    topic = topics.state(SITE, GW)
    result = store(factory, [
        on(topic, GatewayState(online=True, boot=5, software="edge 2.0")),
        on(topic, GatewayState(online=True, boot=4)),
        on(topic, GatewayState(online=False, boot=5)),
    ])

    assert (result.states, result.stale) == (2, 1)
    row = _gateway(factory)
    assert (row.online, row.boot, row.software) == (False, 5, "edge 2.0")


def _payload(message: Any, **changes: Any) -> bytes:
    data = json.loads(message.encode())
    data.update(changes)
    return json.dumps(data).encode()


SCAN_TOPIC = topics.event(SITE, GW, "scan")
POISON = [
    # a cut-off payload still names its id: the gateway is told to stop resending it
    pytest.param(SCAN_TOPIC, b'{"id": "gw-a:1:9", "v": "1.0", ', "is not valid JSON",
                 f"{GW}:1:9", id="bad-json"),
    pytest.param(SCAN_TOPIC, b'{"x": ' + b"1" * 5000 + b", " + scan(9).encode()[1:],
                 "is not valid JSON", f"{GW}:1:9", id="number-past-the-digit-limit"),
    # parsed, but not storable: once an exception that stopped ingest, or a PostgreSQL error
    pytest.param(SCAN_TOPIC, b'{"v": "1.1", "id": "\\ud800"}',
                 "id: holds a lone UTF-16 surrogate", None, id="lone-surrogate-id"),
    pytest.param(SCAN_TOPIC, b'{"x": NaN, ' + scan(9).encode()[1:], "x: nan is not a JSON number",
                 f"{GW}:1:9", id="nan-in-an-extra-field"),
    pytest.param(SCAN_TOPIC, _payload(scan(9), id=f"{GW}:1:9\n"), "gateway:boot:seq", None,
                 id="id-with-a-final-newline"),
    pytest.param(SCAN_TOPIC, _payload(scan(9), id=f"{GW}:01:9"), "gateway:boot:seq",
                 f"{GW}:01:9", id="id-with-a-leading-zero"),
    pytest.param(SCAN_TOPIC, b"[1, 2]", "must be a JSON object", None, id="not-an-object"),
    pytest.param(SCAN_TOPIC, b"[" * 100_000, "not valid JSON", None, id="nested-too-deep"),
    pytest.param(SCAN_TOPIC, _payload(scan(9), v="2.0"), "major version 2 is not supported",
                 f"{GW}:1:9", id="unknown-major"),
    pytest.param(SCAN_TOPIC, _payload(scan(9), core_temp_c="warm"), "core_temp_c",
                 f"{GW}:1:9", id="wrong-field-type"),
    pytest.param(SCAN_TOPIC, _payload(scan(9), type="grade"), "type", f"{GW}:1:9",
                 id="type-other-than-topic"),
    pytest.param(SCAN_TOPIC, _payload(scan(9), id="gw-b:1:9"), "belongs to gateway 'gw-b'",
                 "gw-b:1:9", id="id-of-another-gateway"),
    pytest.param(SCAN_TOPIC, _payload(scan(9), id="x" * 100), "gateway:boot:seq", None,
                 id="oversized-id-not-recovered"),
]


@pytest.mark.parametrize(("topic", "payload", "reason", "message_id"), POISON)
def test_poison_event_is_quarantined_and_rejected(
        factory: sessionmaker[Session], topic: str, payload: bytes, reason: str,
        message_id: str | None) -> None:
    result = store(factory, [on(topic, payload), evt(scan(1))])

    assert (result.stored, result.quarantined) == (1, 1)
    expected = [(f"{GW}:1:1", "stored")]
    if message_id is not None:
        expected.insert(0, (message_id, "rejected"))
    assert sorted(statuses(result)) == sorted(expected)
    rejected = [e for e in result.acks[(SITE, GW)] if e.status is AckStatus.REJECTED]
    assert all(reason in (e.reason or "") for e in rejected)
    with factory() as session:
        kept = session.scalars(select(QuarantinedMessage)).one()
        stored_ids = set(session.scalars(select(StoredMessage.message_id)))
    assert reason in kept.reason
    assert (kept.topic, kept.payload, kept.message_id) == (topic, payload, message_id)
    assert stored_ids == {f"{GW}:1:1"}


@pytest.mark.parametrize(("topic", "payload", "reason"), [
    pytest.param("coldloop/v2/site-a/gw-a/evt/scan", scan(9).encode(), "is not under",
                 id="outside-the-tree"),
    pytest.param("coldloop/v1/site-a/gw-a/evt/smell", scan(9).encode(), "unknown event type",
                 id="unknown-event-type"),
    pytest.param(topics.state(SITE, GW), b'{"v": "1.0", "online": "maybe", "boot": 1}',
                 "online", id="bad-state"),
    pytest.param(topics.state(SITE, GW), b'{"v": "1.1", "online": true, "boot": ' +
                 str(2**63).encode() + b"}", "boot", id="boot-past-the-integer"),
    pytest.param(topics.config(SITE, GW, "reported"),
                 b'{"v": "1.1", "version": 3, "status": "applied", '
                 b'"ts": "0001-01-01T00:00:00+01:00"}', "ts", id="report-of-year-1"),
    pytest.param(topics.config(SITE, GW, "reported"),
                 b'{"v": "1.1", "version": 3, "status": "applied", "manifest_items": ' +
                 str(2**63).encode() + b"}", "manifest_items", id="count-past-the-integer"),
    pytest.param(topics.config(SITE, GW, "reported"),
                 b'{"v": "1.1", "version": 3, "status": "rejected", "error": "\\udc00"}',
                 "lone UTF-16 surrogate", id="lone-surrogate-error"),
    pytest.param("coldloop/v1/site-a\n/gw-a/tlm", tlm(9).encode(), "not a valid name",
                 id="name-with-a-final-newline"),
])
def test_poison_without_an_acked_topic_is_quarantined_without_ack(
        factory: sessionmaker[Session], topic: str, payload: bytes, reason: str) -> None:
    result = store(factory, [on(topic, payload)])

    assert result.quarantined == 1
    assert result.acks == {}
    with factory() as session:
        kept = session.scalars(select(QuarantinedMessage)).one()
        assert count(factory, StoredMessage) == 0
    assert reason in kept.reason
    assert kept.topic == topic


def test_quarantine_keeps_an_unprintable_topic(factory: sessionmaker[Session]) -> None:
    topic = "coldloop/v1/site-a/" + "\x00" * 3 + "x" * 400
    result = store(factory, [on(topic, b"\xff\xfe")])

    assert result.quarantined == 1
    with factory() as session:
        kept = session.scalars(select(QuarantinedMessage)).one()
    assert len(kept.topic) == 256 and "\x00" not in kept.topic
    assert kept.payload == b"\xff\xfe"


def test_hub_traffic_is_counted_but_not_ingested(factory: sessionmaker[Session]) -> None:
    noise = [
        on(topics.ack(SITE, GW), b'{"v": "1.0"}'),
        on(topics.command(SITE, GW, "resync"), b"{}"),
        on(topics.config(SITE, GW, "desired"), b"{}"),
        on(topics.HUB_STATE, b'{"v": "1.0", "online": true}'),
        on(topics.state(SITE, GW), b""),  # a retained state being cleared
    ]
    result = store(factory, noise)

    assert (result.ignored, result.stored, result.quarantined) == (5, 0, 0)
    assert count(factory, QuarantinedMessage) == 0


def test_a_batch_of_500_takes_a_handful_of_statements(factory: sessionmaker[Session]) -> None:
    _add_item(factory, "ITEM-1")
    batch = []
    for n in range(125):
        batch += [evt(scan(4 * n + 1)), evt(grade(4 * n + 2)),
                  on(topics.telemetry(SITE, GW), tlm(4 * n + 3)),
                  on(topics.state(SITE, GW), GatewayState(online=True, boot=1, backlog=n))]
    statements: list[str] = []
    with factory() as session, session.begin():
        engine = session.get_bind()

        @event.listens_for(engine, "before_cursor_execute")
        def _count(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
            statements.append(statement)

        try:
            result = store_batch(session, batch)
        finally:
            event.remove(engine, "before_cursor_execute", _count)

    assert (result.stored, result.readings, result.states) == (375, 375, 125)
    assert len(statements) <= 12, statements
    with factory() as session:
        stored = session.scalar(select(func.sum(TelemetryBatchRecord.readings)))
    assert stored == 375
    assert _gateway(factory).backlog == 124


def test_every_row_is_built_before_the_first_write(
        factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    """The write lock (SQLite) is held only for the statements: the CPU work comes first."""
    from hub import telemetry

    events: list[str] = []
    prepare = telemetry.prepare

    def spy(batches: Any) -> telemetry.PreparedBatches:
        events.append("prepare")
        return prepare(batches)

    monkeypatch.setattr(telemetry, "prepare", spy)  # the module hub.ingest calls
    batch = [evt(scan(1)), on(topics.telemetry(SITE, GW), tlm(2)), evt(fault(3))]
    with factory() as session, session.begin():
        engine = session.get_bind()

        @event.listens_for(engine, "before_cursor_execute")
        def _note(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
            events.append(statement.split()[0].upper())

        try:
            result = store_batch(session, batch)
        finally:
            event.remove(engine, "before_cursor_execute", _note)

    assert result.stored == 3
    writes = [n for n, e in enumerate(events) if e in ("INSERT", "UPDATE", "DELETE")]
    assert writes and events.index("prepare") < writes[0], events


def test_poison_telemetry_is_rejected_so_the_gateway_stops_retrying(
        factory: sessionmaker[Session]) -> None:
    result = store(factory, [on(topics.telemetry(SITE, GW), _payload(tlm(9), readings=[]))])
    assert result.quarantined == 1
    assert [(e.id, e.status.value) for e in result.acks[(SITE, GW)]] == [(f"{GW}:1:9",
                                                                          "rejected")]


@pytest.mark.parametrize(("message", "problem"), [
    # a time that cannot be moved to UTC, or past 2100: once an OverflowError deep in the
    # store, which failed the whole batch on every redelivery
    (_payload(scan(9), ts="0001-01-01T00:00:00+01:00"), "ts: value error"),
    (_payload(scan(9), ts="9999-12-31T23:59:59-12:00"), "outside the accepted range"),
    # a reading at -1e30 s once ran the hub out of memory; 1e30 s overflowed
    (_payload(tlm(9), readings=[["probe-1", -1e30, 3.5]]), "readings.0.1: input should be"),
    (_payload(tlm(9), readings=[["probe-1", 1e30, 3.5]]), "readings.0.1: input should be"),
    # PostgreSQL refuses a NUL in text: refused here, before any write
    (_payload(tlm(9), readings=[["probe\x001", 1_772_352_000.0, 3.5]]), "readings.0.0"),
], ids=["year-1", "year-9999", "epoch-minus-1e30", "epoch-1e30", "nul-in-probe"])
def test_times_out_of_range_and_nul_characters_are_quarantined(
        factory: sessionmaker[Session], message: bytes, problem: str) -> None:
    topic = SCAN_TOPIC if b'"scan"' in message else topics.telemetry(SITE, GW)
    result = store(factory, [on(topic, message), evt(scan(10))])
    assert sorted(statuses(result)) == [(f"{GW}:1:10", "stored"), (f"{GW}:1:9", "rejected")]
    with factory() as session:
        reason = session.scalars(select(QuarantinedMessage.reason)).one()
    assert problem in reason.lower()


def test_a_batch_spread_over_too_many_windows_is_rejected(
        factory: sessionmaker[Session]) -> None:
    """Readings each in a 5-minute window of its own cost the hub 1.4 KB each to aggregate
    (14 MB for a full batch); an hour of 10 probes read every 10 s is a batch as a gateway
    sends it."""
    start = 1_772_352_000.0
    spread = TelemetryBatch(id=f"{GW}:1:60", ts=T0, readings=[
        ("probe-1", start + 300.0 * n, 4.0) for n in range(2_000)])
    hour = TelemetryBatch(id=f"{GW}:1:61", ts=T0, readings=[
        (f"probe-{n % 10}", start + n, 4.0) for n in range(3_600)])
    result = store(factory, [on(topics.telemetry(SITE, GW), spread.encode()),
                             on(topics.telemetry(SITE, GW), hour.encode())])
    assert sorted(statuses(result)) == [(f"{GW}:1:60", "rejected"), (f"{GW}:1:61", "stored")]
    (rejected,) = [e for e in result.acks[(SITE, GW)] if e.status is AckStatus.REJECTED]
    assert "fall in 2000 (probe, 300 s window) pairs" in (rejected.reason or "")


def test_a_bad_health_report_is_acked_rejected(factory: sessionmaker[Session]) -> None:
    """Health reports leave the gateway's outbox like telemetry: unacked, they are resent."""
    from protocols.messages import HealthReport

    report = HealthReport(id=f"{GW}:1:41", ts=T0, clock=ClockState.HOLDOVER, uptime_s=3600)
    result = store(factory, [on(topics.health(SITE, GW), _payload(report, uptime_s="long"))])
    assert statuses(result) == [(f"{GW}:1:41", "rejected")]


def test_health_reports_are_stored_once_and_acked(factory: sessionmaker[Session]) -> None:
    from hub.command_models import GatewayHealth
    from protocols.messages import HealthReport

    report = HealthReport(id=f"{GW}:1:40", ts=T0, clock=ClockState.HOLDOVER, uptime_s=3600,
                          cpu_temp_c=61.5, disk_used_pct=42.0, outbox_depth=17)
    topic = topics.health(SITE, GW)
    result = store(factory, [on(topic, report.encode()), on(topic, report.encode())])
    assert statuses(result) == [(f"{GW}:1:40", "stored"), (f"{GW}:1:40", "duplicate")]
    with factory() as session:
        row = session.scalars(select(GatewayHealth)).one()
    assert (row.clock, row.values["cpu_temp_c"], row.values["outbox_depth"]) == (
        "holdover", 61.5, 17)


def test_reported_config_is_recorded_and_garbage_quarantined(
        factory: sessionmaker[Session]) -> None:
    from hub.command_models import GatewaySync
    from protocols.messages import ConfigDocument

    doc = ConfigDocument.model_validate({  # fields this version does not know are kept
        "version": 3, "status": "applied", "settings": {"mqtt.inflight": 50},
        "model_version": "m-7", "active_version": 3, "pending": False})
    topic = topics.config(SITE, GW, "reported")
    result = store(factory, [on(topic, doc.encode()), on(topic, b'{"v": "1.0", "version": -1}')])
    assert result.quarantined == 1
    with factory() as session:
        row = session.scalars(select(GatewaySync)).one()
    assert (row.reported_config_version, row.reported_model_version) == (3, "m-7")
