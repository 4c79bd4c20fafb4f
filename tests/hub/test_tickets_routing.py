"""Routing: balanced assignment among qualified agents, handover at shift end, the queue."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hub.tickets import contact, intake, routing
from hub.tickets.models import TicketAssignment, TicketEscalation
from tests.hub.conftest import T0
from tests.hub.tickets_helpers import CONFIG, add_agent, complain, count, triage


@pytest.fixture
def session(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session over the seeded database."""
    with factory() as session:
        yield session


def test_assignment_balances_load_over_capacity(session: Session) -> None:
    add_agent(session, "ana", capacity=4)
    add_agent(session, "bo", capacity=2)

    tickets = [complain(session, f"c{i}", minutes=i) for i in range(7)]
    session.commit()

    # loads (open/capacity): ana 0 = bo 0 -> ana (id); bo 0 < .25; ana .25 < .5; tie .5/.5
    # -> bo (assigned longer ago); bo full -> ana, ana; both full -> queued.
    assert [t.assignee_id for t in tickets] == ["ana", "bo", "ana", "bo", "ana", "ana", None]
    assert Counter(t.assignee_id for t in tickets) == {"ana": 4, "bo": 2, None: 1}
    [queued] = session.scalars(select(TicketEscalation)).all()
    assert (queued.ticket_id, queued.kind, queued.action) == (tickets[6].id, "no_agent", "queued")
    fourth = session.scalars(select(TicketAssignment)
                             .where(TicketAssignment.ticket_id == tickets[3].id)).one()
    assert fourth.rule == "balanced"
    assert fourth.scores == {"ana": {"open": 2, "capacity": 4, "load": 0.5},
                             "bo": {"open": 1, "capacity": 2, "load": 0.5}}


def test_only_agents_with_the_skill_language_and_region_qualify(session: Session) -> None:
    add_agent(session, "a-skill", skills=("late",))
    add_agent(session, "b-lang", languages=("en",))
    add_agent(session, "c-offline", online=False)
    add_agent(session, "d-off-shift", on_shift=False)
    add_agent(session, "e-ok", skills=("spoiled",), languages=("zh", "en"))

    ticket = complain(session, "x", category="spoiled", language="zh")
    assert ticket.assignee_id == "e-ok"


def test_the_agent_of_the_customers_other_open_ticket_is_preferred(session: Session) -> None:
    add_agent(session, "ana")
    add_agent(session, "bo")
    first = complain(session, "same")
    others = [complain(session, "other", minutes=1), complain(session, "third", minutes=2)]
    assert [t.assignee_id for t in (first, *others)] == ["ana", "bo", "ana"]
    about_order = intake.Complaint(channel="social", text="and another thing",
                                   sender="weibo:same", external_id="weibo:2", order_id="O-1")
    # same customer key, another order: a new ticket; balanced would pick bo (1 open < 2)
    second = intake.receive(session, about_order, T0 + timedelta(minutes=3), triage=triage(),
                            config=CONFIG).ticket
    assert second.id != first.id
    assert second.assignee_id == "ana"
    assignment = routing.current_assignment(session, second.id)
    assert assignment is not None and assignment.rule == "same-customer"


def test_an_agent_going_off_shift_hands_over_to_a_qualified_agent(session: Session) -> None:
    add_agent(session, "ana")
    add_agent(session, "bo", skills=("late",))  # not qualified
    ticket = complain(session, "x")
    contacted = complain(session, "y", minutes=1)
    contact.record_contact(session, contacted.id, agent="ana", text="Calling you now",
                           kind="call", now=T0 + timedelta(minutes=5), config=CONFIG)
    assert (ticket.assignee_id, contacted.assignee_id) == ("ana", "ana")
    add_agent(session, "cy", skills=("spoiled",))

    handed = routing.agent_off_shift(session, "ana", T0 + timedelta(minutes=10), config=CONFIG)
    session.commit()

    assert [(t.id, a.id if a else None) for t, a in handed] == [(ticket.id, "cy")]
    assert ticket.assignee_id == "cy"
    assert contacted.assignee_id == "ana"  # already in touch with the customer: kept
    history = session.scalars(select(TicketAssignment).where(
        TicketAssignment.ticket_id == ticket.id).order_by(TicketAssignment.id)).all()
    assert [(h.agent_id, h.reason, h.end_reason) for h in history] == [
        ("ana", "new", "off_shift"), ("cy", "handover", None)]


def test_without_a_qualified_agent_the_ticket_is_queued_and_escalated_once(
        session: Session) -> None:
    add_agent(session, "ana")
    ticket = complain(session, "x")
    routing.agent_off_shift(session, "ana", T0 + timedelta(minutes=1), config=CONFIG)
    routing.route_queue(session, T0 + timedelta(minutes=2), config=CONFIG)  # again: no one
    session.commit()

    assert ticket.assignee_id is None
    assert count(session, TicketEscalation, TicketEscalation.kind == "no_agent") == 1

    add_agent(session, "bo", on_shift=False)
    assigned = routing.agent_on_shift(session, "bo", T0 + timedelta(minutes=3), config=CONFIG)
    assert assigned == 1 and ticket.assignee_id == "bo"
