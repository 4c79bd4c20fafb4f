"""The number an agent calls a ticket's customer on, and whether the customer owns it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy.orm import Session

from hub.models import Customer, Ticket
from hub.phones import as_phone

Source = Literal["customer record", "verified phone", "caller id"]
_KEYS: dict[str, Source] = {"phone": "verified phone", "hotline": "caller id"}


@dataclass(frozen=True)
class CallBack:
    """A phone number in E.164 (hub.phones) and where it comes from."""

    number: str
    source: Source

    @property
    def verified(self) -> bool:
        """Whether the customer is known to own it (a caller id may be a borrowed phone)."""
        return self.source != "caller id"


def call_back(session: Session, ticket: Ticket) -> CallBack | None:
    """Return the customer's phone, else the verified phone or caller id the ticket came
    from; None when the hub knows no number (an app user without one, a social post)."""
    if ticket.customer_id is not None:
        customer = session.get(Customer, ticket.customer_id)
        if customer is not None and customer.phone:
            return CallBack(customer.phone, "customer record")
    source, _, sender = (ticket.customer_key or "").partition(":")
    number = as_phone(sender) if source in _KEYS else None  # a key written before 0015 ...
    return CallBack(number, _KEYS[source]) if number else None  # ... may hold no number
