"""The admin UI's agent forms: add an agent, change a profile, and the tickets that follow."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hub.models import Ticket
from hub.tickets import contact, intake
from hub.tickets.models import Agent
from tests.hub.conftest import T0
from tests.hub.tickets_helpers import add_agent, social, triage
from tests.hub.ui_helpers import admin_app, logged_in

NOW = T0 + timedelta(minutes=35)
Form = dict[str, str | list[str]]
FORM: Form = {"name": "Dai Wei", "team": "support", "skills": ["spoiled", "late"],
        "languages": ["zh"], "regions": "shanghai, suzhou", "capacity": "4",
        "shifts": "Mon-Fri 09:00-18:00\nsat 10:00 - 16:00", "online": "1", "active": "1"}


@pytest.fixture
def app(database_url: str, factory: sessionmaker[Session], tmp_path: Path) -> Flask:
    """The hub app over the seeded database, with a known admin and clock."""
    return admin_app(database_url, factory, lambda: NOW, tmp_path / "data")


@pytest.fixture
def admin(client: FlaskClient) -> FlaskClient:
    """A test client logged in as the admin."""
    return logged_in(client)


def submit(client: FlaskClient, path: str, form: Form) -> tuple[int, str]:
    """Post the form of ``path`` with its CSRF token; return the status and the page shown."""
    page = client.get(path)
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    response = client.post(path, data={**form, "csrf_token": found[1]},
                           follow_redirects=True)
    return response.status_code, response.text


def flashes(html: str) -> list[str]:
    return re.findall(r'<p class="flash flash-\w+"[^>]*>(.*?)</p>', html, re.DOTALL)


def field_errors(html: str) -> dict[str, str]:
    return dict(re.findall(r'<span class="field-error" id="error-(\w+)">(.*?)</span>', html))


def stored(factory: sessionmaker[Session], agent_id: str) -> Agent:
    with factory() as session:
        agent = session.get(Agent, agent_id)
        assert agent is not None
        return agent


def test_an_admin_adds_an_agent_from_the_form(admin: FlaskClient,
                                              factory: sessionmaker[Session]) -> None:
    assert 'href="/agents/new"' in admin.get("/agents").text

    status, html = submit(admin, "/agents/new", FORM | {"id": "dai"})

    assert status == 200
    assert flashes(html) == ["Dai Wei (dai) registered, off shift."]
    dai = stored(factory, "dai")
    assert (dai.name, dai.skills, dai.languages, dai.regions, dai.capacity) == (
        "Dai Wei", ["spoiled", "late"], ["zh"], ["shanghai", "suzhou"], 4)
    assert dai.shifts == [{"days": [1, 2, 3, 4, 5], "start": "09:00", "end": "18:00"},
                          {"days": [6], "start": "10:00", "end": "16:00"}]
    assert (dai.online, dai.supervisor, dai.active, dai.on_shift) == (True, False, True, False)
    row = html[html.index('id="agent-dai"'):]
    assert 'href="/agents/dai/edit"' in row
    assert re.findall(r'<div class="sub nowrap">(.*?)</div>', row[:row.index("</tr>")]) == [
        "Mon-Fri 09:00-18:00", "Sat 10:00-16:00"]

    edit = admin.get("/agents/dai/edit").text  # the form shows what is stored, as written
    assert "Mon-Fri 09:00-18:00\nSat 10:00-16:00</textarea>" in edit
    assert 'value="shanghai, suzhou"' in edit
    assert re.search(r'value="late" checked', edit) and not re.search(r'value="damaged" checked',
                                                                       edit)


def test_a_bad_form_names_each_field_keeps_what_was_typed_and_saves_nothing(
        admin: FlaskClient, factory: sessionmaker[Session]) -> None:
    bad: Form = FORM | {"id": "dai wei", "name": " ", "capacity": "lots", "skills": [],
                  "shifts": "Mon-Fri 09:00-18:00\nMon-Fry 09:00-18:00"}

    status, html = submit(admin, "/agents/new", bad)

    assert status == 422
    errors = field_errors(html)
    assert errors.keys() == {"id", "name", "capacity", "shifts"}
    assert errors["id"].startswith("must be 1-32 of A-Z a-z 0-9 _ . -, got &#39;dai wei&#39;")
    assert errors["capacity"] == "must be a whole number from 0 to 1000, got &#39;lots&#39;"
    assert errors["shifts"].startswith("line 2: &#39;fry&#39; is not a day")
    assert "4 fields to correct" in flashes(html)[0]
    assert 'value="dai wei"' in html and "Mon-Fry 09:00-18:00</textarea>" in html
    with factory() as session:
        assert session.get(Agent, "dai wei") is None

    for reserved, problem in (("ops-admin", "is the administrator&#39;s user name"),
                              ("sla", "a name the hub records its own steps under")):
        status, html = submit(admin, "/agents/new", FORM | {"id": reserved})
        assert status == 422 and problem in field_errors(html)["id"]
    status, html = submit(admin, "/agents/new", FORM | {"id": "dai", "team": "qc"})
    assert status == 422 and "team &#39;qc&#39; has no queue" in flashes(html)[0]
    submit(admin, "/agents/new", FORM | {"id": "dai"})
    status, html = submit(admin, "/agents/new", FORM | {"id": "dai", "name": "Another"})
    assert status == 422 and field_errors(html) == {"id": "agent &#39;dai&#39; already exists"}
    assert stored(factory, "dai").name == "Dai Wei"


def test_putting_an_agent_on_leave_hands_their_tickets_over(
        admin: FlaskClient, factory: sessionmaker[Session]) -> None:
    with factory.begin() as session:
        add_agent(session, "ana")
        tickets = [intake.receive(session, social(handle), T0 + timedelta(minutes=i),
                                  triage=triage()).ticket.id
                   for i, handle in enumerate(("a", "b"))]
        contact.record_contact(session, tickets[1], agent="ana", text="Hello", kind="message",
                               now=T0 + timedelta(minutes=5))
        add_agent(session, "bo", capacity=1)
    form = admin.get("/agents/ana/edit").text
    assert 'name="active" value="1" checked' in form

    status, html = submit(admin, "/agents/ana/edit",
                          FORM | {"name": "Ana", "skills": ["*"], "active": ""})

    assert status == 200
    assert flashes(html) == [f"Ana (ana) saved. Handed over: #{tickets[0]} → bo, "
                             f"#{tickets[1]} → the queue."]
    ana = stored(factory, "ana")
    assert (ana.active, ana.on_shift) == (False, False)
    with factory() as session:
        assert [session.scalar(select(Ticket.assignee_id).where(Ticket.id == t))
                for t in tickets] == ["bo", None]
    assert admin.get("/agents/ghost/edit").status_code == 404


def test_agent_forms_need_login_and_the_token(client: FlaskClient) -> None:
    assert client.get("/agents/new").status_code == 302
    admin = logged_in(client)
    assert admin.post("/agents/new", data=FORM | {"id": "dai"}).status_code == 400
