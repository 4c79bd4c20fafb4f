"""Logging a call by hand: the customer's words become a hotline complaint, once."""

from __future__ import annotations

import html as html_text
import re
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hub.models import Customer, Ticket
from hub.tickets import intake, routing
from hub.tickets.models import TicketAssignment, TicketMessage
from hub.web import accounts
from tests.hub.conftest import T0
from tests.hub.tickets_helpers import add_agent, count, social, triage
from tests.hub.ui_helpers import admin_app, logged_in, login

NOW = T0 + timedelta(minutes=10)
PASSWORD = "strawberry-fields-9"


@pytest.fixture
def app(database_url: str, factory: sessionmaker[Session], tmp_path: Path) -> Flask:
    """The hub with agents ana (who can sign in; Chinese only) and bo (any language), both on
    shift; customer C-1 has a phone."""
    with factory.begin() as session:
        ana = add_agent(session, "ana", languages=("zh",))
        accounts.set_password(session, ana, PASSWORD, T0, actor="admin")
        add_agent(session, "bo")
        customer = session.get(Customer, "C-1")
        assert customer is not None
        customer.phone = "+8613800000001"
    return admin_app(database_url, factory, lambda: NOW, tmp_path / "data")


@pytest.fixture
def ana(app: Flask) -> FlaskClient:
    client = app.test_client()
    assert login(client, "ana", PASSWORD).status_code == 302
    return client


def form_of(client: FlaskClient) -> dict[str, str]:
    """The call form's hidden fields, as the page gives them."""
    html = client.get("/tickets/new").text
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html))


def log_call(client: FlaskClient, hidden: dict[str, str] | None = None,
             **fields: str) -> tuple[int, str]:
    response = client.post("/tickets/new", data={**(hidden or form_of(client)), **fields},
                           follow_redirects=True)
    return response.status_code, response.text


def flash(html: str) -> str:
    found = re.search(r'<p class="flash flash-\w+"[^>]*>(.*?)</p>', html, re.DOTALL)
    assert found, "no message on the page"
    return html_text.unescape(found[1])


def problem(html: str, field: str) -> str:
    found = re.search(rf'<span class="field-error" id="error-{field}">(.*?)</span>', html)
    assert found, f"no problem shown for {field}"
    return html_text.unescape(found[1])


def test_an_agents_call_opens_a_ticket_she_takes_and_counts_as_first_contact(
        ana: FlaskClient, factory: sessionmaker[Session]) -> None:
    with factory.begin() as session:  # ana is busier than bo: routing would choose bo
        busy = intake.receive(session, social("x"), T0, triage=triage(), route=False).ticket
        routing.assign_to(session, busy, "ana", T0, actor="lead")

    status, html = log_call(ana, phone="138 0000 0001", phone_verified="1", order_id="O-1",
                            text="草莓全烂了，一打开就有霉味", take="1")

    assert status == 200
    assert flash(html) == "Ticket 2 opened from the call. It is yours."
    with factory() as session:
        ticket = session.get(Ticket, 2)
        assert ticket is not None
        assert (ticket.channel, ticket.customer_key, ticket.order_id) == (
            "hotline", "user:C-1", "O-1")  # the verified phone found the customer
        assert ticket.assignee_id == "ana" and ticket.first_contact_at == NOW
        assert ticket.category == "spoiled"  # triaged like any complaint
        message = session.scalars(select(TicketMessage).where(
            TicketMessage.ticket_id == 2)).one()
        assert message.meta == {"logged_by": "ana"} and message.author == "phone:+8613800000001"
        assigned = list(session.execute(select(
            TicketAssignment.agent_id, TicketAssignment.actor, TicketAssignment.note)
            .where(TicketAssignment.ticket_id == 2).order_by(TicketAssignment.id)))
        assert [(a, actor) for a, actor, _ in assigned] == [("bo", "router"), ("ana", "ana")]
        assert assigned[1][2] == "took the call"


def test_a_form_sent_twice_logs_one_call(ana: FlaskClient,
                                         factory: sessionmaker[Session]) -> None:
    hidden = form_of(ana)
    first = log_call(ana, hidden, customer_id="C-1", text="the milk was warm")
    again = log_call(ana, hidden, customer_id="C-1", text="the milk was warm")

    assert flash(first[1]).startswith("Ticket 1 opened from the call.")
    assert flash(again[1]) == "This call was already logged, on ticket 1."
    with factory() as session:
        assert count(session, TicketMessage) == 1


