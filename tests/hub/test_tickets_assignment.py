"""Manual assignment: a person names the agent; the agent must qualify unless overridden with a
reason; the assignment row records who, why and which checks were overridden."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hub.errors import Conflict, InvalidInput, NotFound
from hub.models import Ticket
from hub.tickets import intake, sla, states
from hub.tickets.manual_assignment import assign_by_hand
from hub.tickets.models import TicketAssignment
from tests.hub.conftest import T0
from tests.hub.tickets_helpers import CONFIG, add_agent, social, triage

LATER = T0 + timedelta(minutes=5)
APP = intake.Complaint(channel="app", text="mouldy berries", external_id="m-1", user_id="C-1",
                       order_id="O-1")  # customer C-1: region sh


@pytest.fixture
def session(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session over the seeded database."""
    with factory() as session:
        yield session


@pytest.fixture
def ticket(session: Session) -> Ticket:
    """A queued ticket (nobody was on shift): category spoiled, language zh, region sh."""
    return intake.receive(session, APP, T0, triage=triage(), config=CONFIG).ticket


def assign(session: Session, ticket: Ticket, agent_id: str, **kwargs: object) -> Ticket:
    """Assign by hand five minutes after T0, as supervisor sue."""
    return assign_by_hand(session, ticket.id, agent_id, LATER, actor="sue",
                          config=CONFIG, **kwargs)  # type: ignore[arg-type]


def rows(session: Session, ticket: Ticket) -> list[TicketAssignment]:
    """The ticket's assignments, oldest first."""
    return list(session.scalars(select(TicketAssignment).where(
        TicketAssignment.ticket_id == ticket.id).order_by(TicketAssignment.id)))


def test_a_qualified_agent_gets_the_ticket_and_the_row_says_who_and_why(
        session: Session, ticket: Ticket) -> None:
    add_agent(session, "ana", skills=("spoiled",), languages=("zh",), regions=("sh",))
    add_agent(session, "bo")

    assign(session, ticket, "ana", reason="she knows this customer")
    assert (ticket.assignee_id, ticket.assigned_at) == ("ana", LATER)
    assert sla.clocks_of(session, ticket.id)[states.ACK].state == "RUNNING"
    assign(session, ticket, "bo")
    assign(session, ticket, "bo")  # already bo's: nothing more

    history = rows(session, ticket)
    assert [(r.agent_id, r.rule, r.reason, r.actor, r.note, r.end_reason) for r in history] == [
        ("ana", "manual", "manual", "sue", "she knows this customer", "manual"),
        ("bo", "manual", "manual", "sue", None, None)]
    assert history[0].scores == {"override": False, "unmet": []}


def test_an_agent_who_does_not_qualify_is_refused_naming_each_check(
        session: Session, ticket: Ticket) -> None:
    add_agent(session, "bo", skills=("late",), languages=("en",), regions=("bj",),
              on_shift=False)
    add_agent(session, "cy", capacity=1)
    other = intake.receive(session, social("z"), T0, triage=triage(), config=CONFIG).ticket
    assert other.assignee_id == "cy"  # cy is full now

    with pytest.raises(InvalidInput) as refused:
        assign(session, ticket, "bo")
    message = str(refused.value)
    assert message.startswith(f"agent bo does not qualify for ticket {ticket.id}: off shift: ")
    for check in ("skill: agent bo's skills (late) do not cover category spoiled",
                  "language: agent bo speaks en, not zh", "region: agent bo covers bj, not sh",
                  'send "override": true with a reason to assign anyway'):
        assert check in message
    with pytest.raises(InvalidInput, match="capacity: agent cy has 1 open tickets, capacity 1"):
        assign(session, ticket, "cy")
    with pytest.raises(InvalidInput, match="reason is required to override"):
        assign(session, ticket, "cy", override=True, reason="  ")
    assert (ticket.assignee_id, rows(session, ticket)) == (None, [])

    assign(session, ticket, "cy", override=True, reason="cy handled the last refund")
    [row] = rows(session, ticket)
    assert (ticket.assignee_id, row.note) == ("cy", "cy handled the last refund")
    assert row.scores == {"override": True,
                          "unmet": ["capacity: agent cy has 1 open tickets, capacity 1"]}


def test_unknown_or_inactive_agents_and_closed_or_merged_tickets_are_refused(
        session: Session, ticket: Ticket) -> None:
    add_agent(session, "ana")
    add_agent(session, "gone", active=False)
    with pytest.raises(NotFound, match="agent 'zed' does not exist"):
        assign(session, ticket, "zed")
    with pytest.raises(InvalidInput, match="agent gone is not active"):
        assign(session, ticket, "gone", override=True, reason="no one else")
    with pytest.raises(NotFound, match="ticket 404 does not exist"):
        assign_by_hand(session, 404, "ana", LATER, actor="sue", config=CONFIG)
    with pytest.raises(InvalidInput, match="actor is required"):
        assign_by_hand(session, ticket.id, "ana", LATER, actor=" ", config=CONFIG)

    ticket.status = states.CLOSED
    with pytest.raises(Conflict, match="is closed; reopen it"):
        assign(session, ticket, "ana")
    ticket.status, ticket.merged_into = states.MERGED, ticket.id
    with pytest.raises(Conflict, match="was merged into ticket"):
        assign(session, ticket, "ana")
