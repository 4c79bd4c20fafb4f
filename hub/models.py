"""The hub's records: SQLAlchemy 2 models. Schema changes go through Alembic (hub/migrations)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every database (SQLite keeps no time zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the hub stores aware UTC times only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every hub table."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(),
                                                     dict[str, Any]: JSON}


# --- customers, orders, items -------------------------------------------------------------


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    phone: Mapped[str | None] = mapped_column(String(32))
    tier: Mapped[str] = mapped_column(String(16), default="standard")
    region: Mapped[str] = mapped_column(String(32), default="")


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    placed_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default="delivered")


class Item(Base):
    """One tagged unit of produce in an order; ``id`` is the item id written on its RFID tag."""

    __tablename__ = "items"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    order_id: Mapped[str | None] = mapped_column(ForeignKey("orders.id"), index=True)
    gtin: Mapped[str] = mapped_column(String(14))
    lot: Mapped[str] = mapped_column(String(10))
    product: Mapped[str] = mapped_column(String(64))
    family: Mapped[str] = mapped_column(String(32))
    packed_at: Mapped[datetime]
    tag_uid: Mapped[str | None] = mapped_column(String(20))
    price_cents: Mapped[int] = mapped_column(Integer, default=0)
    disposition: Mapped[str | None] = mapped_column(String(16))  # last grade stored


# --- after-sales: tickets and pickups (thin here; grown by the tickets issue) -------------


_EMPTY_LIST = text("'[]'")  # server defaults (the Ticket class has a column named text)
_EMPTY_OBJECT = text("'{}'")


class Ticket(Base):
    """One complaint, whichever channels it came through (hub.tickets, docs/tickets.md).

    ``status`` is the workflow's state (hub.tickets.workflow); ``text`` keeps every message
    appended (the messages themselves are ``ticket_messages``).
    """

    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_status", "status"),
        Index("ix_tickets_customer_key_order", "customer_key", "order_id"),
        Index("ix_tickets_assignee_id", "assignee_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str | None] = mapped_column(ForeignKey("orders.id"), index=True)
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customers.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))  # of the first message
    text: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(16), default="other")
    status: Mapped[str] = mapped_column(String(20), default="new")
    created_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    # who complains: "user:<customer id>", else "phone:<verified phone>", else "<channel>:<id>"
    customer_key: Mapped[str | None] = mapped_column(String(80))
    language: Mapped[str | None] = mapped_column(String(8))
    urgency: Mapped[str] = mapped_column(String(4), default="P3", server_default="P3")
    sentiment: Mapped[str | None] = mapped_column(String(16))
    sentiment_score: Mapped[float | None] = mapped_column(Float)
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list,
                                                server_default=_EMPTY_LIST)
    triage_confidence: Mapped[float | None] = mapped_column(Float)
    triage_model_version: Mapped[str | None] = mapped_column(String(64))
    team: Mapped[str | None] = mapped_column(String(32))
    assignee_id: Mapped[str | None] = mapped_column(String(32))  # agents.id
    assigned_at: Mapped[datetime | None]
    priority: Mapped[str] = mapped_column(String(4), default="P3", server_default="P3")
    tier: Mapped[str | None] = mapped_column(String(16))
    region: Mapped[str | None] = mapped_column(String(32))
    sla_policy: Mapped[str | None] = mapped_column(String(32))
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict,
                                                    server_default=_EMPTY_OBJECT)
    handling: Mapped[str | None] = mapped_column(String(16))  # simple / complex
    resolution: Mapped[str | None] = mapped_column(String(16))  # refund / reship / ...
    first_contact_at: Mapped[datetime | None]
    confirmed_at: Mapped[datetime | None]
    followed_up_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    satisfaction: Mapped[int | None] = mapped_column(Integer)
    satisfaction_comment: Mapped[str | None] = mapped_column(Text)
    merged_into: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", name="fk_tickets_merged_into"))
    # auto: the classifier was sure enough; review: a person should check its suggestion;
    # confirmed / corrected: a person did (hub.tickets.triage_review)
    triage_state: Mapped[str] = mapped_column(String(12), default="auto", server_default="auto")


class Pickup(Base):
    """A return to collect: the driver proves collection by the customer's pickup code."""

    __tablename__ = "pickups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    item_id: Mapped[str] = mapped_column(ForeignKey("items.id"), index=True)
    code: Mapped[str] = mapped_column(String(9), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="issued")  # issued/collected
    issued_at: Mapped[datetime]
    collected_at: Mapped[datetime | None]
    driver: Mapped[str | None] = mapped_column(String(64))


# --- what gateways report -----------------------------------------------------------------


class Gateway(Base):
    __tablename__ = "gateways"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    site: Mapped[str] = mapped_column(String(32))
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    boot: Mapped[int] = mapped_column(Integer, default=0)
    last_seen: Mapped[datetime | None]
    software: Mapped[str | None] = mapped_column(String(64))
    model_version: Mapped[str | None] = mapped_column(String(64))
    backlog: Mapped[int] = mapped_column(Integer, default=0)
    clock: Mapped[str] = mapped_column(String(16), default="unsynced")
    # The alarm codes of the gateway's latest state (GatewayState.alarms, e.g. "disk_low").
    alarms: Mapped[list[str]] = mapped_column(JSON, default=list, server_default=text("'[]'"))


class StoredMessage(Base):
    """Every event message id the hub committed: ingest is idempotent on it."""

    __tablename__ = "stored_messages"

    message_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    gateway_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime]