def test_a_call_about_an_open_complaint_joins_its_ticket(
        ana: FlaskClient, factory: sessionmaker[Session]) -> None:
    with factory.begin() as session:
        opened = intake.receive(session, intake.Complaint(
            channel="app", text="mouldy berries", external_id="m-1", user_id="C-1",
            order_id="O-1"), T0, triage=triage()).ticket.id

    status, html = log_call(ana, customer_id="C-1", order_id="O-1",
                            text="I wrote in the app an hour ago")

    assert status == 200
    assert flash(html).startswith(f"The call was added to ticket {opened}, the customer's "
                                  "open ticket about this order.")
    with factory() as session:
        assert count(session, Ticket) == 1 and count(session, TicketMessage) == 2


def test_taking_is_refused_when_the_agent_does_not_qualify(
        ana: FlaskClient, factory: sessionmaker[Session]) -> None:
    status, html = log_call(ana, customer_id="C-1", text="The strawberries were mouldy",
                            take="1")  # English; ana speaks Chinese only

    assert status == 200
    said = flash(html)
    assert said.startswith("Ticket 1 opened from the call. It stays with bo: ")
    assert "language" in said
    with factory() as session:
        ticket = session.get(Ticket, 1)
        assert ticket is not None and ticket.assignee_id == "bo"
        assert ticket.first_contact_at == NOW  # she still spoke to the customer


@pytest.mark.parametrize(("fields", "field", "says"), [
    ({"text": "x"}, "customer_id", "give the customer id or the phone they call from"),
    ({"customer_id": "C-404", "text": "x"}, "customer_id", "there is no customer 'C-404'"),
    ({"customer_id": "C 1", "text": "x"}, "customer_id", "must be 1 to 32 letters"),
    ({"customer_id": "C-1", "order_id": "O-404", "text": "x"}, "order_id",
     "there is no order 'O-404'"),
    ({"phone": "call me", "text": "x"}, "phone", "not a phone number"),
    ({"phone": "12345", "text": "x"}, "phone", "is a local number: add the area code"),
    ({"customer_id": "C-1", "phone_verified": "1", "text": "x"}, "phone",
     "give the phone the caller proved is theirs"),
    ({"customer_id": "C-1", "text": "  "}, "text", "write down what the customer said"),
    ({"customer_id": "C-1", "text": "x" * 4001}, "text", "4001 characters, over the limit"),
])
def test_a_bad_field_is_shown_beside_itself_and_nothing_is_saved(
        ana: FlaskClient, factory: sessionmaker[Session], fields: dict[str, str], field: str,
        says: str) -> None:
    status, html = log_call(ana, None, **fields)

    assert status == 422
    assert says in problem(html, field)
    for name, value in fields.items():  # what was typed is kept
        if name not in ("phone_verified",) and value.strip() and len(value) < 100:
            assert f'value="{value}"' in html or f">{value}</textarea>" in html, name
    with factory() as session:
        assert count(session, Ticket) == 0


def test_a_refusal_of_intake_is_shown_and_nothing_is_saved(
        ana: FlaskClient, factory: sessionmaker[Session]) -> None:
    with factory.begin() as session:
        session.add(Customer(id="C-2", name="Wu Min", tier="standard", region="sh"))

    status, html = log_call(ana, customer_id="C-2", order_id="O-1", text="where is it")

    assert status == 422
    assert "order 'O-1' is not an order of customer 'C-2'" in flash(html)
    with factory() as session:
        assert count(session, Ticket) == 0


def test_the_form_needs_sign_in_and_its_token(app: Flask) -> None:
    anonymous = app.test_client()
    assert anonymous.get("/tickets/new").status_code == 302  # to the sign-in page
    admin = logged_in(app.test_client())
    assert 'href="/tickets/new"' in admin.get("/tickets").text  # from the pool
    hidden = form_of(admin)
    expired = admin.post("/tickets/new", data={**hidden, "csrf_token": "stale",
                                               "customer_id": "C-1", "text": "x"})
    assert expired.status_code == 400
    tampered = log_call(admin, {**hidden, "call_ref": "x"}, customer_id="C-1", text="x")
    assert tampered[0] == 422 and "The form expired" in tampered[1]


def test_the_administrators_call_is_routed_and_is_no_agent_contact(
        app: Flask, factory: sessionmaker[Session]) -> None:
    admin = logged_in(app.test_client())
    html = admin.get("/tickets/new").text
    assert 'name="take"' not in html  # not an agent: nothing to take

    status, html = log_call(admin, phone="+86 139 1111 2222", text="菜都凉了")

    assert status == 200
    assert re.fullmatch(r"Ticket 1 opened from the call\. It is with (ana|bo)\.", flash(html))
    with factory() as session:
        ticket = session.get(Ticket, 1)
        assert ticket is not None
        assert ticket.customer_key == "hotline:+8613911112222"  # an unverified caller id
        assert ticket.first_contact_at is None and ticket.assignee_id in ("ana", "bo")
