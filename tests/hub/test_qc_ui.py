"""The QC page: the goods to check, a finding recorded as the signed-in user."""

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

from hub.tickets import intake, states
from hub.tickets.intake import Complaint
from hub.tickets.models import QcCheck, TicketMessage
from hub.tickets.workflow import Change, transition
from tests.hub.conftest import T0
from tests.hub.tickets_helpers import add_agent, triage
from tests.hub.ui_helpers import USER, admin_app, csrf_token, logged_in

NOW = T0 + timedelta(hours=1)


@pytest.fixture
def app(database_url: str, factory: sessionmaker[Session], tmp_path: Path) -> Flask:
    """The hub with one complex case about strawberries IT-1 (lot L2611)."""
    with factory.begin() as session:
        add_agent(session, "ana")
        ticket = intake.receive(session, Complaint(
            channel="app", text="mouldy strawberries", external_id="m-1", user_id="C-1",
            order_id="O-1", item_ids=("IT-1",)), T0, triage=triage()).ticket
        transition(session, ticket.id, states.CONFIRMING, Change("ana"), T0)
        transition(session, ticket.id, states.HANDLING, Change("ana", handling="complex"), T0)
    return admin_app(database_url, factory, lambda: NOW, tmp_path / "data")


@pytest.fixture
def admin(app: Flask) -> FlaskClient:
    return logged_in(app.test_client())


def flash(page: str) -> str:
    found = re.search(r'<p class="flash flash-\w+"[^>]*>(.*?)</p>', page, re.DOTALL)
    assert found, "no message on the page"
    return html_text.unescape(found[1])


def record(client: FlaskClient, check_id: int, **form: str) -> str:
    response = client.post(f"/qc/{check_id}/finding",
                           data={**form, "csrf_token": csrf_token(client, "/qc")},
                           follow_redirects=True)
    assert response.status_code == 200, response.text
    return response.text


def test_qc_sees_the_goods_and_records_what_it_found(admin: FlaskClient,
                                                     factory: sessionmaker[Session]) -> None:
    page = admin.get("/qc").text
    row = re.search(r'<tr id="check-1">.*?</tr>', page, re.DOTALL)
    assert row, "the open check is not listed"
    for shown in ('href="/tickets/1"', 'href="/orders/O-1"', 'href="/trace/IT-1"',
                  "Strawberries 500 g", "lot L2611", "by ana", "spoiled"):
        assert shown in row[0], shown
    assert 'href="/qc"' in page  # in the navigation

    page = record(admin, 1, outcome="confirmed", finding="mould on 3 of 12 punnets")

    assert flash(page) == "Check 1 recorded; ticket 1 has the finding as a note."
    assert "Nothing to check." in page
    done = re.search(r'<section class="card" id="done-checks">.*?</section>', page, re.DOTALL)
    assert done and "mould on 3 of 12 punnets" in done[0] and USER in done[0]
    with factory() as session:
        note = session.scalars(select(TicketMessage).where(TicketMessage.author == USER)).one()
        assert note.text == "QC: confirmed: mould on 3 of 12 punnets"
    ticket_page = admin.get("/tickets/1").text
    qc_line = re.search(r'<p id="qc-check">(.*?)</p>', ticket_page, re.DOTALL)
    assert qc_line and "confirmed" in qc_line[1] and "mould on 3 of 12 punnets" in qc_line[1]


@pytest.mark.parametrize(("form", "says"), [
    ({"outcome": "mouldy", "finding": "x"}, "outcome must be one of"),
    ({"outcome": "confirmed", "finding": "  "}, "finding is required"),
])
def test_a_refused_finding_is_flashed_and_changes_nothing(
        admin: FlaskClient, factory: sessionmaker[Session], form: dict[str, str],
        says: str) -> None:
    page = record(admin, 1, **form)
    assert flash(page).startswith("Check 1 was not recorded: ") and says in flash(page)
    with factory() as session:
        check = session.get(QcCheck, 1)
        assert check is not None and check.status == "open"


def test_the_page_needs_sign_in_and_the_form_its_token(app: Flask) -> None:
    assert app.test_client().get("/qc").status_code == 302
    admin = logged_in(app.test_client())
    assert admin.post("/qc/1/finding", data={"outcome": "confirmed",
                                             "finding": "x"}).status_code == 400
    page = record(admin, 7, outcome="confirmed", finding="x")
    assert flash(page) == "Check 7 was not recorded: QC check 7 does not exist"
