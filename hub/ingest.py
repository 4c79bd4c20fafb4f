"""Store what gateways publish: idempotent on message ids, invalid input quarantined.

Pure domain code over a SQLAlchemy session: the MQTT consumer hands in batches of received
messages and commits; this module decides what each one becomes and what the gateway is told.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, or_, select, update
from sqlalchemy.orm import Session

from hub import telemetry
from hub.command_models import GatewayHealth
from hub.commands import record_reported
from hub.errors import HubError
from hub.fleet import StateUpdate, record_states
from hub.models import (
    CustodyRecord,
    FaultRecord,
    Gateway,
    GradeRecord,
    Item,
    QuarantinedMessage,
    Scan,
    StoredMessage,
)
from hub.telemetry import NewBatch, PreparedBatches
from protocols import topics
from protocols.errors import ProtocolError
from protocols.messages import (
    AckEntry,
    AckStatus,
    ConfigDocument,
    CustodyEvent,
    Event,
    FaultEvent,
    GatewayState,
    GradeEvent,
    HealthReport,
    ScanEvent,
    TelemetryBatch,
    decode_for_topic,
)
from protocols.topics import GatewayTopic, Kind

logger = logging.getLogger(__name__)

TELEMETRY_KIND = "tlm"  # StoredMessage.kind of a telemetry batch
_ID_CHUNK = 900  # ids per IN (...) list: far below SQLite's bound-parameter limit
_MAX_ID = 64  # StoredMessage.message_id / QuarantinedMessage.message_id length
_MAX_TOPIC = 256  # QuarantinedMessage.topic length
_IGNORED_KINDS = frozenset({Kind.ACK, Kind.COMMAND})

GatewayKey = tuple[str, str]  # (site, gateway)


@dataclass(frozen=True)
class Received:
    """One MQTT message as the hub received it."""

    topic: str
    payload: bytes
    received_at: datetime

    def __post_init__(self) -> None:
        if self.received_at.tzinfo is None:
            raise ValueError("received_at must be timezone-aware (use datetime.now(UTC))")


_Rejected = tuple[Received, str, GatewayTopic | None]  # message, reason, topic if it parsed


@dataclass
class IngestResult:
    """What a batch became: the acks to send per gateway, and counters."""

    acks: dict[GatewayKey, list[AckEntry]] = field(default_factory=dict)
    stored: int = 0  # business events and telemetry batches newly stored
    duplicates: int = 0
    quarantined: int = 0
    readings: int = 0
    states: int = 0
    stale: int = 0  # gateway states older (lower boot) than the stored one
    ignored: int = 0  # hub -> gateway traffic and configuration reports
    telemetry: list[NewBatch] = field(default_factory=list)  # newly stored, for the sinks

    def ack(self, key: GatewayKey, message_id: str, status: AckStatus,
            reason: str | None = None) -> None:
        """Queue an application ack for a gateway."""
        self.acks.setdefault(key, []).append(AckEntry(id=message_id, status=status, reason=reason))

    def merge(self, other: IngestResult) -> None:
        """Add another result's acks and counters to this one."""
        for key, entries in other.acks.items():
            self.acks.setdefault(key, []).extend(entries)
        self.telemetry.extend(other.telemetry)
        for counter in fields(self):
            if counter.name not in ("acks", "telemetry"):
                setattr(self, counter.name,
                        getattr(self, counter.name) + getattr(other, counter.name))


@dataclass(frozen=True)
class _Accepted:
    topic: GatewayTopic
    message: Event | TelemetryBatch
    received: Received