class Scan(Base):
    __tablename__ = "scans"
    __table_args__ = (Index("ix_scans_gateway_ts", "gateway_id", "ts"),)

    message_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    gateway_id: Mapped[str] = mapped_column(String(32), index=True)
    station: Mapped[str] = mapped_column(String(64))
    item_id: Mapped[str] = mapped_column(String(16), index=True)
    tag_uid: Mapped[str] = mapped_column(String(20))
    lot: Mapped[str] = mapped_column(String(10))
    gtin: Mapped[str] = mapped_column(String(14))
    core_temp_c: Mapped[float | None] = mapped_column(Float)
    ts: Mapped[datetime]
    clock: Mapped[str] = mapped_column(String(16))
    historical: Mapped[bool] = mapped_column(Boolean, default=False)


class GradeRecord(Base):
    __tablename__ = "grades"

    message_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    gateway_id: Mapped[str] = mapped_column(String(32), index=True)
    station: Mapped[str] = mapped_column(String(64))
    item_id: Mapped[str] = mapped_column(String(16), index=True)
    scan_id: Mapped[str] = mapped_column(String(64))
    grade: Mapped[str] = mapped_column(String(16))
    model_version: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str | None] = mapped_column(String(64))
    scores: Mapped[dict[str, Any]]
    features: Mapped[dict[str, Any]]
    ts: Mapped[datetime]
    clock: Mapped[str] = mapped_column(String(16))
    historical: Mapped[bool] = mapped_column(Boolean, default=False)


class CustodyRecord(Base):
    __tablename__ = "custody_events"

    # Custody also comes from drivers' devices over HTTP; their ids are "driver:..." strings.
    message_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(16), index=True)
    action: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64))
    location: Mapped[str] = mapped_column(String(64))
    pickup_code: Mapped[str | None] = mapped_column(String(16))
    ts: Mapped[datetime]
    historical: Mapped[bool] = mapped_column(Boolean, default=False)


class FaultRecord(Base):
    __tablename__ = "faults"
    __table_args__ = (Index("ix_faults_gateway_ts", "gateway_id", "ts"),)

    message_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    gateway_id: Mapped[str] = mapped_column(String(32), index=True)
    station: Mapped[str] = mapped_column(String(64))
    component: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(48))
    severity: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text, default="")
    ts: Mapped[datetime]
    historical: Mapped[bool] = mapped_column(Boolean, default=False)


class TelemetryBatchRecord(Base):
    """One telemetry batch as received (compressed JSON), found by source and time span."""

    __tablename__ = "telemetry_batches"
    __table_args__ = (Index("ix_telemetry_batches_source_ts", "source", "ts_first"),)

    batch_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # message id
    source: Mapped[str] = mapped_column(String(32))  # gateway id, or "truck:<id>"
    site: Mapped[str] = mapped_column(String(32), default="")
    ts_first: Mapped[float] = mapped_column(Float)  # epoch seconds of the earliest reading
    ts_last: Mapped[float] = mapped_column(Float)
    readings: Mapped[int] = mapped_column(Integer)
    missing: Mapped[int] = mapped_column(Integer, default=0)  # readings without a value
    historical: Mapped[bool] = mapped_column(Boolean, default=False)
    received_at: Mapped[datetime]
    data: Mapped[bytes] = mapped_column(LargeBinary)  # zlib(JSON document with "readings")


class TelemetryWindow(Base):
    """One probe's readings aggregated over a fixed window (hub.telemetry.WINDOW_S)."""

    __tablename__ = "telemetry_windows"
    __table_args__ = (Index("ix_telemetry_windows_probe_start", "probe", "window_start"),)

    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    probe: Mapped[str] = mapped_column(String(32), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # epoch seconds
    site: Mapped[str] = mapped_column(String(32), default="")
    readings: Mapped[int] = mapped_column(Integer)  # readings with a value
    missing: Mapped[int] = mapped_column(Integer, default=0)
    sum_c: Mapped[float] = mapped_column(Float)
    min_c: Mapped[float | None] = mapped_column(Float)
    max_c: Mapped[float | None] = mapped_column(Float)
    first_ts: Mapped[float] = mapped_column(Float)
    last_ts: Mapped[float] = mapped_column(Float)


class FleetAlarm(Base):
    """A fleet alarm (hub.alarms): raised, refreshed while its condition holds, then cleared.

    At most one alarm per (kind, subject) is open (``cleared_at`` NULL): a partial unique index.
    """

    __tablename__ = "fleet_alarms"
    __table_args__ = (
        Index("ux_fleet_alarms_open", "kind", "subject", unique=True,
              sqlite_where=text("cleared_at IS NULL"),
              postgresql_where=text("cleared_at IS NULL")),
        Index("ix_fleet_alarms_raised_at", "raised_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(80))  # gateway_silent, gateway_reported:disk_low...
    subject: Mapped[str] = mapped_column(String(128))  # gateway id, or "<gateway>/<probe>"
    gateway_id: Mapped[str] = mapped_column(String(32), index=True)
    site: Mapped[str] = mapped_column(String(32), default="")
    severity: Mapped[str] = mapped_column(String(16))  # info, warning, error, critical
    message: Mapped[str] = mapped_column(Text)  # what is wrong, with the numbers
    raised_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]  # the last evaluation that found the condition
    cleared_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    acknowledged_at: Mapped[datetime | None]


class QuarantinedMessage(Base):
    """A message the hub could not accept, kept with the reason for an admin to look at."""

    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(256))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    reason: Mapped[str] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime]
