"""Finding tickets: the one a change is about (it must exist and must not be merged away),
and a ticket's related ones (the same customer's others)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.errors import Conflict, NotFound
from hub.models import Ticket
from hub.tickets import states


def live_ticket(session: Session, ticket_id: int, *, instead: str = "",
                lock: bool = True) -> Ticket:
    """Return the ticket (row-locked unless ``lock`` is False).

    NotFound if there is none; Conflict naming the ticket it joined if it was merged, with
    ``instead`` (what to do there) appended.
    """
    ticket = session.get(Ticket, ticket_id, with_for_update=lock)
    if ticket is None:
        raise NotFound(f"ticket {ticket_id} does not exist")
    if ticket.status == states.MERGED:
        raise Conflict(f"ticket {ticket.id} was merged into ticket {ticket.merged_into}"
                       + (f"; {instead}" if instead else ""))
    return ticket


def related_tickets(session: Session, ticket: Ticket, *, limit: int = 10) -> list[Ticket]:
    """Return the same customer's other tickets, newest first: by customer id when the
    customer is known, else by the customer key (a phone or a channel's sender)."""
    same = (Ticket.customer_id == ticket.customer_id if ticket.customer_id is not None
            else Ticket.customer_key == ticket.customer_key)
    if ticket.customer_id is None and ticket.customer_key is None:
        return []
    return list(session.scalars(select(Ticket).where(same, Ticket.id != ticket.id)
                                .order_by(Ticket.created_at.desc(), Ticket.id.desc())
                                .limit(limit)))
