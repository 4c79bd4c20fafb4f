"""Intake: every channel's complaint becomes a message of exactly one ticket.

A :class:`Complaint` is the normalised form of a channel's payload (hub.tickets.channels).
The customer key is the platform user id, else a verified phone (mapped to the customer who
has it), else the channel's own id of the sender; two known ids are never merged. A complaint
joins the open ticket of the same customer key and order created within the merge window,
keeping its message; otherwise it opens a ticket, triaged, with the order, its items and the
customer's history attached, its SLA clocks started and an agent sought. Intake is idempotent
on (channel, external message id): a redelivered webhook returns the ticket it made.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub import phones
from hub.errors import InvalidInput, NotFound
from hub.models import Customer, Item, Order, Ticket
from hub.tickets import contact, routing, sla, states, urgency
from hub.tickets.models import Agent, TicketMessage
from hub.tickets.policy import DEFAULT_CONFIG, TicketConfig
from hub.tickets.workflow import audit

logger = logging.getLogger(__name__)

CHANNELS = frozenset({"app", "mini_program", "hotline", "social"})
TEXT_SEPARATOR = "\n\n--- {when} via {channel} ---\n"
MAX_TEXT = 4000


class TriageResult(Protocol):
    """What intake reads of hub.triage.classifier.Triage."""

    @property
    def category(self) -> str: ...
    @property
    def urgency(self) -> str: ...
    @property
    def sentiment(self) -> str: ...
    @property
    def sentiment_score(self) -> float: ...
    @property
    def keywords(self) -> list[str]: ...
    @property
    def confidence(self) -> float: ...
    @property
    def language(self) -> str: ...
    @property
    def model_version(self) -> str: ...


TriageFn = Callable[[str], TriageResult]


@dataclass(frozen=True)
class NoTriage:
    """The triage of a hub without the classifier: nothing known, standard urgency."""

    category: str = "other"
    urgency: str = "P3"
    sentiment: str = "neutral"
    sentiment_score: float = 0.0
    keywords: list[str] = field(default_factory=list)
    confidence: float = 0.0
    language: str = ""
    model_version: str = "none"


def default_triage(text: str) -> TriageResult:
    """Classify with hub.triage.classifier (imported on first use).

    A complaint is never lost to the classifier: when it is missing or fails (no trained
    model yet), the ticket gets :class:`NoTriage` (model version "none") and a human triages.
    """
    try:
        from hub.triage.classifier import classify_one
        result: TriageResult = classify_one(text)
    except Exception:  # any failure of the classifier: logged, intake goes on
        logger.warning("triage failed; the ticket is stored untriaged", exc_info=True)
        return NoTriage()
    return result


@dataclass(frozen=True)
class Complaint:
    """One customer message from any channel, normalised."""

    channel: str
    text: str
    external_id: str | None = None
    user_id: str | None = None
    phone: str | None = None  # compared in E.164 (hub.phones)
    phone_verified: bool = False
    sender: str | None = None  # the channel's own id of the sender (openid, social handle)
    order_id: str | None = None
    item_ids: tuple[str, ...] = ()
    author: str = "customer"
    meta: Mapping[str, Any] = field(default_factory=dict)
    answered_by: str | None = None  # the agent who took the call: a contact with the customer
    answered_at: datetime | None = None  # when the call started (else when it was received)


@dataclass(frozen=True)
class IntakeResult:
    """The ticket a complaint went to, its message, and whether either was new."""

    ticket: Ticket
    message: TicketMessage
    created: bool  # a new ticket
    duplicate: bool  # the same (channel, external id) was received before


def receive(session: Session, complaint: Complaint, now: datetime, *,
            triage: TriageFn = default_triage, config: TicketConfig = DEFAULT_CONFIG,
            route: bool = True) -> IntakeResult:
    """Store a complaint as a message of a new or the matching open ticket."""
    _validate(complaint)
    if complaint.answered_by and session.get(Agent, complaint.answered_by) is None:
        raise InvalidInput(f"agent_id {complaint.answered_by!r} is not an agent of the hub; "
                           "register the agent (PUT /api/v1/agents/<id>) or leave it out")
    if complaint.external_id is not None:
        seen = _seen(session, complaint)
        if seen is not None:
            return seen
    customer, key = _identify(session, complaint)
    order = _order(session, complaint, customer)

    ticket = _open_ticket(session, key, order, now, config)
    created = ticket is None
    result = triage(complaint.text)
    if ticket is None:
        ticket = _new_ticket(session, complaint, customer, key, order, result, now, config)
    else:
        _merge(session, ticket, complaint, result, now, config)
    message = TicketMessage(ticket_id=ticket.id, channel=complaint.channel,
                            external_id=complaint.external_id, direction="in",
                            author=complaint.author[:64], text=complaint.text.strip(),
                            meta=dict(complaint.meta), received_at=now)
    try:
        with session.begin_nested():
            session.add(message)
    except IntegrityError:  # a concurrent delivery of the same webhook won
        seen = _seen(session, complaint)
        if seen is None:
            raise
        return seen
    ticket.context = {**(ticket.context or {}),
                      **attachments(session, customer, order, ticket.id, complaint.item_ids)}
    if created:
        audit(session, ticket, None, states.NEW, actor=f"intake:{complaint.channel}",
              reason="complaint received", now=now,
              details={"triage_model": ticket.triage_model_version})
        sla.start_clocks(session, ticket, now, config)
    if complaint.answered_by:
        contact.record_answered_call(session, ticket, agent=complaint.answered_by,
                                     call_id=complaint.external_id,
                                     at=complaint.answered_at or now, now=now, config=config)
    if created and route:
        routing.assign(session, ticket, now, config=config)
    session.flush()
    logger.info("complaint via %s %s ticket %s", complaint.channel,
                "opened" if created else "joined", ticket.id)
    return IntakeResult(ticket, message, created=created, duplicate=False)


def _validate(complaint: Complaint) -> None:
    if complaint.channel not in CHANNELS:
        raise InvalidInput(f"channel {complaint.channel!r} is not one of "
                           f"{', '.join(sorted(CHANNELS))}")
    if not complaint.text.strip():
        raise InvalidInput("text must be a non-empty string")
    if len(complaint.text) > MAX_TEXT:
        raise InvalidInput(f"text is {len(complaint.text)} characters long, over the limit of "
                           f"{MAX_TEXT}")


def _seen(session: Session, complaint: Complaint) -> IntakeResult | None:
    message = session.scalars(select(TicketMessage).where(
        TicketMessage.channel == complaint.channel,
        TicketMessage.external_id == complaint.external_id)).first()
    if message is None:
        return None
    ticket = session.get(Ticket, message.ticket_id)
    assert ticket is not None
    return IntakeResult(ticket, message, created=False, duplicate=True)


def _identify(session: Session, complaint: Complaint) -> tuple[Customer | None, str]:
    if complaint.user_id:
        customer = session.get(Customer, complaint.user_id)
        if customer is None:
            raise NotFound(f"customer {complaint.user_id!r} does not exist")
        return customer, f"user:{customer.id}"
    if complaint.phone and complaint.phone_verified:
        phone = _phone(complaint.phone)  # stored phones are E.164 (hub.phones)
        owners = session.scalars(select(Customer).where(Customer.phone == phone)
                                 .limit(2)).all()
        if len(owners) == 1:
            return owners[0], f"user:{owners[0].id}"
        return None, f"phone:{phone}"
    if complaint.sender:
        return None, f"{complaint.channel}:{complaint.sender}"
    raise InvalidInput("the complaint names no customer: send a user id, a verified phone or "
                       "the channel's sender id")


def _phone(written: str) -> str:
    try:
        return phones.normalise(written)
    except ValueError as error:
        raise InvalidInput(f"phone: {error}") from None


def _order(session: Session, complaint: Complaint, customer: Customer | None) -> Order | None:
    if complaint.order_id is None:
        if complaint.item_ids:
            raise InvalidInput("item_ids need an order_id")
        return None
    # A no-op UPDATE: two complaints about one order queue up (row lock / SQLite write lock).
    session.execute(update(Order).where(Order.id == complaint.order_id)
                    .values(status=Order.status).execution_options(synchronize_session=False))
    order = session.get(Order, complaint.order_id)
    if order is None:
        raise NotFound(f"order {complaint.order_id!r} does not exist")
    if customer is not None and order.customer_id != customer.id:
        raise InvalidInput(f"order {order.id!r} is not an order of customer {customer.id!r}")
    for item_id in complaint.item_ids:
        item = session.get(Item, item_id)
        if item is None:
            raise NotFound(f"item {item_id!r} does not exist")
        if item.order_id != order.id:
            raise InvalidInput(f"item {item_id!r} is not part of order {order.id!r}")
    return order


def _open_ticket(session: Session, key: str, order: Order | None, now: datetime,
                 config: TicketConfig) -> Ticket | None:
    since = now - timedelta(hours=config.merge_window_h)
    query = select(Ticket).where(Ticket.customer_key == key,
                                 Ticket.status.in_(states.STILL_OPEN),
                                 Ticket.created_at >= since)
    query = query.where(Ticket.order_id == order.id if order is not None
                        else Ticket.order_id.is_(None))
    return session.scalars(query.order_by(Ticket.created_at, Ticket.id).limit(1)).first()


def _new_ticket(session: Session, complaint: Complaint, customer: Customer | None, key: str,
                order: Order | None, result: TriageResult, now: datetime,
                config: TicketConfig) -> Ticket:
    value = (session.scalar(select(func.sum(Item.price_cents)).where(Item.order_id == order.id))
             if order is not None else None)
    assessed = urgency.assess(result.urgency, urgency.Situation(
        channel=complaint.channel, tier=customer.tier if customer else None,
        order_value_cents=value, last_contact=_last_contact(session, Ticket.customer_key == key)),
        now, config)
    ticket = Ticket(
        order_id=order.id if order else None, customer_id=customer.id if customer else None,
        customer_key=key, channel=complaint.channel, text=complaint.text.strip(),
        category=(result.category or "other")[:16], status=states.NEW, created_at=now,
        language=(result.language or None), urgency=assessed.urgency,
        priority=assessed.urgency,
        sentiment=result.sentiment, sentiment_score=result.sentiment_score,
        keywords=list(result.keywords), triage_confidence=result.confidence,
        triage_model_version=result.model_version,
        triage_state="review" if result.confidence < config.triage_review_below else "auto",
        team=config.team_for(result.category or "other"),
        tier=customer.tier if customer else None,
        region=(customer.region or None) if customer else None,
        context={"urgency": {"triage": result.urgency, "raised": list(assessed.raised),
                             "situation": assessed.situation}})
    session.add(ticket)
    session.flush()
    return ticket


def _last_contact(session: Session, *where: ColumnElement[bool]) -> datetime | None:
    """When the customer last wrote or called about the tickets ``where`` selects."""
    return session.scalar(select(func.max(TicketMessage.received_at))
                          .join(Ticket, Ticket.id == TicketMessage.ticket_id)
                          .where(TicketMessage.direction == "in", *where))


def _merge(session: Session, ticket: Ticket, complaint: Complaint, result: TriageResult,
           now: datetime, config: TicketConfig) -> None:
    ticket.text += TEXT_SEPARATOR.format(when=now.isoformat(timespec="seconds"),
                                         channel=complaint.channel) + complaint.text.strip()
    if result.urgency in states.URGENCIES:
        ticket.urgency = states.more_urgent(ticket.urgency, result.urgency)
    explained = dict((ticket.context or {}).get("urgency") or {"triage": ticket.urgency})
    last = (_last_contact(session, Ticket.id == ticket.id)
            if not explained.get("set_by") else None)  # a person's word stands
    again = urgency.repeat_contact(urgency.Assessment(
        ticket.urgency, tuple(explained.get("raised") or ()),
        situation=bool(explained.get("situation"))), last, now, config)
    ticket.urgency = again.urgency
    ticket.priority = states.more_urgent(ticket.priority, ticket.urgency)
    ticket.context = {**(ticket.context or {}), "urgency": explained | {
        "raised": list(again.raised), "situation": again.situation}}
    if ticket.category == "other" and result.category:
        ticket.category = result.category[:16]
    ticket.keywords = sorted({*(ticket.keywords or []), *result.keywords})


def attachments(session: Session, customer: Customer | None, order: Order | None,
                ticket_id: int, item_ids: tuple[str, ...] = ()) -> dict[str, Any]:
    """Return the order, its items and the customer's history, as stored on the ticket."""
    found: dict[str, Any] = {}
    if order is not None:
        items = session.scalars(select(Item).where(Item.order_id == order.id)
                                .order_by(Item.id)).all()
        found["order"] = {"id": order.id, "status": order.status,
                          "placed_at": order.placed_at.isoformat(),
                          "delivered_at": order.delivered_at.isoformat()
                          if order.delivered_at else None}
        found["items"] = [{"id": i.id, "product": i.product, "lot": i.lot,
                           "price_cents": i.price_cents, "disposition": i.disposition,
                           "complained": i.id in item_ids} for i in items]
    if customer is not None:
        others = select(Ticket).where(Ticket.customer_id == customer.id, Ticket.id != ticket_id)
        count = session.scalar(select(func.count()).select_from(others.subquery())) or 0
        open_count = session.scalar(select(func.count()).select_from(
            others.where(Ticket.status.in_(states.OPEN_STATUSES)).subquery())) or 0
        last = session.scalar(select(func.max(Ticket.created_at))
                              .where(Ticket.customer_id == customer.id, Ticket.id != ticket_id))
        orders = session.scalar(select(func.count()).select_from(Order)
                                .where(Order.customer_id == customer.id)) or 0
        found["customer"] = {"id": customer.id, "name": customer.name, "tier": customer.tier,
                             "region": customer.region}
        found["history"] = {"previous_tickets": count, "open_tickets": open_count,
                            "last_ticket_at": last.isoformat() if last else None,
                            "orders": orders}
    return found