def store_batch(session: Session, batch: Sequence[Received]) -> IngestResult:
    """Store a batch of received messages in the caller's transaction; return acks and counts."""
    result = IngestResult()
    accepted: list[_Accepted] = []
    states: list[StateUpdate] = []
    reports: list[tuple[GatewayTopic, ConfigDocument, Received]] = []
    rejected: list[_Rejected] = []
    seen: dict[str, datetime] = {}  # gateway -> newest receipt of anything but its state
    for received in batch:
        parsed = _classify(received, result, rejected)
        if parsed is None:
            continue
        topic, message = parsed
        if isinstance(message, GatewayState):
            states.append(StateUpdate(topic.site, topic.gateway, message, received.received_at))
            continue  # record_states sets last_seen, and not from a stale boot's state
        last = seen.get(topic.gateway)
        if last is None or received.received_at > last:
            seen[topic.gateway] = received.received_at
        if isinstance(message, ConfigDocument):
            reports.append((topic, message, received))
        else:
            accepted.append(_Accepted(topic, message, received))

    known = _already_stored(session, [a.message.id for a in accepted])
    fresh: list[_Accepted] = []
    for item in accepted:
        # Telemetry batches are acked too: a gateway behind a broker that may drop (amqtt)
        # waits for this ack instead of trusting the broker's PUBACK.
        if item.message.id in known:
            result.duplicates += 1
            result.ack(_key(item.topic), item.message.id, AckStatus.DUPLICATE)
            continue
        known.add(item.message.id)  # a second copy later in this batch is a duplicate
        fresh.append(item)
        result.stored += 1
        result.ack(_key(item.topic), item.message.id, AckStatus.STORED)

    # Every row is built before the first write: the transaction then holds the
    # database's write lock (SQLite) or row locks only for the statements themselves.
    _insert_records(session, _records(fresh, result), result)
    if states:
        result.states, result.stale = record_states(session, states)
    _mark_seen(session, seen)
    for topic, document, received in reports:
        try:
            with session.begin_nested():
                record_reported(session, topic.site, topic.gateway, document,
                                received_at=received.received_at)
        except HubError as err:
            rejected.append((received, str(err), topic))
    _quarantine(session, rejected, result)
    return result


def quarantine(session: Session, batch: Sequence[Received], reason: str) -> IngestResult:
    """Quarantine messages the database refused; reject the events among them."""
    result = IngestResult()
    rejected: list[_Rejected] = []
    for received in batch:
        try:
            topic: GatewayTopic | None = topics.parse(received.topic)
        except ProtocolError:
            topic = None
        rejected.append((received, reason, topic))
    _quarantine(session, rejected, result)
    return result


def _classify(received: Received, result: IngestResult,
              rejected: list[_Rejected]) -> tuple[GatewayTopic, Any] | None:
    """Parse and decode one message; count or set aside what is not to be stored."""
    if received.topic == topics.HUB_STATE:
        result.ignored += 1
        return None
    try:
        topic = topics.parse(received.topic)
    except ProtocolError as err:
        rejected.append((received, str(err), None))
        return None
    if (topic.kind in _IGNORED_KINDS or (topic.kind is Kind.STATE and not received.payload)
            or (topic.kind is Kind.CONFIG and (topic.leaf != "reported" or not received.payload))):
        result.ignored += 1  # an empty state is a retained state being cleared, not a message
        return None
    try:
        message = decode_for_topic(topic, received.payload)
    except ProtocolError as err:
        rejected.append((received, str(err), topic))
        return None
    if isinstance(message, TelemetryBatch):
        problem = telemetry.too_spread(message.readings)
        if problem is not None:
            rejected.append((received, f"telemetry: {problem}", topic))
            return None
    return topic, message


def _already_stored(session: Session, ids: Sequence[str]) -> set[str]:
    """Return which of ``ids`` are stored already (one SELECT per batch of usual size)."""
    unique = sorted(set(ids))
    found: set[str] = set()
    for start in range(0, len(unique), _ID_CHUNK):
        chunk = unique[start:start + _ID_CHUNK]
        found.update(session.scalars(
            select(StoredMessage.message_id).where(StoredMessage.message_id.in_(chunk))))
    return found


@dataclass(frozen=True)
class _Records:
    """The rows a batch's new messages become, built before anything is written."""

    stored: list[dict[str, Any]]
    typed: dict[type[Any], list[dict[str, Any]]]
    telemetry: PreparedBatches
    grades: list[GradeEvent]


