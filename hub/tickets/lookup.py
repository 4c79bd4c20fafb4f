"""Finding the ticket a change is about: it must exist and must not be merged away."""

from __future__ import annotations

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
