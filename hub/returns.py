"""Returns: a complaint opens a ticket and a pickup code; a driver's code proves collection.

Plain functions over a SQLAlchemy session. They flush but never commit: the caller owns the
transaction (a web request, a console command, a test).
"""

from __future__ import annotations

import logging
import random
from datetime import datetime

from sqlalchemy import Update, select, update
from sqlalchemy.orm import Session

from hub.errors import Conflict, InvalidInput, NotFound
from hub.models import CustodyRecord, Item, Order, Pickup, Ticket
from hub.tickets import intake, states
from protocols import pickup_code
from protocols.errors import PickupCodeError
from protocols.messages import CustodyAction

logger = logging.getLogger(__name__)

CHANNELS = intake.CHANNELS
# The workflow's statuses (hub.tickets.states) past which a ticket takes no new messages.
CLOSED_TICKET_STATUSES = states.CLOSED_STATUSES
PICKUP_ISSUED = "issued"
PICKUP_COLLECTED = "collected"
TEXT_SEPARATOR = intake.TEXT_SEPARATOR
MAX_TEXT = intake.MAX_TEXT
_CODE_ATTEMPTS = 20


def open_return(session: Session, *, order_id: str, item_id: str, channel: str, text: str,
                now: datetime, rng: random.Random,
                triage: intake.TriageFn = intake.default_triage) -> tuple[Ticket, Pickup]:
    """Record a complaint about an item and return its ticket and the pickup to collect it.

    The complaint goes through ticket intake (hub.tickets.intake) as the order's customer: a
    second complaint for the same order and customer joins the open ticket; an item that
    already has an issued pickup keeps it (and its code).
    """
    _require_text("order_id", order_id, 32)
    _require_text("item_id", item_id, 16)
    if channel not in CHANNELS:
        raise InvalidInput(f"channel {channel!r} is not one of {', '.join(sorted(CHANNELS))}")
    _require_text("text", text, MAX_TEXT)

    _lock(session, update(Order).where(Order.id == order_id).values(status=Order.status))
    order = session.get(Order, order_id)
    if order is None:
        raise NotFound(f"order {order_id!r} does not exist")
    item = session.get(Item, item_id)
    if item is None:
        raise NotFound(f"item {item_id!r} does not exist")
    if item.order_id != order.id:
        raise InvalidInput(f"item {item_id!r} is not part of order {order_id!r}")

    pickups = session.scalars(
        select(Pickup).where(Pickup.item_id == item.id).order_by(Pickup.id)
    ).all()
    active = next((p for p in pickups if p.status == PICKUP_ISSUED), None)
    collected = next((p for p in pickups if p.status == PICKUP_COLLECTED), None)
    if active is None and collected is not None:
        raise Conflict(f"item {item_id!r} was already collected with pickup code "
                       f"{collected.code} by {collected.driver}; no new pickup is issued")

    complaint = intake.Complaint(channel=channel, text=text, user_id=order.customer_id,
                                 order_id=order.id, item_ids=(item.id,),
                                 author=f"user:{order.customer_id}")
    ticket = intake.receive(session, complaint, now, triage=triage).ticket

    if active is None:
        active = Pickup(ticket_id=ticket.id, item_id=item.id, code=_fresh_code(session, rng),
                        status=PICKUP_ISSUED, issued_at=now)
        session.add(active)
        session.flush()
        logger.info("pickup %s issued for item %s", active.id, item.id)
    elif active.ticket_id is None:
        active.ticket_id = ticket.id
    return ticket, active


def open_ticket_for(session: Session, order: Order) -> Ticket | None:
    """Return the oldest ticket of the order's customer about the order that is still open."""
    return session.scalars(
        select(Ticket)
        .where(Ticket.order_id == order.id, Ticket.customer_id == order.customer_id,
               Ticket.status.not_in(CLOSED_TICKET_STATUSES))
        .order_by(Ticket.created_at, Ticket.id)
        .limit(1)
    ).first()


def collect(session: Session, *, code: str, driver: str, location: str,
            now: datetime) -> CustodyRecord:
    """Mark the pickup with ``code`` collected by ``driver`` and return its custody record.

    Collecting the same code again by the same driver returns the first record unchanged, so a
    driver's app may retry freely.
    """
    if not isinstance(code, str):
        raise InvalidInput(f"code must be a string like 'XXXX-XXXX', got {type(code).__name__}")
    try:
        canonical = pickup_code.validate(code)
    except PickupCodeError as err:
        raise InvalidInput(f"pickup code {code!r} is invalid: {err}") from err
    _require_text("driver", driver, 64)
    _require_text("location", location, 64)

    _lock(session, update(Pickup).where(Pickup.code == canonical).values(status=Pickup.status))
    pickup = session.scalars(select(Pickup).where(Pickup.code == canonical)).first()
    if pickup is None:
        raise NotFound(f"pickup code {canonical} was never issued; check it with the customer")
    message_id = custody_message_id(pickup)

    if pickup.status == PICKUP_COLLECTED:
        record = session.get(CustodyRecord, message_id)
        if pickup.driver != driver.strip():
            raise Conflict(f"pickup code {canonical} was already collected by {pickup.driver}")
        if record is not None:
            return record
        # Collected without its record (written by hand or an older hub): write it now.
        logger.warning("pickup %s was collected without a custody record", pickup.id)
    elif pickup.status != PICKUP_ISSUED:
        raise Conflict(f"pickup code {canonical} is {pickup.status}, not issued")

    pickup.status = PICKUP_COLLECTED
    pickup.collected_at = pickup.collected_at or now
    pickup.driver = driver.strip()
    record = CustodyRecord(message_id=message_id, item_id=pickup.item_id,
                           action=CustodyAction.PICKED_UP.value, actor=pickup.driver,
                           location=location.strip(), pickup_code=canonical,
                           ts=pickup.collected_at, historical=False)
    session.add(record)
    session.flush()
    logger.info("pickup %s collected by %s at %s", pickup.id, pickup.driver, record.location)
    return record


def custody_message_id(pickup: Pickup) -> str:
    """Return the id of the custody record written when ``pickup`` is collected."""
    return f"driver:{pickup.id}"


def _lock(session: Session, touch: Update) -> None:
    # A no-op UPDATE before reading: it takes the row's lock on PostgreSQL and the write lock
    # on SQLite (where SELECT ... FOR UPDATE does not exist), so two requests about the same
    # order or code queue up instead of both acting on what they read.
    session.execute(touch.execution_options(synchronize_session=False))


def _fresh_code(session: Session, rng: random.Random) -> str:
    for _ in range(_CODE_ATTEMPTS):
        code = pickup_code.generate(rng)
        if session.scalar(select(Pickup.id).where(Pickup.code == code)) is None:
            return code
    raise Conflict(f"no unused pickup code found in {_CODE_ATTEMPTS} draws; is the rng seeded "
                   "with a constant?")


def _require_text(field: str, value: object, max_length: int) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{field} must be a non-empty string, got {value!r}")
    if len(value) > max_length:
        raise InvalidInput(f"{field} is {len(value)} characters long, over the limit of "
                           f"{max_length}")
