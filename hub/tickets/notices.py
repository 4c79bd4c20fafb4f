"""Automatic messages to the customer (a survey link, a request for evidence), each on the
channel that can carry it: the ticket's own channel while its reply window is open (WeChat
allows 5 messages within 48 h of the customer's), else a text message to a phone the customer
is known to own, else kept on the ticket as a note for the agent to pass on by hand.

These are not a human's reply: they never stop the FIRST_CONTACT clock (bots excluded).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from hub.errors import Conflict
from hub.models import Ticket
from hub.tickets import reply_window
from hub.tickets.call_back import call_back
from hub.tickets.models import TicketMessage

SMS = "sms"
KEPT = "ticket"  # no channel could take it: it waits on the ticket for the agent
EVIDENCE_AUTHOR = "evidence-request"


def notify_customer(session: Session, ticket: Ticket, text: str, now: datetime, *,
                    author: str, meta: dict[str, object],
                    kept_as: str = "to pass on") -> TicketMessage:
    """Record an automatic message to the ticket's customer on the channel that can carry
    it; ``meta`` marks what it is (``{"survey": True}``), ``kept_as`` is its kind when no
    channel could take it; the channel is the message's."""
    channel, _ = reply_window.reply_channel(session, ticket)
    sent = {"kind": "message", **meta}
    try:
        sent |= reply_window.check_reply(session, ticket, now)
    except Conflict:  # outside WeChat's window: a text message instead, if we have a phone
        phone = call_back(session, ticket)
        channel = SMS if phone is not None and phone.verified else KEPT
        sent = {"kind": kept_as if channel == KEPT else "message", **meta, "to": channel}
    message = TicketMessage(ticket_id=ticket.id, channel=channel, external_id=None,
                            direction="note" if channel == KEPT else "out", author=author,
                            text=text, meta=sent, received_at=now)
    session.add(message)
    session.flush()
    return message


def request_evidence(session: Session, ticket: Ticket, now: datetime) -> TicketMessage:
    """Ask the customer for photos of what went wrong (a complex case needs them)."""
    about = f" (order {ticket.order_id})" if ticket.order_id else ""
    return notify_customer(
        session, ticket, f"To settle your complaint #{ticket.id}{about} we need to see the "
        "item: please send photos of it and of its label, and of the packaging if it was "
        "damaged, in reply to this message or on the complaint's page in the app.", now,
        author=EVIDENCE_AUTHOR, meta={"evidence_request": True}, kept_as="evidence request")
