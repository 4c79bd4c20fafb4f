"""WeChat's reply window: when an agent may message a mini-program customer.

WeChat lets a mini-program send customer-service messages to a user only within 48 h after
the user's last message, and at most 5 of them per such window; each new message of the user
opens a new window. The window belongs to the user (the openid), so messages sent about the
customer's other tickets to the same openid count too. A ticket's reply goes to the channel of
the customer's latest message (the ticket's first channel when it has none). Calls and notes
are not WeChat messages: only ``kind="message"`` is checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.errors import Conflict
from hub.models import Ticket
from hub.tickets.models import TicketMessage

MINI_PROGRAM = "mini_program"
WINDOW = timedelta(hours=48)
MAX_MESSAGES = 5
_INSTEAD = ('call the customer (kind "call") or send an SMS instead, or wait until they write '
            "again: their next message opens a new window")


@dataclass(frozen=True)
class ReplyWindow:
    """The mini-program window a reply would fall in."""

    openid: str | None
    opened_at: datetime  # the customer's last mini-program message
    sent: int  # messages sent to the customer since

    @property
    def closes_at(self) -> datetime:
        """When the window closes."""
        return self.opened_at + WINDOW


def reply_channel(session: Session, ticket: Ticket) -> tuple[str, TicketMessage | None]:
    """Return the channel a reply goes to, and the customer's message that decided it."""
    last = session.scalars(select(TicketMessage).where(
        TicketMessage.ticket_id == ticket.id, TicketMessage.direction == "in")
        .order_by(TicketMessage.received_at.desc(), TicketMessage.id.desc()).limit(1)).first()
    return (last.channel if last is not None else ticket.channel), last


def mini_program_window(session: Session, ticket: Ticket) -> ReplyWindow | None:
    """Return the window of a ticket whose reply goes to the mini-program, else None."""
    channel, last = reply_channel(session, ticket)
    if channel != MINI_PROGRAM:
        return None
    openid = (last.meta or {}).get("openid") if last is not None else None
    opened_at = ticket.created_at if last is None else last.received_at
    same_customer = select(Ticket.id).where(
        Ticket.id == ticket.id if ticket.customer_key is None
        else Ticket.customer_key == ticket.customer_key)
    if openid is not None:  # the user's latest message on any of the customer's tickets
        for message in session.scalars(select(TicketMessage).where(
                TicketMessage.ticket_id.in_(same_customer), TicketMessage.direction == "in",
                TicketMessage.channel == MINI_PROGRAM, TicketMessage.received_at > opened_at)
                .order_by(TicketMessage.received_at.desc())):
            if (message.meta or {}).get("openid") == openid:
                opened_at = message.received_at
                break
    sent = sum(1 for message in session.scalars(select(TicketMessage).where(
        TicketMessage.ticket_id.in_(same_customer), TicketMessage.direction == "out",
        TicketMessage.received_at >= opened_at)) if _sent_to(message, ticket, openid))
    return ReplyWindow(openid, opened_at, sent)


def _sent_to(message: TicketMessage, ticket: Ticket, openid: str | None) -> bool:
    meta = message.meta or {}
    if meta.get("kind") != "message":
        return False
    if "to" in meta:  # check_reply recorded where it went
        return meta["to"] == MINI_PROGRAM and meta.get("openid") == openid
    return message.ticket_id == ticket.id  # sent before the rule: this ticket's


def check_reply(session: Session, ticket: Ticket, now: datetime) -> dict[str, Any]:
    """Refuse a message WeChat would not deliver (Conflict); return where it goes (meta)."""
    window = mini_program_window(session, ticket)
    if window is None:
        return {}
    if now >= window.closes_at:
        raise Conflict(
            f"ticket {ticket.id}: the WeChat mini-program may send messages only within 48 h "
            f"of the customer's last message; theirs was at {window.opened_at.isoformat()}, "
            f"the window closed at {window.closes_at.isoformat()}; {_INSTEAD}")
    if window.sent >= MAX_MESSAGES:
        raise Conflict(
            f"ticket {ticket.id}: the WeChat mini-program may send at most {MAX_MESSAGES} "
            f"messages per 48 h window after the customer's message; {window.sent} were sent "
            f"since theirs at {window.opened_at.isoformat()}; {_INSTEAD}")
    return {"to": MINI_PROGRAM, "openid": window.openid,
            "window_opened_at": window.opened_at.isoformat()}