def _records(fresh: Sequence[_Accepted], result: IngestResult) -> _Records:
    """Turn the new messages into rows (and note their telemetry for the sinks)."""
    stored = [{"message_id": a.message.id, "gateway_id": a.topic.gateway,
               "kind": a.topic.leaf if a.topic.kind is Kind.EVENT else _STORED_KIND[a.topic.kind],
               "received_at": _utc(a.received.received_at)}
              for a in fresh]
    typed: dict[type[Any], list[dict[str, Any]]] = {}
    for a in fresh:
        if isinstance(a.message, TelemetryBatch):
            result.telemetry.append(NewBatch(
                batch_id=a.message.id, source=a.topic.gateway, site=a.topic.site,
                readings=a.message.readings, document=a.received.payload,
                received_at=a.received.received_at, historical=a.message.historical))
            continue
        model, to_rows = _RECORDS[type(a.message)]
        typed.setdefault(model, []).extend(to_rows(a.message))
    grades = [a.message for a in fresh if isinstance(a.message, GradeEvent)]
    return _Records(stored, typed, telemetry.prepare(result.telemetry), grades)


def _insert_records(session: Session, records: _Records, result: IngestResult) -> None:
    """Insert the stored-message rows and the typed rows with a few bulk statements."""
    if records.stored:
        session.execute(_bulk(StoredMessage), records.stored)
    for model, model_rows in records.typed.items():
        if model_rows:
            session.execute(_bulk(model), model_rows)
    result.readings += telemetry.write(session, records.telemetry)
    _set_dispositions(session, records.grades)


def _mark_seen(session: Session, seen: dict[str, datetime]) -> None:
    """Move known gateways' ``last_seen`` forward to their newest message of this batch.

    One executemany, one row per gateway, sorted (the same lock order in every worker); it
    never moves ``last_seen`` back and never creates a gateway (its state does that).
    """
    if not seen:
        return
    gateways = cast(Table, Gateway.__table__)
    statement = (update(gateways)
                 .where(gateways.c.id == bindparam("s_id"),
                        or_(gateways.c.last_seen.is_(None),
                            gateways.c.last_seen < bindparam("s_at")))
                 .values(last_seen=bindparam("s_at")))
    session.execute(statement, [{"s_id": gateway, "s_at": _utc(at)}
                                for gateway, at in sorted(seen.items())])


def _event_base(event: Event) -> dict[str, Any]:
    return {"message_id": event.id, "ts": _utc(event.ts), "historical": event.historical}


def _scan_rows(event: ScanEvent) -> list[dict[str, Any]]:
    return [{**_event_base(event), "gateway_id": event.message_id.gateway,
             "station": event.station, "item_id": event.item_id, "tag_uid": event.tag_uid,
             "lot": event.lot, "gtin": event.gtin, "core_temp_c": event.core_temp_c,
             "clock": event.clock.value}]


def _grade_rows(event: GradeEvent) -> list[dict[str, Any]]:
    return [{**_event_base(event), "gateway_id": event.message_id.gateway,
             "station": event.station, "item_id": event.item_id, "scan_id": event.scan_id,
             "grade": event.grade.value, "model_version": event.model_version,
             "rule": event.rule, "scores": dict(event.scores),
             "features": dict(event.features), "clock": event.clock.value}]


def _custody_rows(event: CustodyEvent) -> list[dict[str, Any]]:
    return [{**_event_base(event), "item_id": event.item_id, "action": event.action.value,
             "actor": event.actor, "location": event.location,
             "pickup_code": event.pickup_code}]


def _fault_rows(event: FaultEvent) -> list[dict[str, Any]]:
    return [{**_event_base(event), "gateway_id": event.message_id.gateway,
             "station": event.station, "component": event.component, "code": event.code,
             "severity": event.severity.value, "detail": event.detail}]


def _health_rows(report: HealthReport) -> list[dict[str, Any]]:
    values = report.model_dump(exclude={"v", "id", "ts", "historical", "clock"})
    return [{"message_id": report.id, "gateway_id": report.message_id.gateway,
             "ts": _utc(report.ts), "clock": report.clock.value,
             "historical": report.historical, "values": values}]


