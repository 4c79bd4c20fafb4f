"""Planned shifts: windows start and end agents' shifts from the clock and stored rows only,
never fighting a person who started or ended a shift by hand."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hub.db import make_engine, session_factory
from hub.errors import InvalidInput
from hub.models import Ticket
from hub.tickets import intake, routing
from hub.tickets.models import Agent, TicketAssignment
from hub.tickets.policy import DEFAULT_CONFIG
from hub.tickets.shifts import (
    ShiftWindow,
    apply_shifts,
    due_change,
    planned_state,
    window_from_text,
    window_text,
)
from hub.tickets.sla_watch import SlaWatch
from tests.hub.conftest import T0
from tests.hub.tickets_helpers import CONFIG, add_agent, social, triage, window

FRIDAY, WEEKDAYS = (5,), (1, 2, 3, 4, 5)
MONDAY_0900 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # the test calendar's holiday


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in the week of T0 (Friday 2026-11-20), UTC: ``day`` of November."""
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def session(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session over the seeded database."""
    with factory() as session:
        yield session


def shifts(session: Session, now: datetime) -> tuple[list[str], list[str]]:
    """Apply the plan at ``now``; return who started and who ended."""
    report = apply_shifts(session, now, config=CONFIG)
    return report.started, report.ended


def agent(session: Session, agent_id: str) -> Agent:
    """An agent, read again."""
    found = session.get(Agent, agent_id)
    assert found is not None
    return found


@pytest.mark.parametrize(("windows", "timezone", "now", "on", "since"), [
    # Friday 09:30 UTC is 17:30 in Shanghai: inside 09:00-18:00, which began 01:00 UTC
    ([window(WEEKDAYS, "09:00", "18:00")], "Asia/Shanghai", T0, True, at(20, 1)),
    ([window(WEEKDAYS, "09:00", "18:00")], "Asia/Shanghai", at(20, 10, 30), False,
     at(20, 10)),
    # a night window started on Friday runs into Saturday
    ([window(FRIDAY, "22:00", "06:00")], "UTC", at(21, 3), True, at(20, 22)),
    ([window(FRIDAY, "22:00", "06:00")], "UTC", at(21, 7), False, at(21, 6)),
    # overlapping windows are one: no change at 13:00
    ([window(FRIDAY, "09:00", "13:00"), window(FRIDAY, "12:00", "18:00")], "UTC",
     at(20, 13, 30), True, at(20, 9)),
    # a Monday-only window seen on Friday: its last change was Monday's end
    ([window((1,), "09:00", "12:00")], "UTC", T0, False, at(16, 12)),
])
def test_the_plan_at_a_moment(windows: list[dict[str, object]], timezone: str, now: datetime,
                              on: bool, since: datetime) -> None:
    plan = planned_state([ShiftWindow.model_validate(w) for w in windows], timezone, now)
    assert (plan.on_shift, plan.since) == (on, since)


def test_windows_are_local_times_of_the_teams_calendar() -> None:
    ana = Agent(id="ana", team="support", shifts=[window(WEEKDAYS, "09:00", "18:00")],
                on_shift=False, active=True, shift_set_by_hand_at=None)
    assert DEFAULT_CONFIG.team_timezone("support") == "Asia/Shanghai"  # the office calendar
    assert CONFIG.team_timezone("support") == "UTC"  # the tests' office calendar
    later = T0 + timedelta(hours=1)  # 10:30 UTC, 18:30 in Shanghai
    assert due_change(ana, later, DEFAULT_CONFIG) is None
    assert due_change(ana, later, CONFIG) == "start"


def test_windows_start_and_end_shifts_and_the_queue_and_handover_follow(
        session: Session) -> None:
    add_agent(session, "ana", on_shift=False, shifts=[window(FRIDAY, "09:00", "10:00")])
    add_agent(session, "bo", on_shift=False, shifts=[window(FRIDAY, "10:00", "18:00")])
    ticket = intake.receive(session, social("x"), T0 - timedelta(hours=1), triage=triage(),
                            config=CONFIG).ticket
    assert ticket.assignee_id is None  # nobody on shift at 08:30

    report = apply_shifts(session, T0, config=CONFIG)
    assert (report.started, report.ended, report.assigned) == (["ana"], [], 1)
    assert ticket.assignee_id == "ana"
    assert shifts(session, T0) == ([], [])  # idempotent
    assert shifts(session, T0 + timedelta(minutes=20)) == ([], [])

    report = apply_shifts(session, at(20, 10), config=CONFIG)
    assert (report.started, report.ended) == (["bo"], ["ana"])
    assert report.handed_over == [(ticket.id, "bo")]  # to the agent who just started
    assert (agent(session, "ana").on_shift, agent(session, "bo").on_shift) == (False, True)
    assert agent(session, "ana").shift_set_by_hand_at is None  # the plan did it
    history = session.scalars(select(TicketAssignment).where(
        TicketAssignment.ticket_id == ticket.id).order_by(TicketAssignment.id)).all()
    assert [(h.agent_id, h.reason, h.end_reason) for h in history] == [
        ("ana", "queue", "off_shift"), ("bo", "handover", None)]
    assert shifts(session, at(20, 18)) == ([], ["bo"])
    assert shifts(session, at(20, 18, 1)) == ([], [])


def test_a_shift_ended_by_hand_stays_ended_until_the_next_window(session: Session) -> None:
    add_agent(session, "ana", on_shift=False, shifts=[window(WEEKDAYS, "09:00", "18:00")])
    assert shifts(session, T0) == (["ana"], [])

    routing.agent_off_shift(session, "ana", at(20, 11), config=CONFIG)  # sent home
    assert agent(session, "ana").shift_set_by_hand_at == at(20, 11)
    for later in (at(20, 11, 1), at(20, 17, 59), at(20, 18), at(21, 10), at(22, 23)):
        assert shifts(session, later) == ([], []), later
    assert agent(session, "ana").on_shift is False
    # the next window starts the shift again (planned shifts do not skip calendar holidays)
    assert shifts(session, MONDAY_0900) == (["ana"], [])
    assert shifts(session, at(23, 18)) == ([], ["ana"])


def test_a_shift_started_by_hand_after_hours_lasts_until_the_next_window_ends(
        session: Session) -> None:
    add_agent(session, "ana", on_shift=False, shifts=[window(WEEKDAYS, "09:00", "18:00")])
    routing.agent_on_shift(session, "ana", at(23, 20), config=CONFIG)  # overtime on Monday

    for later in (at(23, 21), at(24, 8, 59), at(24, 9), at(24, 17, 59)):
        assert shifts(session, later) == ([], []), later
    assert agent(session, "ana").on_shift is True
    assert shifts(session, at(24, 18)) == ([], ["ana"])


def test_agents_without_a_plan_on_leave_or_with_old_notes_are_left_alone(
        session: Session) -> None:
    add_agent(session, "manual", on_shift=True)  # no windows: shifts by hand only
    add_agent(session, "leave", on_shift=False, active=False,
              shifts=[window(FRIDAY, "09:00", "18:00")])
    add_agent(session, "notes", on_shift=True, shifts=[{"note": "mornings, ask Sue"}])

    assert shifts(session, at(20, 20)) == ([], [])  # outside every window
    assert shifts(session, T0) == ([], [])  # inside leave's window: on leave
    assert [a.on_shift for a in session.scalars(select(Agent).order_by(Agent.id))] == [
        False, True, True]


def test_the_sla_round_applies_shifts_before_routing_across_restarts(
        database_url: str, factory: sessionmaker[Session]) -> None:
    with factory.begin() as session:
        add_agent(session, "ana", on_shift=False, shifts=[window(FRIDAY, "09:00", "18:00")])
        ticket_id = intake.receive(session, social("x"), at(20, 8), triage=triage(),
                                   config=CONFIG).ticket.id  # queued: nobody on shift
    factory.kw["bind"].dispose()

    for now in (T0, T0 + timedelta(minutes=1), at(20, 18)):  # each round a new hub process
        def clock(moment: datetime = now) -> datetime:
            return moment

        engine = make_engine(database_url)
        SlaWatch(session_factory(engine), config=CONFIG, clock=clock).evaluate_once()
        engine.dispose()
        with factory() as session:
            ana, ticket = agent(session, "ana"), session.get(Ticket, ticket_id)
            assert ticket is not None
            assert ana.on_shift is (now < at(20, 18))
            assignments = session.scalars(select(TicketAssignment)).all()
            assert [(a.agent_id, a.reason) for a in assignments] == [("ana", "queue")]
            # not contacted yet: back to the queue when ana leaves at 18:00 (nobody else)
            assert ticket.assignee_id == ("ana" if now < at(20, 18) else None)


@pytest.mark.parametrize(("written", "days", "start", "end", "shown"), [
    ("Mon-Fri 09:00-18:00", [1, 2, 3, 4, 5], "09:00", "18:00", "Mon-Fri 09:00-18:00"),
    ("sat,SUN 10:00 - 16:00", [6, 7], "10:00", "16:00", "Sat,Sun 10:00-16:00"),
    ("Daily 22:00-6:00", [1, 2, 3, 4, 5, 6, 7], "22:00", "06:00", "Daily 22:00-06:00"),
    ("Fri-Mon 9:00–17:00", [1, 5, 6, 7], "09:00", "17:00", "Mon,Fri-Sun 09:00-17:00"),
    ("monday, wednesday 08:00~12:00", [1, 3], "08:00", "12:00", "Mon,Wed 08:00-12:00"),
])
def test_a_window_reads_as_people_write_it_and_is_shown_the_same_way(
        written: str, days: list[int], start: str, end: str, shown: str) -> None:
    parsed = window_from_text(written)
    assert (parsed.days, parsed.start, parsed.end) == (days, start, end)
    assert window_text(parsed) == shown
    assert window_from_text(shown) == parsed


@pytest.mark.parametrize(("written", "problem"), [
    ("Mon-Fry 09:00-18:00", "'fry' is not a day; days are Mon Tue Wed Thu Fri Sat Sun"),
    ("Mon,,Tue 09:00-10:00", "'(nothing)' is not a day"),
    ("Mon 25:00-18:00", "'Mon 25:00-18:00': must be a local time HH:MM"),
    ("Mon 09:00-09:00", "start and end are both 09:00"),
    ("whenever", "'whenever' is not days and times, e.g. Mon-Fri 09:00-18:00"),
    ("09:00-18:00", "is not days and times"),
])
def test_a_window_badly_written_is_refused_naming_why(written: str, problem: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        window_from_text(written)
    assert problem in str(caught.value)
