"""Agents sign in with their own password, and what they do is recorded under their id."""

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
from hub.settings import WebSettings
from hub.tickets import intake, routing, sla
from hub.tickets.agents import changes_of
from hub.tickets.models import Agent, TicketMessage, TicketTransition
from hub.web import accounts
from tests.hub.conftest import T0
from tests.hub.tickets_helpers import add_agent, social, triage
from tests.hub.ui_helpers import PASSWORD, USER, admin_app, csrf_token, logged_in, login

NOW = T0 + timedelta(minutes=35)
ANA_PASSWORD = "strawberry-fields-9"


@pytest.fixture
def app(database_url: str, factory: sessionmaker[Session], tmp_path: Path) -> Flask:
    """The hub app with a known admin and clock, agents ana (with a ticket) and bo, a
    supervisor; neither can sign in yet."""
    with factory.begin() as session:
        add_agent(session, "ana")
        intake.receive(session, social("x"), T0, triage=triage())
        add_agent(session, "bo", supervisor=True, on_shift=False)
    return admin_app(database_url, factory, lambda: NOW, tmp_path / "data")


def post(client: FlaskClient, path: str, form: dict[str, str], page: str | None = None
         ) -> tuple[int, str]:
    """Post a form of ``page`` (default ``path``) with its CSRF token; follow redirects."""
    response = client.post(path, data={**form, "csrf_token": csrf_token(client, page or path)},
                           follow_redirects=True)
    return response.status_code, response.text


def profile(name: str, **changes: str) -> dict[str, str]:
    """An agent's profile form as posted."""
    return {"name": name, "team": "support", "skills": "*", "capacity": "5", "online": "1",
            "active": "1"} | changes


def set_password(app: Flask, agent_id: str, name: str, password: str, **changes: str) -> str:
    """The administrator sets an agent's password on the agent's page; return the flash."""
    admin = logged_in(app.test_client())
    status, html = post(admin, f"/agents/{agent_id}/edit",
                        profile(name, password=password, **changes))
    assert status == 200, html
    flashes: list[str] = re.findall(r'<p class="flash flash-ok"[^>]*>(.*?)</p>', html)
    return flashes[0]


def signed_in(app: Flask, agent_id: str, password: str) -> FlaskClient:
    client = app.test_client()
    response = login(client, agent_id, password)
    assert response.status_code == 302, response.text
    return client


def test_an_agent_signs_in_and_is_recorded_as_the_actor(
        app: Flask, factory: sessionmaker[Session]) -> None:
    assert login(app.test_client(), "ana", ANA_PASSWORD).status_code == 401  # no password yet
    assert set_password(app, "ana", "Ana", ANA_PASSWORD).endswith(
        "Password set: the agent can sign in.")
    with factory() as session:
        ana = session.get(Agent, "ana")
        assert ana is not None and ana.password_hash is not None
        assert ana.password_hash.startswith("scrypt:") and ANA_PASSWORD not in ana.password_hash
        ticket_id = session.scalars(select(Ticket.id)).one()

    ana_client = signed_in(app, "ana", ANA_PASSWORD)
    pool = ana_client.get("/tickets").text
    assert re.search(r'id="count-mine" href="/tickets\?status=open&amp;assignee=ana">'
                     r'<span class="stat-label">mine</span> <strong>1</strong>', pool)
    assert 'id="count-mine"' not in logged_in(app.test_client()).get("/tickets").text
    page = ana_client.get(f"/tickets/{ticket_id}").text
    assert "as Ana" in page and ">Ana <span class=\"sub\">(ana)</span>" in page
    post(ana_client, f"/tickets/{ticket_id}/messages", {"kind": "note", "text": "On it"},
         page=f"/tickets/{ticket_id}")
    post(ana_client, f"/tickets/{ticket_id}/transition", {"to": "confirming", "reason": "mine"},
         page=f"/tickets/{ticket_id}")

    with factory() as session:
        note = session.scalars(select(TicketMessage).where(
            TicketMessage.text == "On it")).one()
        moved = session.scalars(select(TicketTransition).where(
            TicketTransition.to_status == "confirming")).one()
        assert (note.author, moved.actor) == ("ana", "ana")


@pytest.mark.parametrize(("user", "password"), [
    ("ana", "wrong-password-1"), ("nobody", ANA_PASSWORD), ("bo", ANA_PASSWORD),
    ("ana ", ANA_PASSWORD), ("", ""),
])
def test_a_failed_sign_in_does_not_say_which_part_was_wrong(
        app: Flask, user: str, password: str) -> None:
    set_password(app, "ana", "Ana", ANA_PASSWORD)
    response = login(app.test_client(), user, password)
    assert response.status_code == 401 and "Wrong user name or password." in response.text


