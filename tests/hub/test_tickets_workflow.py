"""The ticket workflow: allowed transitions with guards, refused ones, and the audit."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hub.errors import Conflict, InvalidInput, NotFound
from hub.models import Ticket
from hub.tickets import intake, sla, states
from hub.tickets.evidence import store_evidence
from hub.tickets.models import TicketEvidence, TicketMessage, TicketTransition
from hub.tickets.workflow import Change, transition
from tests.hub.conftest import T0
from tests.hub.tickets_helpers import CONFIG, add_agent, social, triage


@pytest.fixture
def session(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session with one agent and one new ticket assigned to her."""
    with factory() as session:
        add_agent(session, "ana")
        intake.receive(session, social("x"), T0, triage=triage(), config=CONFIG)
        session.commit()
        yield session


def ticket(session: Session) -> Ticket:
    """The test's ticket."""
    found = session.scalars(select(Ticket)).one()
    return found


def move(session: Session, to: str, minutes: float, **change: object) -> TicketTransition:
    """Transition the ticket ``minutes`` after T0 (actor ana unless told)."""
    fields = {"actor": "ana", "reason": f"to {to}"} | change
    return transition(session, ticket(session).id, to, Change(**fields),  # type: ignore[arg-type]
                      T0 + timedelta(minutes=minutes), config=CONFIG)


def test_the_whole_path_is_audited_with_who_when_and_why(session: Session) -> None:
    move(session, "confirming", 5)
    move(session, "handling", 10, handling="complex")
    move(session, "awaiting_evidence", 11)
    move(session, "handling", 40, actor="user:C-1", reason="photos uploaded")
    move(session, "resolved", 60, resolution="refund")
    move(session, "followed_up", 60 * 20, satisfaction=4, comment="fast refund")
    move(session, "closed", 60 * 21)
    session.commit()

    found = ticket(session)
    assert found.status == "closed"
    assert (found.handling, found.resolution, found.satisfaction) == ("complex", "refund", 4)
    assert found.confirmed_at == T0 + timedelta(minutes=5)
    assert found.resolved_at == T0 + timedelta(minutes=60)
    rows = session.scalars(select(TicketTransition).order_by(TicketTransition.id)).all()
    assert [(r.from_status, r.to_status, r.actor) for r in rows] == [
        (None, "new", "intake:social"), ("new", "confirming", "ana"),
        ("confirming", "handling", "ana"), ("handling", "awaiting_evidence", "ana"),
        ("awaiting_evidence", "handling", "user:C-1"), ("handling", "resolved", "ana"),
        ("resolved", "followed_up", "ana"), ("followed_up", "closed", "ana")]
    assert rows[4].reason == "photos uploaded"
    assert rows[4].at == T0 + timedelta(minutes=40)
    # complex: the customer is asked for photos, on the channel they wrote on
    assert rows[2].details == {"handling": "complex", "evidence_requested": "social",
                               "qc_check": 1}  # and QC is asked to check (test_ticket_qc)
    request = session.scalars(select(TicketMessage).where(
        TicketMessage.author == "evidence-request")).one()
    assert (request.direction, request.meta) == ("out", {"kind": "message",
                                                          "evidence_request": True})
    assert "please send photos" in request.text
    assert request.received_at == T0 + timedelta(minutes=10)
    clocks = sla.clocks_of(session, found.id)
    assert clocks[states.ACK].state == "MET"  # accepted 5 min after assignment
    assert clocks[states.RESOLUTION].state == "MET"
    assert clocks[states.RESOLUTION].pauses == [[(T0 + timedelta(minutes=11)).isoformat(),
                                                 (T0 + timedelta(minutes=40)).isoformat()]]
    assert clocks[states.FOLLOW_UP].state == "MET"
    assert clocks[states.FIRST_CONTACT].state == "CANCELLED"  # never contacted


@pytest.mark.parametrize(("path", "to"), [
    ([], "resolved"), ([], "closed"), ([], "handling"),
    ([("confirming", {})], "followed_up"),
    ([("confirming", {}), ("handling", {"handling": "simple"})], "closed"),
])
def test_illegal_transitions_are_refused_naming_from_and_to(
        session: Session, path: list[tuple[str, dict[str, object]]], to: str) -> None:
    for step, (status, change) in enumerate(path):
        move(session, status, step + 1, **change)
    before = ticket(session).status
    audited = session.scalars(select(TicketTransition)).all()

    with pytest.raises(Conflict, match=f"cannot go from {before} to {to}"):
        move(session, to, 30)
    assert ticket(session).status == before
    assert len(session.scalars(select(TicketTransition)).all()) == len(audited)


