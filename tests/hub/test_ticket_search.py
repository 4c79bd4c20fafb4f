"""Finding tickets from a ticket number, an order, a customer or words of their messages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hub import phones
from hub.errors import InvalidInput
from hub.models import Customer, Ticket
from hub.tickets import contact, intake, search
from hub.tickets.intake import Complaint
from tests.hub.conftest import T0
from tests.hub.tickets_helpers import PHONE, social, triage


@pytest.fixture
def tickets(factory: sessionmaker[Session]) -> Iterator[tuple[Session, dict[str, int]]]:
    """Four tickets: Li Wei's app complaint about O-1 (with an agent's reply), a hotline
    caller's, a social post's and a Chinese app message without an order."""
    with factory() as session:
        customer = session.get(Customer, "C-1")
        assert customer is not None
        customer.phone = phones.normalise(PHONE)  # as the orders API stores it

        def receive(complaint: Complaint, minutes: float) -> int:
            return intake.receive(session, complaint, T0 + timedelta(minutes=minutes),
                                  triage=triage()).ticket.id

        found = {
            "app": receive(Complaint(channel="app", text="The STRAWBERRIES were mouldy",
                                     external_id="m-1", user_id="C-1", order_id="O-1"), 0),
            "hotline": receive(Complaint(channel="hotline", text="caller: melted ice cream, 50% "
                                         "of it", external_id="call-1",
                                         phone="+86 139 1111 2222", phone_verified=True), 1),
            "social": receive(social("li_na", "草莓发霉了，太失望"), 2),
            "chinese": receive(Complaint(channel="app", text="送货太慢了，菜都凉了",
                                         external_id="m-2", user_id="C-1"), 3),
        }
        contact.record_contact(session, found["app"], agent="ana", text="Refund on its way",
                               kind="message", now=T0 + timedelta(minutes=5))
        session.commit()
        yield session, found


def found_by(session: Session, text: str) -> set[int]:
    return set(session.scalars(select(Ticket.id).where(search.matching(text))))


@pytest.mark.parametrize(("text", "names"), [
    ("O-1", {"app"}),  # an order, exactly
    ("o-1", {"app"}),  # ... in any case
    ("c-1", {"app", "chinese"}),
    ("C-1", {"app", "chinese"}),  # a customer id
    ("user:C-1", {"app", "chinese"}),  # the whole customer key
    ("+86 139 1111 2222", {"hotline"}),  # a caller's phone
    (PHONE, {"app", "chinese"}),  # the customer's stored phone
    ("13800000001", {"app", "chinese"}),  # ... however it is read out
    ("139-1111-2222", {"hotline"}),
    ("0086 13911112222", {"hotline"}),
    ("1391111222", set()),  # a digit short: no phone, and no ticket says it
    ("weibo:li_na", {"social"}),  # a social handle
    ("li wei", {"app", "chinese"}),  # the customer's name, in part, any case
    ("strawberries mouldy", {"app"}),  # every word, any case
    ("mouldy refund", {"app"}),  # the words may stand in different messages
    ("mouldy melted", set()),  # ... but all in one ticket's
    ("发霉", {"social"}),  # Chinese: a phrase
    ("凉了", {"chinese"}),
    ("50%", {"hotline"}),  # LIKE's wildcards are the characters themselves
    ("%", {"hotline"}),
    ("_", set()),  # no message holds an underscore (unescaped, it would match them all)
    ("li_na", {"social"}),  # the handle without its network
    ("O-", set()),  # an order id is matched exactly, not in part
])
def test_a_search_finds_tickets_by_what_a_person_has_at_hand(
        tickets: tuple[Session, dict[str, int]], text: str, names: set[str]) -> None:
    session, ids = tickets
    assert found_by(session, text) == {ids[name] for name in names}


def test_a_ticket_number_finds_the_ticket(tickets: tuple[Session, dict[str, int]]) -> None:
    session, ids = tickets
    assert ids["hotline"] in found_by(session, str(ids["hotline"]))
    assert ids["hotline"] in found_by(session, f"#{ids['hotline']}")
    assert found_by(session, "#99999999999999999999") == set()  # past any row id: none


@pytest.mark.parametrize(("text", "problem"), [
    ("  ", "give a ticket number, an order, a customer or words"),
    ("x" * 201, "at most 200 characters, got 201"),
    ("a b c d e f g h i", "at most 8 words, got 9"),
])
def test_a_search_that_cannot_be_run_names_why(text: str, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem):
        search.matching(text)