def test_deactivating_an_agent_or_changing_their_password_ends_their_sessions(
        app: Flask) -> None:
    set_password(app, "ana", "Ana", ANA_PASSWORD)
    first = signed_in(app, "ana", ANA_PASSWORD)
    set_password(app, "ana", "Ana", "another-password-2")
    ended = first.get("/tickets")
    assert ended.status_code == 302 and "ended=changed" in ended.headers["Location"]
    assert "Your session has ended" in first.get(ended.headers["Location"]).text
    assert login(app.test_client(), "ana", ANA_PASSWORD).status_code == 401

    second = signed_in(app, "ana", "another-password-2")
    admin = logged_in(app.test_client())
    post(admin, "/agents/ana/edit", profile("Ana", active=""))
    assert second.get("/tickets").status_code == 302
    assert login(app.test_client(), "ana", "another-password-2").status_code == 401  # inactive


def test_removing_a_password_takes_the_sign_in_away(app: Flask) -> None:
    set_password(app, "ana", "Ana", ANA_PASSWORD)
    client = signed_in(app, "ana", ANA_PASSWORD)
    flash = set_password(app, "ana", "Ana", "", remove_password="1")
    assert flash.endswith("Password removed: the agent can no longer sign in.")
    assert client.get("/tickets").status_code == 302
    assert login(app.test_client(), "ana", ANA_PASSWORD).status_code == 401


def test_an_agent_changes_their_own_password(app: Flask) -> None:
    set_password(app, "ana", "Ana", ANA_PASSWORD)
    here, elsewhere = signed_in(app, "ana", ANA_PASSWORD), signed_in(app, "ana", ANA_PASSWORD)
    change = {"current": ANA_PASSWORD, "new": "new-password-33", "repeated": "new-password-33"}

    for wrong, problem in ((change | {"current": "nope"}, "the current password is wrong"),
                           (change | {"repeated": "new-password-34"}, "repetition differ"),
                           (change | {"new": "short", "repeated": "short"},
                            "at least 10 characters, got 5"),
                           (change | {"new": "ana", "repeated": "ana"}, "at least 10")):
        status, html = post(here, "/account", wrong)
        assert status == 422 and problem in html, problem
    status, html = post(here, "/account", change)

    assert status == 200 and "Password changed." in html
    assert here.get("/tickets").status_code == 200  # this session stays
    assert elsewhere.get("/tickets").status_code == 302  # the other one has ended
    assert login(app.test_client(), "ana", "new-password-33").status_code == 302


def test_agents_work_tickets_and_their_own_shift_supervisors_manage_agents(
        app: Flask, factory: sessionmaker[Session]) -> None:
    set_password(app, "ana", "Ana", ANA_PASSWORD)
    set_password(app, "bo", "Bo", "supervising-bo-1", supervisor="1")
    ana = signed_in(app, "ana", ANA_PASSWORD)
    page = ana.get("/agents").text
    assert "Add an agent" not in page and "/agents/bo/edit" not in page
    assert ana.get("/agents/new").status_code == 403
    assert ana.get("/agents/ana/edit").status_code == 403
    response = ana.post("/agents/bo/shift", data={
        "on_shift": "1", "csrf_token": csrf_token(ana, "/agents")})
    assert response.status_code == 403
    status, html = post(ana, "/agents/ana/shift", {"on_shift": "0"}, page="/agents")
    assert status == 200 and "ana is off shift." in html

    bo = signed_in(app, "bo", "supervising-bo-1")
    form = bo.get("/agents/ana/edit").text
    assert 'name="password"' not in form  # only the administrator sets passwords
    status, html = post(bo, "/agents/ana/edit", profile("Ana", capacity="2",
                                                        password="bo-chose-this-1"))
    assert status == 200 and "Password set" not in html
    with factory() as session:
        stored = session.get(Agent, "ana")
        assert stored is not None and stored.capacity == 2
    assert login(app.test_client(), "ana", "bo-chose-this-1").status_code == 401
    assert login(app.test_client(), "ana", ANA_PASSWORD).status_code == 302

    history = logged_in(app.test_client()).get("/agents/ana/edit").text
    rows = re.findall(r"<tr>\s*<td class=\"nowrap\">.*?</tr>", history, re.DOTALL)
    assert [re.findall(r"<code>(.*?)</code></td>\s*<td>(.*?)</td>", r)[0] for r in rows] == [
        ("bo", "updated"), ("ana", "shift ended"), (USER, "password set")]  # newest first
    assert "<strong>capacity</strong>: 5 → 2" in rows[0]
    assert ANA_PASSWORD not in history


