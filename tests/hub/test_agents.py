"""Agent administration: a saved profile keeps the agent's tickets in step with it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hub.errors import Conflict, InvalidInput
from hub.models import Ticket
from hub.tickets import contact, routing, states, workflow
from hub.tickets.agents import AgentProfile, changes_of, save_agent
from hub.tickets.models import Agent, TicketAssignment
from hub.tickets.workflow import Change
from tests.hub.conftest import T0
from tests.hub.tickets_helpers import CONFIG, add_agent, complain

LATER = T0 + timedelta(minutes=30)


@pytest.fixture
def session(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session over the seeded database."""
    with factory() as session:
        yield session


def profile(**changes: Any) -> AgentProfile:
    """Ana's profile as an administrator would send it, with ``changes``."""
    return AgentProfile.model_validate({"name": "Ana", "skills": ["*"], "online": True,
                                        "capacity": 5} | changes)


def ended_why(session: Session, ticket: Ticket) -> list[tuple[str, str | None]]:
    """The ticket's assignments in order: (agent, why it ended)."""
    return [(a.agent_id, a.end_reason) for a in session.scalars(
        select(TicketAssignment).where(TicketAssignment.ticket_id == ticket.id)
        .order_by(TicketAssignment.id))]


def test_deactivating_an_agent_hands_over_every_open_ticket(session: Session) -> None:
    add_agent(session, "ana")
    fresh = complain(session, "x")
    contacted = complain(session, "y", minutes=1)
    contact.record_contact(session, contacted.id, agent="ana", text="Calling you now",
                           kind="call", now=T0 + timedelta(minutes=5), config=CONFIG)
    resolved = complain(session, "z", minutes=2)
    for to, change in ((states.CONFIRMING, Change("ana")),
                       (states.HANDLING, Change("ana", handling="simple")),
                       (states.RESOLVED, Change("ana", resolution="refund"))):
        workflow.transition(session, resolved.id, to, change, T0 + timedelta(minutes=6),
                            config=CONFIG)
    add_agent(session, "bo", capacity=1)
    assert [t.assignee_id for t in (fresh, contacted, resolved)] == ["ana", "ana", "ana"]

    saved = save_agent(session, "ana", profile(active=False), LATER, actor="lead", config=CONFIG)
    session.commit()

    assert not saved.created
    ana = session.get(Agent, "ana")
    assert ana is not None and (ana.active, ana.on_shift) == (False, False)
    # bo has room for one: the first goes to him, the other back to the queue
    assert [(t.id, a.id if a else None) for t, a in saved.handed_over] == [
        (fresh.id, "bo"), (contacted.id, None)]
    assert (fresh.assignee_id, contacted.assignee_id, resolved.assignee_id) == ("bo", None, "ana")
    assert ended_why(session, fresh) == [("ana", "inactive"), ("bo", None)]
    assert ended_why(session, contacted) == [("ana", "inactive")]
    assert contacted.first_contact_at is not None  # the contact made is kept


def test_a_profile_that_no_longer_covers_a_ticket_hands_it_over(session: Session) -> None:
    add_agent(session, "ana")
    fresh_late = complain(session, "x", category="late")
    contacted_late = complain(session, "y", minutes=1, category="late")
    contact.record_contact(session, contacted_late.id, agent="ana", text="On its way",
                           kind="message", now=T0 + timedelta(minutes=5), config=CONFIG)
    spoiled = complain(session, "z", minutes=2, category="spoiled")
    english = complain(session, "w", minutes=3, category="spoiled", language="en")
    add_agent(session, "bo", skills=("late",))

    saved = save_agent(session, "ana", profile(skills=["spoiled", "damaged"], languages=["zh"]),
                       LATER, actor="lead", config=CONFIG)
    session.commit()

    # late is no longer a skill of hers, nor English a language: the un-contacted ones move
    assert [(t.id, a.id if a else None) for t, a in saved.handed_over] == [
        (fresh_late.id, "bo"), (english.id, None)]
    assert (contacted_late.assignee_id, spoiled.assignee_id) == ("ana", "ana")  # kept
    assert ended_why(session, fresh_late) == [("ana", "profile"), ("bo", None)]
    ana = session.get(Agent, "ana")
    assert ana is not None and ana.on_shift and ana.skills == ["spoiled", "damaged"]


