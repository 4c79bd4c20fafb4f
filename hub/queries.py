"""Read-side views of the hub's records for the JSON API and the admin UI."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.models import (
    CustodyRecord,
    Customer,
    FleetAlarm,
    Gateway,
    GradeRecord,
    Item,
    Order,
    Pickup,
    QuarantinedMessage,
    Scan,
    Ticket,
)
from hub.returns import CLOSED_TICKET_STATUSES, PICKUP_COLLECTED, PICKUP_ISSUED

MAX_LIMIT = 1000


def as_utc(value: datetime) -> datetime:
    """Return ``value`` as an aware UTC datetime; naive values (SQLite) are taken as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One dated thing that happened to an order or item."""

    ts: datetime
    kind: str  # ticket, pickup, custody, scan, grade
    summary: str
    item_id: str | None = None
    grade: str | None = None  # for grade entries: resell/discount/scrap/check


@dataclass(frozen=True, slots=True)
class ItemHistory:
    """An item and everything recorded about it, oldest first."""

    item: Item
    scans: Sequence[Scan]
    grades: Sequence[GradeRecord]
    custody: Sequence[CustodyRecord]
    timeline: Sequence[TimelineEntry]


@dataclass(frozen=True, slots=True)
class OrderView:
    """An order with its customer, items, tickets, pickups and the latest grade of each item."""

    order: Order
    customer: Customer | None
    items: Sequence[Item]
    tickets: Sequence[Ticket]
    pickups: Sequence[Pickup]
    latest_grades: dict[str, GradeRecord]
    timeline: Sequence[TimelineEntry]


@dataclass(frozen=True, slots=True)
class GradeRow:
    """A grade with the product and order of its item, when the hub knows the item."""

    grade: GradeRecord
    product: str | None
    order_id: str | None


@dataclass(frozen=True, slots=True)
class DashboardCounts:
    """The headline numbers of the admin dashboard."""

    orders: int
    tickets_open: int
    pickups_issued: int
    pickups_collected: int
    scans: int
    grades: dict[str, int] = field(default_factory=dict)
    quarantined: int = 0
    gateways_online: int = 0
    gateways: int = 0
    alarms_open: int = 0  # fleet alarms not cleared (hub.alarms)

    @property
    def grades_total(self) -> int:
        """Return the number of grades of every kind."""
        return sum(self.grades.values())


def item_history(session: Session, item_id: str) -> ItemHistory | None:
    """Return the item with its scans, grades and custody records, or None if it is unknown."""
    item = session.get(Item, item_id)
    if item is None:
        return None
    scans = session.scalars(select(Scan).where(Scan.item_id == item_id)
                            .order_by(Scan.ts, Scan.message_id)).all()
    grades = session.scalars(select(GradeRecord).where(GradeRecord.item_id == item_id)
                             .order_by(GradeRecord.ts, GradeRecord.message_id)).all()
    custody = session.scalars(select(CustodyRecord).where(CustodyRecord.item_id == item_id)
                              .order_by(CustodyRecord.ts, CustodyRecord.message_id)).all()
    timeline = _sorted([*map(_scan_entry, scans), *map(_grade_entry, grades),
                        *map(_custody_entry, custody)])
    return ItemHistory(item, scans, grades, custody, timeline)


def order_view(session: Session, order_id: str) -> OrderView | None:
    """Return an order with everything after-sales recorded about it, or None if unknown."""
    order = session.get(Order, order_id)
    if order is None:
        return None
    customer = session.get(Customer, order.customer_id)
    items = session.scalars(select(Item).where(Item.order_id == order_id).order_by(Item.id)).all()
    item_ids = [item.id for item in items]
    tickets = session.scalars(select(Ticket).where(Ticket.order_id == order_id)
                              .order_by(Ticket.created_at, Ticket.id)).all()
    pickups = session.scalars(select(Pickup).where(Pickup.item_id.in_(item_ids))
                              .order_by(Pickup.issued_at, Pickup.id)).all()
    scans = session.scalars(select(Scan).where(Scan.item_id.in_(item_ids))).all()
    grades = session.scalars(select(GradeRecord).where(GradeRecord.item_id.in_(item_ids))
                             .order_by(GradeRecord.ts, GradeRecord.message_id)).all()
    custody = session.scalars(select(CustodyRecord)
                              .where(CustodyRecord.item_id.in_(item_ids))).all()
    latest = {grade.item_id: grade for grade in grades}  # ordered by time: the last one wins
    timeline = _sorted([*map(_ticket_entry, tickets), *map(_pickup_entry, pickups),
                        *map(_custody_entry, custody), *map(_scan_entry, scans),
                        *map(_grade_entry, grades)])
    return OrderView(order, customer, items, tickets, pickups, latest, timeline)


def recent_scans(session: Session, *, limit: int = 50,
                 since: datetime | None = None) -> Sequence[Scan]:
    """Return the newest scans, or with ``since`` the first ones after it, oldest first."""
    query = select(Scan)
    if since is None:
        query = query.order_by(Scan.ts.desc(), Scan.message_id.desc())
    else:
        query = query.where(Scan.ts > _db_time(since)).order_by(Scan.ts, Scan.message_id)
    return session.scalars(query.limit(_clamp(limit))).all()


def recent_grades(session: Session, *, limit: int = 20) -> list[GradeRow]:
    """Return the newest grades, newest first, with their item's product and order."""
    rows = session.execute(
        select(GradeRecord, Item.product, Item.order_id)
        .outerjoin(Item, Item.id == GradeRecord.item_id)
        .order_by(GradeRecord.ts.desc(), GradeRecord.message_id.desc())
        .limit(_clamp(limit))
    ).all()
    return [GradeRow(grade, product, order_id) for grade, product, order_id in rows]