def test_the_agent_form_refuses_a_weak_password(app: Flask) -> None:
    admin = logged_in(app.test_client())
    status, html = post(admin, "/agents/ana/edit", profile("Ana", password="Ana"))
    assert status == 422
    assert "a password needs at least 10 characters, got 3" in html
    assert 'value="Ana"' not in re.findall(r'<input type="password"[^>]*>', html)[0]
    status, html = post(admin, "/agents/ana/edit", profile("Ana Li", password="ANA LI    "))
    assert status == 422 and "must not be the agent&#39;s id or name" in html


def test_an_old_or_forged_session_is_signed_out(
        app: Flask, factory: sessionmaker[Session]) -> None:
    client = app.test_client()
    with client.session_transaction() as session:  # as before agents could sign in
        session["user"] = USER
    assert client.get("/tickets").status_code == 302
    with client.session_transaction() as session:
        session.update(user="ana", role="agent", credential="0" * 32)
    assert client.get("/tickets").status_code == 302

    web = WebSettings(admin_user=USER, admin_password=PASSWORD,
                      secret_key="test-secret-key-0123456789")
    with factory() as db:
        stored: dict[str, str] = {}
        accounts.open_session(stored, accounts.User(USER, USER, accounts.ADMIN), web, db, NOW)
        assert accounts.session_user(stored, web, db) is not None
        changed = web.model_copy(update={"admin_password": "a-new-admin-password"})
        assert accounts.session_user(stored, changed, db) is None  # settings changed


def test_guessing_a_password_is_throttled_per_user_name(
        app: Flask, database_url: str, factory: sessionmaker[Session], tmp_path: Path) -> None:
    clock = [NOW]  # the same database as ``app``'s (its agents), on a clock of our own
    app = admin_app(database_url, factory, lambda: clock[0], tmp_path / "clocked")
    set_password(app, "ana", "Ana", ANA_PASSWORD)
    for _ in range(accounts.PER_USER):
        assert login(app.test_client(), "ana", "a-wrong-guess").status_code == 401

    refused = login(app.test_client(), "ANA", ANA_PASSWORD)  # even the right one, any case
    assert refused.status_code == 429
    assert "Too many failed sign-ins" in refused.text and "Try again in 15 min" in refused.text
    assert login(app.test_client(), USER, PASSWORD).status_code == 302  # others may go on

    clock[0] = NOW + timedelta(minutes=15)  # the first failure has left the window
    assert login(app.test_client(), "ana", ANA_PASSWORD).status_code == 302
    for _ in range(accounts.PER_USER - 1):  # a success forgot the failures
        assert login(app.test_client(), "ana", "a-wrong-guess").status_code == 401
    assert login(app.test_client(), "ana", ANA_PASSWORD).status_code == 302


def test_the_throttle_counts_per_address_and_forgets_old_failures() -> None:
    throttle = accounts.SignInThrottle(per_user=3, per_address=4,
                                       window=timedelta(minutes=10))
    for n, user in enumerate(("a", "b", "c", "d")):
        assert throttle.wait(user, "10.0.0.1", NOW) is None
        throttle.failed(user, "10.0.0.1", NOW + timedelta(minutes=n))
    # four names from one address: the address waits until its first failure is 10 min old
    assert throttle.wait("e", "10.0.0.1", NOW + timedelta(minutes=4)) == timedelta(minutes=6)
    assert throttle.wait("e", "10.0.0.2", NOW + timedelta(minutes=4)) is None
    assert throttle.wait("e", "10.0.0.1", NOW + timedelta(minutes=10)) is None
    for n in range(3):
        throttle.failed("f", f"10.0.1.{n}", NOW)
    assert throttle.wait(" F ", "10.0.2.1", NOW) == timedelta(minutes=10)
    throttle.succeeded("f")
    assert throttle.wait("f", "10.0.2.1", NOW) is None


def test_a_session_unused_for_12_hours_ends(
        app: Flask, database_url: str, factory: sessionmaker[Session], tmp_path: Path) -> None:
    clock = [NOW]  # the same database as ``app``'s, on a clock of our own
    app = admin_app(database_url, factory, lambda: clock[0], tmp_path / "clocked")
    client = logged_in(app.test_client())
    clock[0] = NOW + timedelta(hours=11, minutes=59)
    assert client.get("/tickets").status_code == 200  # used: the 12 hours start again
    clock[0] += timedelta(hours=12)
    assert client.get("/tickets").status_code == 200
    clock[0] += timedelta(hours=12, seconds=1)
    ended = client.get("/tickets")
    assert ended.status_code == 302 and "ended=idle" in ended.headers["Location"]
    assert "after 12 h without use" in client.get(ended.headers["Location"]).text
    assert client.get("/tickets").status_code == 302  # and it stays ended