def test_more_capacity_or_a_new_skill_takes_queued_tickets_at_once(session: Session) -> None:
    add_agent(session, "ana", skills=("late",), capacity=1)
    first = complain(session, "x", category="late")
    queued_late = complain(session, "y", minutes=1, category="late")
    queued_spoiled = complain(session, "z", minutes=2, category="spoiled")
    assert (first.assignee_id, queued_late.assignee_id, queued_spoiled.assignee_id) == (
        "ana", None, None)

    saved = save_agent(session, "ana", profile(skills=["late", "spoiled"], capacity=3), LATER,
                       actor="lead", config=CONFIG)
    session.commit()

    assert (saved.assigned, saved.handed_over) == (2, [])
    assert (queued_late.assignee_id, queued_spoiled.assignee_id) == ("ana", "ana")


def test_an_agent_off_shift_takes_nothing_and_a_new_one_starts_off_shift(
        session: Session) -> None:
    complain(session, "x")  # queued: nobody is on shift
    saved = save_agent(session, "cy", profile(name="Cy"), LATER, actor="lead", config=CONFIG)
    session.commit()
    assert (saved.created, saved.assigned, saved.agent.on_shift) == (True, 0, False)

    add_agent(session, "ana", on_shift=False, active=False)
    again = save_agent(session, "ana", profile(active=True), LATER, actor="lead", config=CONFIG)
    assert (again.agent.active, again.agent.on_shift, again.assigned) == (True, False, 0)


def test_a_team_without_a_queue_or_a_taken_id_is_refused_and_nothing_written(
        session: Session) -> None:
    add_agent(session, "ana", skills=("late",))
    session.commit()
    with pytest.raises(InvalidInput, match="team 'qc' has no queue: tickets go to support"):
        save_agent(session, "ana", profile(team="qc", skills=["*"]), LATER, actor="lead",
                   config=CONFIG)
    with pytest.raises(Conflict, match="agent 'ana' already exists"):
        save_agent(session, "ana", profile(), LATER, actor="lead", create_only=True,
                   config=CONFIG)
    session.rollback()
    ana = session.get(Agent, "ana")
    assert ana is not None and (ana.team, ana.skills) == ("support", ["late"])


@pytest.mark.parametrize(("changes", "field", "problem"), [
    ({"skills": ["spoiled", "mouldy"]}, "skills", "'mouldy' is not a category"),
    ({"skills": ["Late"]}, "skills", "'Late' is not a category; skills are categories "
                                     "(spoiled, temperature,"),
    ({"languages": ["fr"]}, "languages", "'fr' is not a language tickets come in; languages "
                                         "are zh (Chinese), en (English)"),
    ({"capacity": -1}, "capacity", "greater than or equal to 0"),
    ({"capacity": "5"}, "capacity", "valid integer"),
    ({"shifts": [{"days": [1], "start": "9:00", "end": "18:00"}]}, "shifts", "HH:MM"),
    ({"name": "  "}, "name", "at least 1 character"),
    ({"on_shift": True}, "on_shift", "Extra inputs are not permitted"),
])
def test_a_profile_names_what_is_wrong(changes: dict[str, Any], field: str,
                                       problem: str) -> None:
    with pytest.raises(ValidationError) as caught:
        profile(**changes)
    [error] = caught.value.errors()
    assert error["loc"][0] == field
    assert problem in error["msg"]


def test_a_profile_lists_each_skill_language_and_region_once() -> None:
    p = profile(skills=["late", "late", "spoiled"], languages=["en", "en"],
                regions=["shanghai", "shanghai"])
    assert (p.skills, p.languages, p.regions) == (["late", "spoiled"], ["en"], ["shanghai"])


def test_each_change_of_an_agent_is_recorded_with_who_and_what(session: Session) -> None:
    save_agent(session, "cy", profile(name="Cy", skills=["late"]), LATER, actor="lead",
               config=CONFIG)
    save_agent(session, "cy", profile(name="Cy", skills=["late"]), LATER, actor="lead",
               config=CONFIG)  # nothing changed: nothing recorded
    routing.agent_on_shift(session, "cy", LATER)
    save_agent(session, "cy", profile(name="Cy", skills=["late", "other"], active=False),
               LATER + timedelta(minutes=1), actor="sue", config=CONFIG)

    newest, created = changes_of(session, "cy")
    assert (created.action, created.actor, created.at) == ("created", "lead", LATER)
    assert created.changes["skills"] == [None, ["late"]]
    assert (newest.action, newest.actor) == ("updated", "sue")
    assert newest.changes == {"skills": [["late"], ["late", "other"]], "active": [True, False],
                              "on_shift": [True, False]}


@pytest.mark.parametrize("agent_id", ["sla", "API", "router", "customer"])
def test_a_new_agent_may_not_take_a_name_the_hub_records_its_own_steps_under(
        session: Session, agent_id: str) -> None:
    with pytest.raises(InvalidInput, match="a name the hub records its own steps under"):
        save_agent(session, agent_id, profile(), LATER, actor="lead", config=CONFIG)