_STORED_KIND = {Kind.TELEMETRY: TELEMETRY_KIND, Kind.HEALTH: "health"}
# What a gateway resends until acked: events, and its outbox's telemetry class (health too).
_ACKED = frozenset({Kind.EVENT, Kind.TELEMETRY, Kind.HEALTH})
_RECORDS: dict[type[Any], tuple[type[Any], Callable[[Any], list[dict[str, Any]]]]] = {
    HealthReport: (GatewayHealth, _health_rows),
    ScanEvent: (Scan, _scan_rows),
    GradeEvent: (GradeRecord, _grade_rows),
    CustodyEvent: (CustodyRecord, _custody_rows),
    FaultEvent: (FaultRecord, _fault_rows),
}


def _set_dispositions(session: Session, grades: Sequence[GradeEvent]) -> None:
    """Set each known item's disposition to its latest grade (unknown items: no-op)."""
    latest: dict[str, GradeEvent] = {}
    for grade in grades:
        current = latest.get(grade.item_id)
        if current is None or grade.ts >= current.ts:
            latest[grade.item_id] = grade
    if not latest:
        return
    items, stored = cast(Table, Item.__table__), cast(Table, GradeRecord.__table__)
    # A backlog grade arriving late must not overwrite the disposition of a newer one.
    newer = (select(stored.c.message_id)
             .where(stored.c.item_id == items.c.id, stored.c.ts > bindparam("g_ts"))
             .exists())
    statement = (update(items)
                 .where(items.c.id == bindparam("g_item"), ~newer)
                 .values(disposition=bindparam("g_grade")))
    session.execute(statement, [
        {"g_item": item_id, "g_grade": grade.grade.value, "g_ts": _utc(grade.ts)}
        for item_id, grade in latest.items()])


def _quarantine(session: Session, rejected: Sequence[_Rejected], result: IngestResult) -> None:
    """Keep rejected messages for an admin; tell gateways to stop retrying poison events."""
    rows = []
    for received, reason, topic in rejected:
        message_id = _recover_id(received.payload)
        logger.warning("quarantined message on %r (id %s): %s",
                       received.topic[:_MAX_TOPIC], message_id, reason)
        reason = _printable(reason)
        rows.append({"topic": _printable(received.topic, _MAX_TOPIC),
                     "payload": bytes(received.payload), "reason": reason,
                     "message_id": message_id, "received_at": _utc(received.received_at)})
        if topic is not None and topic.kind in _ACKED and message_id is not None:
            result.ack(_key(topic), message_id, AckStatus.REJECTED, reason)
    if rows:
        session.execute(_bulk(QuarantinedMessage), rows)
        result.quarantined += len(rows)


def _recover_id(payload: bytes) -> str | None:
    """Return the payload's "id" string if it has a usable one, else None. From a payload
    that is not JSON (a 5,000-digit number, a cut-off end), a well-formed message id is still
    read, so that the gateway is told to stop resending it."""
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        found = _ID_MEMBER.search(payload)
        return found[1].decode() if found else None
    value = data.get("id") if isinstance(data, dict) else None
    if isinstance(value, str) and 0 < len(value) <= _MAX_ID and value.isprintable():
        return value  # isprintable: no NUL, no lone surrogate (neither can be stored)
    return None


_ID_MEMBER = re.compile(rb'"id"\s*:\s*"([a-z0-9][a-z0-9_-]{0,31}:[0-9]{1,9}:[0-9]{1,15})"')


def _printable(text: str, limit: int | None = None) -> str:
    """Make text storable in any text column: PostgreSQL refuses NUL characters, and a lone
    surrogate is no UTF-8 (both are written as escapes)."""
    text = text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode()
    return text if limit is None else text[:limit]


def _bulk(model: type[Any]) -> Any:
    """A Core INSERT of the model's table: one executemany per batch, no ORM bookkeeping."""
    return insert(model.__table__)


def _key(topic: GatewayTopic) -> GatewayKey:
    return topic.site, topic.gateway


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)