def test_a_supervisor_sees_the_breaches_escalated_to_them(
        app: Flask, factory: sessionmaker[Session]) -> None:
    with factory.begin() as session:
        ticket = session.scalars(select(Ticket)).one()  # ana's, on the office policy
        routing.agent_off_shift(session, "ana", T0)  # no one left to take it: the queue
        sla.evaluate_sla(session, T0 + timedelta(days=5))  # every clock breached
        ticket_id = ticket.id
    set_password(app, "bo", "Bo", "supervising-bo-1", supervisor="1")
    bo = signed_in(app, "bo", "supervising-bo-1")

    pool = bo.get("/tickets").text
    assert re.search(r'id="count-escalated" href="/tickets\?status=open&amp;escalated_to=bo">'
                     r'<span class="stat-label">escalated to me</span> '
                     r'<strong class="sla-breached">1</strong>', pool)
    listed = bo.get("/tickets?status=open&escalated_to=bo").text
    assert f'href="/tickets/{ticket_id}"' in listed
    assert 'name="escalated_to" value="bo"' in listed  # kept by the filter form
    set_password(app, "ana", "Ana", ANA_PASSWORD)
    ana_pool = signed_in(app, "ana", ANA_PASSWORD).get("/tickets").text
    assert 'id="count-escalated"' not in ana_pool  # not a supervisor
    assert bo.get("/tickets?escalated_to=nobody").status_code == 400


def test_an_agent_steps_away_and_back_without_handing_over(
        app: Flask, factory: sessionmaker[Session]) -> None:
    set_password(app, "ana", "Ana", ANA_PASSWORD)
    ana = signed_in(app, "ana", ANA_PASSWORD)
    status, html = post(ana, "/agents/ana/presence", {"online": "0"}, page="/agents")
    assert status == 200 and "ana is away: no new tickets until back" in html
    assert re.search(r'id="agent-ana".*?</span>away</span>.*?Back online', html, re.DOTALL)
    with factory.begin() as session:
        queued = intake.receive(session, social("y"), NOW, triage=triage()).ticket.id
        mine = session.scalars(select(Ticket.id).where(Ticket.assignee_id == "ana")).all()
    assert len(mine) == 1  # hers stayed with her; the new one waits in the queue

    status, html = post(ana, "/agents/ana/presence", {"online": "1"}, page="/agents")
    assert status == 200 and "ana is back online; 1 queued ticket assigned." in html
    with factory() as session:
        assert session.scalar(select(Ticket.assignee_id).where(Ticket.id == queued)) == "ana"
        assert [(c.actor, c.action) for c in changes_of(session, "ana")][:2] == [
            ("ana", "back"), ("ana", "away")]
    response = ana.post("/agents/bo/presence", data={
        "online": "1", "csrf_token": csrf_token(ana, "/agents")})
    assert response.status_code == 403
    admin = logged_in(app.test_client())
    status, html = post(admin, "/agents/bo/presence", {"online": "1"}, page="/agents")
    assert "agent &#39;bo&#39; is off shift: start the shift instead" in html


def test_an_agent_takes_a_ticket_for_themselves(
        app: Flask, factory: sessionmaker[Session]) -> None:
    with factory() as session:
        ticket_id = session.scalars(select(Ticket.id)).one()  # ana's
    set_password(app, "bo", "Bo", "supervising-bo-1", supervisor="1")
    bo = signed_in(app, "bo", "supervising-bo-1")
    assert 'id="take"' in bo.get(f"/tickets/{ticket_id}").text

    _, html = post(bo, f"/tickets/{ticket_id}/assign", {"agent_id": "bo"},
                   page=f"/tickets/{ticket_id}")
    assert "off shift: agent bo is not on shift" in html  # the checks hold for oneself too
    with factory.begin() as session:
        routing.agent_on_shift(session, "bo", NOW, route=False)
    status, html = post(bo, f"/tickets/{ticket_id}/assign", {"agent_id": "bo"},
                        page=f"/tickets/{ticket_id}")

    assert status == 200 and f"Ticket {ticket_id} assigned to bo." in html
    assert 'id="take"' not in html  # it is theirs now
    assert 'id="take"' not in logged_in(app.test_client()).get(f"/tickets/{ticket_id}").text
