"""The admin UI's ticket pages: the pool, one ticket and its actions, the agents."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hub.models import Customer, Ticket
from hub.tickets import contact, evidence, intake, routing, sla, workflow
from hub.tickets.channels import HotlineTranscript, Turn
from hub.tickets.intake import Complaint
from hub.tickets.models import Agent, SlaClock, TicketEvidence, TicketMessage, TicketTransition
from hub.web import tickets_ui
from tests.hub.conftest import T0
from tests.hub.tickets_helpers import add_agent, count, social, triage
from tests.hub.ui_helpers import USER, admin_app, logged_in

NOW = T0 + timedelta(minutes=35)  # the app's clock


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """The hub's data dir (evidence lives in it); ``tmp_path`` itself is outside it."""
    return tmp_path / "data"


@pytest.fixture
def app(database_url: str, factory: sessionmaker[Session], data_dir: Path) -> Flask:
    """The hub app over the seeded database, with a known admin, data dir and clock."""
    return admin_app(database_url, factory, lambda: NOW, data_dir)


@pytest.fixture
def admin(client: FlaskClient) -> FlaskClient:
    """A test client logged in as the admin."""
    return logged_in(client)


@dataclass(frozen=True)
class Pool:
    """The tickets of the pool, by what their SLA looks like at NOW."""

    breached: int  # P1 (food-safety), first contact due NOW - 2 h 5 min: breached
    p1: int  # P1 (food-safety), first contact due NOW + 5 min: warned at 80 %
    vip: int  # the gold customer's app complaint, first contact due NOW + 25 min
    office: int  # standard policy on office hours: due the next business morning
    resolved: int  # resolved by hand: only its FOLLOW_UP clock runs, 24 h


def receive(session: Session, complaint: Complaint, minutes: float, **kwargs: object) -> int:
    """Take a complaint ``minutes`` after T0 through intake; return its ticket id."""
    result = intake.receive(session, complaint, T0 + timedelta(minutes=minutes),
                            triage=triage(**kwargs))
    return result.ticket.id


@pytest.fixture
def pool(factory: sessionmaker[Session]) -> Pool:
    """Five tickets made by intake (no agent on shift: queued), SLA evaluated at NOW."""
    with factory.begin() as session:
        add_agent(session, "bo", on_shift=False, online=False)
        breached = receive(session, social("old", "Rotten, 2 h ago"), -120, urgency="P2")
        resolved = receive(session, social("zed", "Crushed box"), -60, category="damaged")
        vip = receive(session, Complaint(
            channel="app", text="Mouldy <b>strawberries</b>", external_id="m-1",
            user_id="C-1", order_id="O-1", item_ids=("IT-1",), author="user:C-1"),
            0, urgency="P2", keywords=["mouldy", "strawberries"], confidence=0.87)
        p1 = receive(session, social("li"), 10, urgency="P2")
        office = receive(session, Complaint(channel="hotline", text="Two days late",
                                            external_id="call-9", sender="call-9"),
                         20, category="late", urgency="P4", language="")
        ticket = session.get(Ticket, resolved)
        assert ticket is not None
        at = T0 - timedelta(minutes=40)
        routing.assign_to(session, ticket, "bo", at, actor="lead")
        contact.record_contact(session, resolved, agent="bo", text="Refunding",
                               kind="message", now=at)
        for to, change in [("confirming", workflow.Change("bo")),
                           ("handling", workflow.Change("bo", handling="simple")),
                           ("resolved", workflow.Change("bo", resolution="refund"))]:
            workflow.transition(session, resolved, to, change, at)
        sla.evaluate_sla(session, NOW)
    return Pool(breached=breached, p1=p1, vip=vip, office=office, resolved=resolved)


def ticket_ids(html: str) -> list[int]:
    """The ids of the pool's rows, in page order."""
    return [int(i) for i in re.findall(r'<tr id="ticket-(\d+)"', html)]


def row(html: str, ident: str) -> str:
    """The HTML of the table row with id ``ident``."""
    match = re.search(rf'<tr id="{ident}".*?</tr>', html, re.DOTALL)
    assert match, f"no row #{ident}"
    return match[0]


def section(html: str, ident: str) -> str:
    """The HTML of the section with id ``ident``."""
    match = re.search(rf'<section[^>]* id="{ident}".*?</section>', html, re.DOTALL)
    assert match, f"no #{ident} on the page"
    return match[0]