def open_tickets(session: Session, *, limit: int = 20) -> Sequence[Ticket]:
    """Return the oldest tickets that are still open, oldest first."""
    return session.scalars(
        select(Ticket).where(Ticket.status.not_in(CLOSED_TICKET_STATUSES))
        .order_by(Ticket.created_at, Ticket.id).limit(_clamp(limit))
    ).all()


def fleet(session: Session) -> Sequence[Gateway]:
    """Return every gateway, by site and id."""
    return session.scalars(select(Gateway).order_by(Gateway.site, Gateway.id)).all()


def quarantine(session: Session, *, limit: int = 100) -> Sequence[QuarantinedMessage]:
    """Return the newest quarantined messages, newest first."""
    return session.scalars(
        select(QuarantinedMessage)
        .order_by(QuarantinedMessage.received_at.desc(), QuarantinedMessage.id.desc())
        .limit(_clamp(limit))
    ).all()


def dashboard_counts(session: Session) -> DashboardCounts:
    """Return the dashboard's counts of orders, tickets, pickups, scans, grades and faults."""
    pickups = _grouped(session, Pickup.status)
    online = session.scalar(select(func.count()).select_from(Gateway)
                            .where(Gateway.online.is_(True))) or 0
    return DashboardCounts(
        orders=_count(session, Order),
        tickets_open=session.scalar(
            select(func.count()).select_from(Ticket)
            .where(Ticket.status.not_in(CLOSED_TICKET_STATUSES))) or 0,
        pickups_issued=pickups.get(PICKUP_ISSUED, 0),
        pickups_collected=pickups.get(PICKUP_COLLECTED, 0),
        scans=_count(session, Scan),
        grades=_grouped(session, GradeRecord.grade),
        quarantined=_count(session, QuarantinedMessage),
        gateways_online=online,
        gateways=_count(session, Gateway),
        alarms_open=session.scalar(select(func.count()).select_from(FleetAlarm)
                                   .where(FleetAlarm.cleared_at.is_(None))) or 0,
    )


def _count(session: Session, model: type[Any]) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def _grouped(session: Session, column: Any) -> dict[str, int]:
    rows = session.execute(select(column, func.count()).group_by(column)).all()
    return {key: count for key, count in rows}


def _clamp(limit: int) -> int:
    return max(1, min(int(limit), MAX_LIMIT))


def _db_time(value: datetime) -> datetime:
    # SQLite keeps the wall-clock digits only; every stored time is UTC, so compare in UTC.
    return as_utc(value)


def _sorted(entries: Iterable[TimelineEntry]) -> list[TimelineEntry]:
    return sorted(entries, key=lambda entry: as_utc(entry.ts))


def _ticket_entry(ticket: Ticket) -> TimelineEntry:
    first_line = ticket.text.splitlines()[0] if ticket.text else ""
    return TimelineEntry(ticket.created_at, "ticket",
                         f"Ticket #{ticket.id} opened via {ticket.channel}: {first_line}")


def _pickup_entry(pickup: Pickup) -> TimelineEntry:
    return TimelineEntry(pickup.issued_at, "pickup",
                         f"Pickup code {pickup.code} issued", pickup.item_id)


def _custody_entry(record: CustodyRecord) -> TimelineEntry:
    action = record.action.replace("_", " ")
    return TimelineEntry(record.ts, "custody",
                         f"{action.capitalize()} by {record.actor} at {record.location}",
                         record.item_id)


def _scan_entry(scan: Scan) -> TimelineEntry:
    temp = "no probe reading" if scan.core_temp_c is None else f"core {scan.core_temp_c:.1f} °C"
    return TimelineEntry(scan.ts, "scan", f"Scanned at {scan.station}, {temp}", scan.item_id)


def _grade_entry(grade: GradeRecord) -> TimelineEntry:
    rule = f", rule {grade.rule}" if grade.rule else ""
    return TimelineEntry(grade.ts, "grade",
                         f"Graded {grade.grade} at {grade.station} "
                         f"(model {grade.model_version}{rule})",
                         grade.item_id, grade.grade)