@pytest.mark.parametrize(("path", "to", "change", "message"), [
    ([("confirming", {})], "handling", {"handling": "later"}, "handling must be one of"),
    ([("confirming", {}), ("handling", {"handling": "simple"})], "resolved",
     {"resolution": "explained"}, "resolution must be one of refund, reship"),
    ([("confirming", {}), ("handling", {"handling": "complex"})], "resolved", {},
     "resolution must be one of"),
    ([("confirming", {}), ("handling", {"handling": "simple"}),
      ("resolved", {"resolution": "reship"})], "followed_up", {"satisfaction": 6},
     "satisfaction must be an integer 1-5"),
    ([("confirming", {}), ("handling", {"handling": "simple"}),
      ("resolved", {"resolution": "reship"})], "handling", {"reason": " "},
     "reason is required to reopen"),
    ([], "merged", {"merged_into": 999}, "merged_into must name another ticket"),
])
def test_guards_refuse_a_transition_missing_what_it_needs(
        session: Session, path: list[tuple[str, dict[str, object]]], to: str,
        change: dict[str, object], message: str) -> None:
    for step, (status, fields) in enumerate(path):
        move(session, status, step + 1, **fields)
    with pytest.raises(InvalidInput, match=message):
        move(session, to, 30, **change)


def test_confirming_needs_an_assignee(session: Session) -> None:
    found = ticket(session)
    found.assignee_id = None
    with pytest.raises(InvalidInput, match="no assignee"):
        move(session, "confirming", 1)


def test_a_closed_ticket_reopens_into_handling_with_a_fresh_resolution_clock(
        session: Session) -> None:
    move(session, "confirming", 1)
    move(session, "handling", 2, handling="simple")
    move(session, "resolved", 3, resolution="reship")
    move(session, "followed_up", 4, satisfaction=2)
    move(session, "closed", 5)
    move(session, "handling", 60, actor="bo", reason="the reship was mouldy too")

    found = ticket(session)
    assert (found.status, found.closed_at) == ("handling", None)
    clocks = sla.clocks_of(session, found.id)
    assert clocks[states.RESOLUTION].state == "RUNNING"
    assert clocks[states.RESOLUTION].started_at == T0 + timedelta(minutes=60)


def test_an_unknown_ticket_and_a_missing_actor_are_refused(session: Session) -> None:
    with pytest.raises(NotFound, match="ticket 404"):
        transition(session, 404, "confirming", Change(actor="ana"), T0, config=CONFIG)
    with pytest.raises(InvalidInput, match="actor is required"):
        move(session, "confirming", 1, actor=" ")


def test_the_customers_evidence_takes_a_waiting_ticket_back_to_handling(
        session: Session, tmp_path: Path) -> None:
    move(session, "confirming", 1)
    move(session, "handling", 2, handling="complex")
    move(session, "awaiting_evidence", 10)
    found = ticket(session)

    def upload(data: bytes, by: str, minutes: float) -> bool:
        return store_evidence(session, found.id, data, content_type="image/jpeg",
                              uploaded_by=by, data_dir=tmp_path,
                              now=T0 + timedelta(minutes=minutes), config=CONFIG)[1]

    assert upload(b"QC photo", "ana", 20)  # an agent's file is not the customer's evidence
    assert found.status == "awaiting_evidence"
    assert upload(b"mouldy berries", found.customer_key or "", 30)
    assert found.status == "handling"
    moved = session.scalars(select(TicketTransition).order_by(TicketTransition.id)).all()[-1]
    record = session.scalars(select(TicketEvidence).order_by(TicketEvidence.id)).all()[-1]
    assert (moved.from_status, moved.to_status, moved.actor, moved.reason, moved.at) == (
        "awaiting_evidence", "handling", "social:weibo:x", "evidence received",
        T0 + timedelta(minutes=30))
    assert moved.details == {"evidence_id": record.id, "sha256": record.sha256}
    resolution = sla.clocks_of(session, found.id)[states.RESOLUTION]
    assert resolution.state == "RUNNING"
    assert resolution.pauses == [[(T0 + timedelta(minutes=10)).isoformat(),
                                  (T0 + timedelta(minutes=30)).isoformat()]]

    move(session, "awaiting_evidence", 40)  # more is needed
    assert not upload(b"mouldy berries", "customer", 50)  # the same file again: not new
    assert found.status == "awaiting_evidence"
    assert upload(b"the box, opened", "customer", 60)  # "customer": the API's default uploader
    assert found.status == "handling"