def token(client: FlaskClient, path: str) -> str:
    """The CSRF token of the forms on ``path``."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert match, f"no CSRF token on {path}"
    return match[1]


def post_form(client: FlaskClient, path: str, form: dict[str, str], *,
              page: str | None = None) -> str:
    """Post a form of ``page`` (default: ``path``'s ticket page) with its token; return the
    page it leads to."""
    page = page or path.rsplit("/", 1)[0]
    response = client.post(path, data={**form, "csrf_token": token(client, page)},
                           follow_redirects=True)
    assert response.status_code == 200, response.text
    return response.text


def flashes(html: str) -> list[str]:
    return re.findall(r'<p class="flash flash-\w+"[^>]*>(.*?)</p>', html, re.DOTALL)


def status_of(factory: sessionmaker[Session], ticket_id: int) -> str:
    with factory() as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        return ticket.status


def audit(factory: sessionmaker[Session], ticket_id: int) -> list[tuple[str | None, str, str]]:
    with factory() as session:
        return [(t.from_status, t.to_status, t.actor) for t in session.scalars(
            select(TicketTransition).where(TicketTransition.ticket_id == ticket_id)
            .order_by(TicketTransition.id))]


# --- login ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/tickets", "/tickets/1", "/agents",
                                  "/tickets/1/evidence/1"])
def test_ticket_pages_require_login(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert response.location.startswith("/login?next=")


def test_ticket_forms_require_login(client: FlaskClient, factory: sessionmaker[Session],
                                    pool: Pool) -> None:
    response = client.post(f"/tickets/{pool.vip}/transition", data={"to": "confirming"})
    assert response.status_code == 302 and response.location.startswith("/login")
    assert status_of(factory, pool.vip) == "new"


# --- the pool ------------------------------------------------------------------------------


def test_the_pool_lists_open_tickets_nearest_sla_due_first(admin: FlaskClient,
                                                           pool: Pool) -> None:
    html = admin.get("/tickets").text

    assert ticket_ids(html) == [pool.breached, pool.p1, pool.vip, pool.office]
    breached = row(html, f"ticket-{pool.breached}")
    assert 'class="sla-row-breached"' in breached
    assert "breached" in breached and "2 h 5 min overdue" in breached
    p1 = row(html, f"ticket-{pool.p1}")
    assert 'class="sla-row-warned"' in p1 and "80 %" in p1 and "in 5 min" in p1
    vip = row(html, f"ticket-{pool.vip}")
    assert "Li Wei" in vip and "user:C-1" in vip and "in 25 min" in vip
    assert "first contact" in vip and "queue" in vip
    assert "&lt;b&gt;strawberries" in vip and "<b>strawberries" not in vip  # escaped
    # counts per status: all the open ones are new, one resolved
    assert re.search(r'id="count-open".*?<strong>4</strong>', html)
    assert re.search(r'id="count-new".*?<strong>4</strong>', html)
    assert re.search(r'id="count-resolved".*?<strong>1</strong>', html)
    assert re.search(r'id="count-all".*?<strong>5</strong>', html)
    assert 'aria-current="page">Tickets</a>' in html


def test_the_pool_filters(admin: FlaskClient, pool: Pool) -> None:
    def ids(query: str) -> list[int]:
        response = admin.get(f"/tickets?{query}")
        assert response.status_code == 200, response.text
        return ticket_ids(response.text)

    assert ids("status=all") == [pool.breached, pool.p1, pool.vip, pool.office, pool.resolved]
    assert ids("status=resolved") == [pool.resolved]
    assert ids("status=confirming") == []
    assert ids("status=all&assignee=bo") == [pool.resolved]
    assert ids("assignee=unassigned") == [pool.breached, pool.p1, pool.vip, pool.office]
    assert ids("status=all&category=damaged") == [pool.resolved]
    assert ids("urgency=P1") == [pool.breached, pool.p1]
    assert ids("channel=app") == [pool.vip]
    assert ids("channel=hotline&category=late&urgency=P4") == [pool.office]
    # the search box: open ones by default, like every filter; any status with status=all
    assert ids("q=mouldy+STRAWBERRIES") == [pool.vip]
    assert ids("q=O-1") == [pool.vip]
    assert ids("q=refunding") == []  # words of the resolved ticket's reply: not open
    assert ids("status=all&q=refunding") == [pool.resolved]
    assert ids(f"q=%23{pool.office}") == [pool.office]
    html = admin.get("/tickets?q=crushed").text
    assert 'name="q" value="crushed"' in html  # the box keeps what was searched
    assert re.search(r'id="count-all".*?<strong>1</strong>', html)  # a match in another status
    # the counts follow the other filters
    html = admin.get("/tickets?channel=social&status=all").text
    assert re.search(r'id="count-new".*?<strong>2</strong>', html)
    assert re.search(r'id="count-resolved".*?<strong>1</strong>', html)


@pytest.mark.parametrize(("query", "message"), [
    ("status=bogus", "status: &#39;bogus&#39; is not a ticket status"),
    ("assignee=nobody", "assignee: &#39;nobody&#39; is not an agent"),
    ("category=rotten", "category: &#39;rotten&#39; is not a category"),
    ("urgency=P9", "urgency: &#39;P9&#39; is not an urgency"),
    ("channel=fax", "channel: &#39;fax&#39; is not a channel"),
    ("page=0", "page: &#39;0&#39; is not a page number"),
    ("page=two", "page: &#39;two&#39; is not a page number"),
    ("page=%C2%B2", "page: &#39;²&#39; is not a page number"),  # a digit, but not a number
    ("q=" + "x" * 201, "q: at most 200 characters, got 201"),
])
def test_a_bad_filter_is_a_400_page_naming_it(admin: FlaskClient, pool: Pool, query: str,
                                              message: str) -> None:
    response = admin.get(f"/tickets?{query}")
    assert response.status_code == 400
    assert "Bad ticket filter" in response.text and message in response.text


def test_odd_paths_and_forms_are_error_pages(admin: FlaskClient) -> None:
    missing = admin.get("/tickets/99999999999999")  # past the database's integer
    assert missing.status_code == 404 and "does not exist (ids go up to" in missing.text
    nul = admin.get("/tickets?assignee=a%00")
    assert nul.status_code == 400 and "contains a NUL character" in nul.text
    form = admin.post("/tickets/1/messages", data={"text": "a\x00b"})
    assert form.status_code == 400 and "form field &#39;text&#39; contains a NUL" in form.text


def test_the_pool_pages(admin: FlaskClient, pool: Pool,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tickets_ui, "PAGE_SIZE", 2)
    first = admin.get("/tickets?status=all").text
    second = admin.get("/tickets?status=all&page=2").text
    third = admin.get("/tickets?status=all&page=3").text
    past = admin.get("/tickets?status=all&page=9")

    assert ticket_ids(first) == [pool.breached, pool.p1]
    assert ticket_ids(second) == [pool.vip, pool.office]
    assert ticket_ids(third) == [pool.resolved]
    assert "page 2 of 3" in second
    assert 'href="/tickets?status=all&amp;page=3"' in second
    assert past.status_code == 200 and "the last page is 3" in past.text


# --- one ticket ----------------------------------------------------------------------------


def test_the_ticket_page_shows_triage_context_messages_audit_and_clocks(
        admin: FlaskClient, factory: sessionmaker[Session], pool: Pool) -> None:
    with factory.begin() as session:
        contact.record_contact(session, pool.vip, agent="bo", text="Checking the lot",
                               kind="note", now=T0 + timedelta(minutes=5))
    html = admin.get(f"/tickets/{pool.vip}").text

    triage_facts = re.search(r'<dl class="facts card" id="triage">.*?</dl>', html, re.DOTALL)
    assert triage_facts
    for shown in ("spoiled", "P2", "negative", "mouldy", "strawberries", "87 %", "test-1"):
        assert shown in triage_facts[0], shown
    context = section(html, "context")
    assert 'href="/orders/O-1"' in context and 'href="/trace/IT-1"' in context
    assert 'href="/trace/IT-2"' in context and "complained" in context
    assert "Strawberries 500 g" in context and "Li Wei" in context
    messages = section(html, "messages")
    assert "&lt;b&gt;strawberries&lt;/b&gt;" in messages and "user:C-1" in messages
    assert "message-in" in messages and "message-note" in messages
    assert "Checking the lot" in messages
    audit_html = section(html, "audit")
    assert "intake:app" in audit_html and "complaint received" in audit_html
    clocks = section(html, "clocks")
    for target in ("FIRST CONTACT", "RESOLUTION", "ACK", "FOLLOW UP"):
        assert target in clocks, target
    first_contact = row(html, "clock-FIRST_CONTACT")
    assert "warned" in first_contact and "in 25 min" in first_contact
    assert "2026-11-20 10:30 UTC" in first_contact  # created T0, 60 min on 24x7 (vip)
    escalations = section(html, "escalations")
    assert "no agent" in escalations and "queued" in escalations
    # only the transitions the workflow allows from new are offered
    assert re.findall(r'name="to" value="(\w+)"', html) == ["confirming", "merged"]


def test_the_breached_ticket_shows_its_breach(admin: FlaskClient, pool: Pool) -> None:
    html = admin.get(f"/tickets/{pool.breached}").text
    first_contact = row(html, "clock-FIRST_CONTACT")
    assert 'class="sla-row-breached"' in first_contact
    assert "2026-11-20 08:00 UTC" in first_contact  # breached_at = due_at
    assert "sla breach" in section(html, "escalations")


def test_the_workflow_through_the_forms_is_audited_as_the_logged_in_user(
        admin: FlaskClient, factory: sessionmaker[Session], pool: Pool) -> None:
    ticket = f"/tickets/{pool.vip}"

    html = post_form(admin, f"{ticket}/assign", {"agent_id": "bo"})  # bo is off shift
    assert "on shift" in flashes(html)[0]
    assert ticket_assignee(factory, pool.vip) is None
    html = post_form(admin, f"{ticket}/assign", {"agent_id": "bo", "override": "1"})
    assert "reason is required to override" in flashes(html)[0]
    html = post_form(admin, f"{ticket}/assign",
                     {"agent_id": "bo", "override": "1", "reason": "bo knows this customer"})
    assert "assigned to bo" in flashes(html)[0]
    assert ticket_assignee(factory, pool.vip) == "bo"
    html = post_form(admin, f"{ticket}/transition", {"to": "confirming", "reason": "on it"})
    assert flashes(html) == [f"Ticket {pool.vip}: new → confirming."]
    assert "Start handling" in section(html, "actions")
    post_form(admin, f"{ticket}/transition", {"to": "handling", "handling": "complex"})
    post_form(admin, f"{ticket}/transition", {"to": "awaiting_evidence"})
    post_form(admin, f"{ticket}/transition", {"to": "handling"})
    post_form(admin, f"{ticket}/transition", {"to": "resolved", "resolution": "replace"})
    post_form(admin, f"{ticket}/transition",
              {"to": "followed_up", "satisfaction": "4", "comment": "fine"})
    html = post_form(admin, f"{ticket}/transition", {"to": "closed"})

    assert status_of(factory, pool.vip) == "closed"
    assert audit(factory, pool.vip) == [
        (None, "new", "intake:app"), ("new", "confirming", USER),
        ("confirming", "handling", USER), ("handling", "awaiting_evidence", USER),
        ("awaiting_evidence", "handling", USER), ("handling", "resolved", USER),
        ("resolved", "followed_up", USER), ("followed_up", "closed", USER)]
    audit_html = section(html, "audit")
    assert "on it" in audit_html and "evidence_requested: app" in audit_html
    assert "please send photos" in section(html, "messages")  # asked in the app
    assert "4 / 5" in html and "fine" in html
    assert re.findall(r'name="to" value="(\w+)"', html) == ["handling"]  # reopen only
    html = post_form(admin, f"{ticket}/transition", {"to": "handling", "reason": "again"})
    assert status_of(factory, pool.vip) == "handling"
    assert audit(factory, pool.vip)[-1] == ("closed", "handling", USER)


def ticket_assignee(factory: sessionmaker[Session], ticket_id: int) -> str | None:
    with factory() as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        return ticket.assignee_id


@pytest.mark.parametrize(("form", "error"), [
    ({"to": "resolved", "resolution": "refund"},
     "cannot go from new to resolved; from new it may go to: confirming, merged"),
    ({"to": "confirming"}, "has no assignee; assign it before confirming"),
    ({"to": "merged", "merged_into": "{resolved}"}, "is not an open ticket of the same"),
    ({"to": "merged", "merged_into": "x1"}, "merged_into must be a ticket number"),
    ({"to": "closed", "reason": "x" * 2001}, "reason is 2001 characters long"),
])
def test_a_refused_transition_is_flashed_and_changes_nothing(
        admin: FlaskClient, factory: sessionmaker[Session], pool: Pool, form: dict[str, str],
        error: str) -> None:
    form = {k: v.format(resolved=pool.resolved) for k, v in form.items()}
    before = audit(factory, pool.vip)

    html = post_form(admin, f"/tickets/{pool.vip}/transition", form)

    [flashed] = flashes(html)
    assert error in flashed.replace("&#39;", "'")
    assert 'class="flash flash-error"' in html
    assert status_of(factory, pool.vip) == "new"
    assert audit(factory, pool.vip) == before
    assert admin.get(f"/tickets/{pool.vip}").text.count("flash-error") == 0  # shown once


def test_a_failed_guard_of_a_resolved_ticket_is_flashed(
        admin: FlaskClient, factory: sessionmaker[Session], pool: Pool) -> None:
    html = post_form(admin, f"/tickets/{pool.resolved}/transition", {"to": "handling"})
    assert "reason is required to reopen" in flashes(html)[0]
    html = post_form(admin, f"/tickets/{pool.resolved}/transition",
                     {"to": "followed_up", "satisfaction": "9"})
    assert "satisfaction must be an integer 1-5" in flashes(html)[0]
    assert status_of(factory, pool.resolved) == "resolved"


def test_forms_without_the_csrf_token_are_refused(admin: FlaskClient,
                                                  factory: sessionmaker[Session],
                                                  pool: Pool) -> None:
    before = audit(factory, pool.vip)
    for path, form in [
            (f"/tickets/{pool.vip}/assign", {"agent_id": "bo"}),
            (f"/tickets/{pool.vip}/transition", {"to": "merged", "merged_into": "1"}),
            (f"/tickets/{pool.vip}/messages", {"kind": "message", "text": "hi"}),
            ("/agents/bo/shift", {"on_shift": "1"})]:
        for sent in (form, {**form, "csrf_token": "forged"}):
            response = admin.post(path, data=sent)
            assert response.status_code == 400, path
            assert "The form expired" in response.text
    assert audit(factory, pool.vip) == before
    assert ticket_assignee(factory, pool.vip) is None
    with factory() as session:
        assert count(session, TicketMessage, TicketMessage.ticket_id == pool.vip) == 1
        agent = session.get(Agent, "bo")
        assert agent is not None and not agent.on_shift


def test_messages_and_notes_from_the_form(admin: FlaskClient, factory: sessionmaker[Session],
                                          pool: Pool) -> None:
    ticket = f"/tickets/{pool.p1}"
    html = post_form(admin, f"{ticket}/messages", {"kind": "note", "text": "Photos asked"})
    assert flashes(html) == ["The note was added."]
    html = post_form(admin, f"{ticket}/messages",
                     {"kind": "message", "text": "Sorry! <i>Refund</i> on the way"})
    assert flashes(html) == ["The message was recorded."]
    html = post_form(admin, f"{ticket}/messages", {"kind": "message", "text": "   "})
    assert "text must be a non-empty string" in flashes(html)[0]
    html = post_form(admin, f"{ticket}/messages", {"kind": "fax", "text": "x"})
    assert "kind must be one of message, call, note" in flashes(html)[0]

    messages = section(html, "messages")
    assert "Photos asked" in messages and "&lt;i&gt;Refund&lt;/i&gt;" in messages
    with factory() as session:
        sent = session.scalars(select(TicketMessage).where(
            TicketMessage.ticket_id == pool.p1, TicketMessage.channel == "agent")
            .order_by(TicketMessage.id)).all()
        assert [(m.direction, m.author) for m in sent] == [("note", USER), ("out", USER)]
        ticket_row = session.get(Ticket, pool.p1)
        assert ticket_row is not None and ticket_row.first_contact_at == NOW
        first = session.scalars(select(SlaClock).where(
            SlaClock.ticket_id == pool.p1, SlaClock.target == "FIRST_CONTACT")).one()
        assert first.state == "MET"


def test_assigning_to_an_unknown_agent_is_flashed(admin: FlaskClient,
                                                  factory: sessionmaker[Session],
                                                  pool: Pool) -> None:
    html = post_form(admin, f"/tickets/{pool.vip}/assign", {"agent_id": "ghost"})
    assert "agent 'ghost' does not exist" in flashes(html)[0].replace("&#39;", "'")
    assert ticket_assignee(factory, pool.vip) is None


def test_an_unknown_ticket_is_a_404_page(admin: FlaskClient) -> None:
    response = admin.get("/tickets/999")
    assert response.status_code == 404 and "There is no ticket 999." in response.text
    assert admin.post("/tickets/999/transition",
                      data={"to": "closed", "csrf_token": token(admin, "/tickets")}
                      ).status_code == 404


# --- evidence ------------------------------------------------------------------------------


def test_evidence_is_listed_and_downloads(admin: FlaskClient, factory: sessionmaker[Session],
                                          pool: Pool, data_dir: Path) -> None:
    photo = b"\x89PNG\r\n\x1a\n" + b"pixels" * 400
    with factory.begin() as session:
        record, _ = evidence.store_evidence(
            session, pool.vip, photo, content_type="image/png", uploaded_by="user:C-1",
            data_dir=data_dir, now=T0, filename="berries 1.png")
        evidence_id = record.id
    digest = hashlib.sha256(photo).hexdigest()

    listed = row(admin.get(f"/tickets/{pool.vip}").text, f"evidence-{evidence_id}")
    assert "berries 1.png" in listed and "image/png" in listed and "2.4 KB" in listed
    assert f"{digest[:12]}…" in listed
    response = admin.get(f"/tickets/{pool.vip}/evidence/{evidence_id}")
    assert response.status_code == 200
    assert response.data == photo
    assert response.mimetype == "image/png"
    assert response.headers["Content-Disposition"] == "attachment; filename=berries_1.png"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    # the same evidence under another ticket's URL is not found
    assert admin.get(f"/tickets/{pool.p1}/evidence/{evidence_id}").status_code == 404


@pytest.mark.parametrize("stored", ["evidence/../../secret.txt", "../secret.txt",
                                    "{tmp}/secret.txt", "evidence/ab/../../../secret.txt"])
def test_evidence_outside_the_store_is_refused(admin: FlaskClient,
                                               factory: sessionmaker[Session], pool: Pool,
                                               data_dir: Path, tmp_path: Path,
                                               stored: str) -> None:
    (tmp_path / "secret.txt").write_text("the signing key")
    with factory.begin() as session:
        record = TicketEvidence(ticket_id=pool.vip, sha256="0" * 64, size=15,
                                content_type="text/plain", filename="secret.txt",
                                storage_path=stored.format(tmp=tmp_path),
                                uploaded_by="mallory", uploaded_at=T0)
        session.add(record)
        session.flush()
        evidence_id = record.id

    response = admin.get(f"/tickets/{pool.vip}/evidence/{evidence_id}")

    assert response.status_code == 404
    assert "the signing key" not in response.text
    for path in (f"/tickets/{pool.vip}/evidence/..%2F..%2Fsecret.txt",
                 f"/tickets/{pool.vip}/evidence/../../secret.txt"):
        answer = admin.get(path)
        assert answer.status_code == 404 and "the signing key" not in answer.text


# --- agents --------------------------------------------------------------------------------


def test_the_shift_switch_hands_tickets_over(admin: FlaskClient,
                                             factory: sessionmaker[Session]) -> None:
    with factory.begin() as session:
        add_agent(session, "ana", capacity=2, languages=("zh",), regions=("sh",))
        add_agent(session, "bo", on_shift=False, online=False, skills=("spoiled", "late"))
        uncontacted = receive(session, social("a"), 0)
        contacted = receive(session, social("b"), 1)
        queued = receive(session, social("c"), 2)
        contact.record_contact(session, contacted, agent="ana", text="Hello",
                               kind="message", now=T0 + timedelta(minutes=3))

    html = admin.get("/agents").text
    ana = row(html, "agent-ana")
    assert "on shift" in ana and "2</a> / 2" in ana and ">Chinese<" in ana and ">sh<" in ana
    bo = row(html, "agent-bo")
    assert "off shift" in bo and "Start shift" in bo and "offline" in bo
    assert "1 open ticket queued" in html

    html = post_form(admin, "/agents/bo/shift", {"on_shift": "1"}, page="/agents")
    assert flashes(html) == ["bo is on shift and online; 1 queued ticket assigned."]
    assert ticket_assignee(factory, queued) == "bo"

    html = post_form(admin, "/agents/ana/shift", {"on_shift": "0"}, page="/agents")
    assert flashes(html) == [f"ana is off shift. Handed over: #{uncontacted} → bo."]
    assert ticket_assignee(factory, uncontacted) == "bo"
    assert ticket_assignee(factory, contacted) == "ana"  # contacted: stays
    assert "off shift" in row(html, "agent-ana") and "2</a> / 5" in row(html, "agent-bo")

    html = post_form(admin, "/agents/bo/shift", {"on_shift": "0"}, page="/agents")
    assert flashes(html) == [f"bo is off shift. Handed over: #{uncontacted} → the queue, "
                             f"#{queued} → the queue."]
    html = post_form(admin, "/agents/bo/shift", {"on_shift": "maybe"}, page="/agents")
    assert "on_shift must be 1" in flashes(html)[0]
    assert admin.post("/agents/ghost/shift", data={
        "on_shift": "1", "csrf_token": token(admin, "/agents")}).status_code == 404


def test_the_pool_refreshes_itself_and_a_ticket_page_does_not(admin: FlaskClient) -> None:
    refresh = '<meta http-equiv="refresh" content="60">'
    assert refresh in admin.get("/tickets").text
    assert refresh in admin.get("/fleet").text
    assert refresh not in admin.get("/agents").text  # forms a refresh would interrupt


def test_the_ticket_page_shows_the_number_to_call(admin: FlaskClient,
                                                  factory: sessionmaker[Session],
                                                  pool: Pool) -> None:
    with factory.begin() as session:
        customer = session.get(Customer, "C-1")
        assert customer is not None
        customer.phone = "+8613800000001"
        caller = intake.receive(session, HotlineTranscript(
            call_id="call-2", caller_phone="139 1111 2222",
            turns=[Turn(speaker="customer", text="the milk was warm")]).complaint(),
            T0, triage=triage()).ticket.id

    def number(ticket_id: int) -> str:
        html = admin.get(f"/tickets/{ticket_id}").text
        found = re.search(r'<dd id="call-back">(.*?)</dd>', html, re.DOTALL)
        assert found, "no phone on the page"
        return re.sub(r"<[^>]+>", " ", found[1])

    assert number(pool.vip).split() == ["+86", "138", "0000", "0001", "customer", "record"]
    assert "+86 139 1111 2222" in number(caller) and "caller id, not verified" in number(caller)
    assert "none known" in number(pool.p1)  # a social post
    assert "none known" in number(pool.office)  # a call without a caller id


def test_the_ticket_page_says_why_urgency_is_above_the_triage(admin: FlaskClient,
                                                              pool: Pool) -> None:
    def why(ticket_id: int) -> str:
        html = admin.get(f"/tickets/{ticket_id}").text
        found = re.search(r'<dd id="urgency-why">(.*?)</dd>', html, re.DOTALL)
        assert found, "no urgency on the page"
        return " ".join(re.sub(r"<[^>]+>", " ", found[1]).split())

    assert why(pool.p1) == "P1 priority P1 · triage P2, raised for public channel (social)"
    assert why(pool.office) == "P4 priority P4"  # as triaged: no reason shown
    post_form(admin, f"/tickets/{pool.p1}/triage", {"category": "spoiled", "urgency": "P3",
                                                     "reason": "no one was ill"})
    assert why(pool.p1) == f"P3 priority P3 · set by {USER}"  # a person's word


def test_the_ticket_page_links_the_customers_other_tickets(
        admin: FlaskClient, factory: sessionmaker[Session], pool: Pool) -> None:
    with factory.begin() as session:
        later = receive(session, Complaint(
            channel="app", text="the app charged me twice", external_id="m-7",
            user_id="C-1"), 30, category="other")  # no order: a ticket of its own
        stranger = receive(session, social("someone-else"), 31)

    related = section(admin.get(f"/tickets/{pool.vip}").text, "context")
    assert re.findall(r'href="/tickets/(\d+)"', related) == [str(later)]
    assert "None on record." in section(admin.get(f"/tickets/{stranger}").text, "context")
