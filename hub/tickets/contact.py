"""Agents' messages and logged calls: the first one stops the FIRST_CONTACT clock.

A hotline call an agent answered is a contact too, at the call's time. A message to a
mini-program customer must fit WeChat's reply window (hub.tickets.reply_window).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from sqlalchemy.orm import Session

from hub.errors import InvalidInput
from hub.models import Ticket
from hub.tickets import reply_window, sla
from hub.tickets.lookup import live_ticket
from hub.tickets.models import TicketMessage
from hub.tickets.policy import DEFAULT_CONFIG, TicketConfig
from hub.tickets.workflow import audit

Kind = Literal["message", "call", "note"]  # a note is internal: not a contact


def record_contact(session: Session, ticket_id: int, *, agent: str, text: str, kind: Kind,
                   now: datetime, config: TicketConfig = DEFAULT_CONFIG) -> TicketMessage:
    """Store an agent's message, call log or internal note on the ticket."""
    if not agent.strip():
        raise InvalidInput("author is required: the agent who contacted the customer")
    if not text.strip():
        raise InvalidInput("text must be a non-empty string")
    ticket = live_ticket(session, ticket_id, instead="write there", lock=False)
    meta: dict[str, object] = {"kind": kind}
    if kind == "message":
        meta |= reply_window.check_reply(session, ticket, now)  # 409 outside WeChat's window
    message = TicketMessage(ticket_id=ticket.id, channel="agent", external_id=None,
                            direction="note" if kind == "note" else "out",
                            author=agent.strip(), text=text.strip(), meta=meta,
                            received_at=now)
    session.add(message)
    if kind != "note" and ticket.first_contact_at is None:
        ticket.first_contact_at = now
        sla.on_event(session, ticket, sla.CONTACTED, now, config)
    session.flush()
    return message


def record_answered_call(session: Session, ticket: Ticket, *, agent: str, call_id: str | None,
                         at: datetime, now: datetime,
                         config: TicketConfig = DEFAULT_CONFIG) -> bool:
    """Count a hotline call an agent answered as contact with the customer; audited.

    The contact is at the call's start, but not before the ticket was opened (the call opened
    it) nor after ``now``. Returns whether this was the ticket's first contact.
    """
    if ticket.first_contact_at is not None:
        return False
    when = min(now, max(at, ticket.created_at)).astimezone(UTC)
    ticket.first_contact_at = when
    sla.on_event(session, ticket, sla.CONTACTED, when, config)
    audit(session, ticket, ticket.status, ticket.status, actor=agent[:64], now=now,
          reason=f"first contact: hotline call {call_id or '(no id)'} answered by {agent}",
          details={"event": "first_contact", "channel": "hotline", "call_id": call_id,
                   "agent_id": agent, "contact_at": when.isoformat()})
    return True
