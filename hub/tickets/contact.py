"""Agents' messages and logged calls: the first one stops the FIRST_CONTACT clock."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy.orm import Session

from hub.errors import Conflict, InvalidInput, NotFound
from hub.models import Ticket
from hub.tickets import sla, states
from hub.tickets.models import TicketMessage
from hub.tickets.policy import DEFAULT_CONFIG, TicketConfig

Kind = Literal["message", "call", "note"]  # a note is internal: not a contact


def record_contact(session: Session, ticket_id: int, *, agent: str, text: str, kind: Kind,
                   now: datetime, config: TicketConfig = DEFAULT_CONFIG) -> TicketMessage:
    """Store an agent's message, call log or internal note on the ticket."""
    if not agent.strip():
        raise InvalidInput("author is required: the agent who contacted the customer")
    if not text.strip():
        raise InvalidInput("text must be a non-empty string")
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound(f"ticket {ticket_id} does not exist")
    if ticket.status == states.MERGED:
        raise Conflict(f"ticket {ticket.id} was merged into ticket {ticket.merged_into}; "
                       "write there")
    message = TicketMessage(ticket_id=ticket.id, channel="agent", external_id=None,
                            direction="note" if kind == "note" else "out",
                            author=agent.strip(), text=text.strip(), meta={"kind": kind},
                            received_at=now)
    session.add(message)
    if kind != "note" and ticket.first_contact_at is None:
        ticket.first_contact_at = now
        sla.on_event(session, ticket, sla.CONTACTED, now, config)
    session.flush()
    return message
