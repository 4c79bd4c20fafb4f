"""Finding tickets from what a person has at hand: a ticket number, an order, a customer, words.

A customer on the phone gives an order number, a phone number or a few words of what they
wrote; an agent types that into one box. :func:`matching` is the SQL condition of the tickets
it finds, so it combines with any other filter and keeps the caller's order and paging.
"""

from __future__ import annotations

import re

from sqlalchemy import ColumnElement, and_, exists, false, func, or_, select

from hub import phones
from hub.errors import InvalidInput
from hub.inputs import MAX_ROW_ID
from hub.models import Customer, Ticket
from hub.tickets.models import TicketMessage

MAX_SEARCH = 200  # characters
MAX_WORDS = 8
_TICKET_NUMBER = re.compile(r"^#?(\d{1,19})$")


def matching(text: str) -> ColumnElement[bool]:
    """The tickets ``text`` finds, any of:

    - the ticket itself: "#12" or "12";
    - its order or customer id, whole, in any case;
    - its sender, exactly: a social handle ("weibo:li_na") or the whole customer key
      ("user:C-1");
    - its sender's or its customer's phone, however written ("+86 138 0000 0001",
      "13800000001": compared in E.164, hub.phones);
    - its customer's name, in part;
    - every word of ``text`` (split at white space, any case) in its messages, each in one of
      them (Chinese, written without spaces, is one word: a phrase).

    ``InvalidInput`` names the problem of an empty or overlong text.
    """
    text = text.strip()
    if not text:
        raise InvalidInput("give a ticket number, an order, a customer or words")
    if len(text) > MAX_SEARCH:
        raise InvalidInput(f"at most {MAX_SEARCH} characters, got {len(text)}")
    words = text.split()
    if len(words) > MAX_WORDS:
        raise InvalidInput(f"at most {MAX_WORDS} words, got {len(words)}")
    number = _TICKET_NUMBER.match(text)
    by_number = (Ticket.id == int(number[1]) if number and int(number[1]) <= MAX_ROW_ID
                 else false())
    phone = phones.as_phone(text)  # stored phones are E.164, however the caller reads them
    customer = exists(select(Customer.id).where(
        Customer.id == Ticket.customer_id,
        or_(Customer.phone == phone if phone else false(),
            Customer.name.icontains(text, autoescape=True))))
    in_messages = and_(*(exists(select(TicketMessage.id).where(
        TicketMessage.ticket_id == Ticket.id,
        TicketMessage.text.icontains(word, autoescape=True))) for word in words))
    folded = text.lower()  # ids as read out: "o01-00005" is O01-00005
    return or_(by_number, Ticket.order_id == text, Ticket.customer_id == text,
               func.lower(Ticket.order_id) == folded, func.lower(Ticket.customer_id) == folded,
               Ticket.customer_key == text, Ticket.customer_key.endswith(f":{text}",
                                                                         autoescape=True),
               Ticket.customer_key.endswith(f":{phone}") if phone else false(),
               customer, in_messages)
