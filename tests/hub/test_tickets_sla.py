"""SLA clocks: business time with a lunch break and a holiday, pauses, warnings, breaches —
evaluated from stored rows only, so a restarted hub escalates a breach once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hub.db import make_engine, session_factory
from hub.models import Ticket
from hub.tickets import contact, intake, sla, states
from hub.tickets.calendar import ALWAYS
from hub.tickets.models import SlaClock, TicketEscalation
from hub.tickets.sla_watch import SlaWatch
from hub.tickets.workflow import Change, transition
from tests.hub.conftest import T0
from tests.hub.tickets_helpers import CONFIG, OFFICE, add_agent, count, social, triage

FRIDAY_1730 = datetime(2026, 11, 20, 17, 30, tzinfo=UTC)
TUESDAY_0930 = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)  # Monday 23rd is a holiday


@pytest.fixture
def session(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session over the seeded database."""
    with factory() as session:
        yield session


def open_ticket(session: Session, at: datetime, handle: str = "x", **kwargs: object) -> Ticket:
    """A new ticket created at ``at``."""
    return intake.receive(session, social(handle), at, triage=triage(**kwargs),
                          config=CONFIG).ticket


def clock(session: Session, ticket_id: int, target: str) -> SlaClock:
    """One of a ticket's clocks, read from the database."""
    return session.scalars(select(SlaClock).where(SlaClock.ticket_id == ticket_id,
                                                  SlaClock.target == target)).one()


# --- business calendar ------------------------------------------------------------------------


@pytest.mark.parametrize(("start", "minutes", "due"), [
    (T0, 60, T0 + timedelta(hours=1)),  # 09:30 -> 10:30
    (T0.replace(hour=11, minute=30), 60, T0.replace(hour=13, minute=30)),  # over lunch
    (T0.replace(hour=12, minute=15), 60, T0.replace(hour=14, minute=0)),  # starts in lunch
    (FRIDAY_1730, 60, TUESDAY_0930),  # weekend, then the Monday holiday
    (T0.replace(hour=7), 0, T0.replace(hour=9, minute=0)),  # before opening: next opening
])
def test_business_time_skips_lunch_nights_weekends_and_holidays(
        start: datetime, minutes: float, due: datetime) -> None:
    assert OFFICE.add(start, minutes * 60) == due
    assert OFFICE.seconds_between(start, due) == minutes * 60


def test_a_calendar_without_business_time_is_refused_not_walked_forever() -> None:
    from hub.errors import InvalidInput
    from hub.tickets.calendar import BusinessCalendar

    with pytest.raises(InvalidInput, match="no business time within 400 days"):
        BusinessCalendar("never").add(T0, 60)
    assert ALWAYS.add(T0, 90) == T0 + timedelta(seconds=90)


# --- clocks -----------------------------------------------------------------------------------


def test_first_contact_is_due_in_one_business_hour(session: Session) -> None:
    ticket = open_ticket(session, FRIDAY_1730)
    first = clock(session, ticket.id, states.FIRST_CONTACT)
    assert (first.state, first.policy, first.calendar) == ("RUNNING", "office", "office")
    assert first.due_at == TUESDAY_0930
    assert clock(session, ticket.id, states.ACK).state == "PENDING"  # nobody took it yet

    urgent = open_ticket(session, FRIDAY_1730, "y", urgency="P2")  # social: P2 -> P1
    assert urgent.sla_policy == "urgent"
    assert clock(session, urgent.id, states.FIRST_CONTACT).due_at == FRIDAY_1730 + timedelta(
        minutes=30)


def test_first_contact_met_in_time_and_late(session: Session) -> None:
    early, late = open_ticket(session, T0, "a"), open_ticket(session, T0, "b")
    contact.record_contact(session, early.id, agent="ana", text="Hello", kind="message",
                           now=T0 + timedelta(minutes=59), config=CONFIG)
    contact.record_contact(session, late.id, agent="ana", text="internal", kind="note",
                           now=T0 + timedelta(minutes=10), config=CONFIG)  # not a contact
    contact.record_contact(session, late.id, agent="ana", text="Sorry", kind="call",
                           now=T0 + timedelta(minutes=61), config=CONFIG)
    assert clock(session, early.id, states.FIRST_CONTACT).state == "MET"
    assert clock(session, late.id, states.FIRST_CONTACT).state == "MET_LATE"
    assert late.first_contact_at == T0 + timedelta(minutes=61)


def test_a_pause_moves_the_due_time_by_its_business_time(session: Session) -> None:
    add_agent(session, "ana")
    ticket = open_ticket(session, T0)  # RESOLUTION 8 business hours: due Friday 18:30 -> Tue
    resolution = clock(session, ticket.id, states.RESOLUTION)
    before = resolution.due_at
    for to, minutes, change in [("confirming", 1, {}), ("handling", 2, {"handling": "complex"}),
                                ("awaiting_evidence", 120, {}),  # 11:30 -> paused
                                ("handling", 240, {})]:  # 13:30: 1 business hour paused
        transition(session, ticket.id, to, Change(actor="ana", **change),  # type: ignore[arg-type]
                   T0 + timedelta(minutes=minutes), config=CONFIG)
        if to == "awaiting_evidence":
            paused = clock(session, ticket.id, states.RESOLUTION)
            assert paused.state == "PAUSED"
            report = sla.evaluate_sla(session, T0 + timedelta(days=30), CONFIG)
            assert (ticket.id, states.RESOLUTION) not in report.breaches  # paused
    resumed = clock(session, ticket.id, states.RESOLUTION)
    assert resumed.state == "RUNNING"
    assert before is not None and resumed.due_at == OFFICE.add(before, 0) + timedelta(hours=1)
    # 09:30-13:30 is 3 business hours (lunch 12-13), 1 of them paused: 2 of 8 used
    assert sla.progress(resumed, T0 + timedelta(minutes=240), CONFIG) == pytest.approx(2 / 8)


def test_warnings_at_50_and_80_percent_once_each(session: Session) -> None:
    ticket = open_ticket(session, T0)
    first = sla.evaluate_sla(session, T0 + timedelta(minutes=31), CONFIG)
    second = sla.evaluate_sla(session, T0 + timedelta(minutes=48), CONFIG)
    third = sla.evaluate_sla(session, T0 + timedelta(minutes=50), CONFIG)

    assert (ticket.id, states.FIRST_CONTACT, 50) in first.warnings
    assert (ticket.id, states.FIRST_CONTACT, 80) in second.warnings
    assert third.warnings == [] and third.breaches == []
    first_contact = clock(session, ticket.id, states.FIRST_CONTACT)
    assert first_contact.warned_50 and first_contact.warned_80
    assert first_contact.breached_at is None
    warnings = session.scalars(select(TicketEscalation.detail).where(
        TicketEscalation.kind == "sla_warning").order_by(TicketEscalation.id)).all()
    assert warnings == ["FIRST_CONTACT at 50% of 60 min", "FIRST_CONTACT at 80% of 60 min"]


def test_a_breach_escalates_once_even_across_a_restart(database_url: str,
                                                       factory: sessionmaker[Session]) -> None:
    with factory.begin() as session:  # the first hub process
        add_agent(session, "ana")
        add_agent(session, "bo")
        add_agent(session, "sue", on_shift=False, supervisor=True)
        ticket_id = open_ticket(session, T0).id  # to ana
        transition(session, ticket_id, "confirming", Change(actor="ana"),
                   T0 + timedelta(minutes=5), config=CONFIG)  # ACK met; not contacted yet
        sla.evaluate_sla(session, T0 + timedelta(minutes=50), CONFIG)  # warnings only
    factory.kw["bind"].dispose()  # the hub stops: no process keeps any timer

    for later in (timedelta(hours=2), timedelta(hours=3)):  # two restarts, each from rows only
        engine = make_engine(database_url)

        def restart_clock(at: datetime = T0 + later) -> datetime:
            return at

        watch = SlaWatch(session_factory(engine), config=CONFIG, clock=restart_clock)
        report = watch.evaluate_once()
        engine.dispose()
        assert report.breaches == ([(ticket_id, states.FIRST_CONTACT)]
                                   if later == timedelta(hours=2) else [])

    with factory() as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        first_contact = clock(session, ticket_id, states.FIRST_CONTACT)
        assert first_contact.breached_at == T0 + timedelta(hours=1)
        assert first_contact.escalated_at == T0 + timedelta(hours=2)
        [breach] = session.scalars(select(TicketEscalation).where(
            TicketEscalation.kind == "sla_breach")).all()
        assert (breach.action, breach.urgency_from, breach.urgency_to, breach.notify) == (
            "reassigned", "P2", "P1", "bo")
        assert clock(session, ticket_id, states.ACK).state == "MET"
        assert (ticket.urgency, ticket.assignee_id) == ("P1", "bo")
        assert count(session, TicketEscalation, TicketEscalation.kind == "sla_warning") == 2
        contact.record_contact(session, ticket_id, agent="bo", text="So sorry", kind="call",
                               now=T0 + timedelta(hours=3), config=CONFIG)
        assert clock(session, ticket_id, states.FIRST_CONTACT).state == "MET_LATE"


def test_without_another_agent_a_breach_notifies_the_supervisor(session: Session) -> None:
    add_agent(session, "ana")
    add_agent(session, "sue", on_shift=False, supervisor=True)
    ticket = open_ticket(session, T0, urgency="P4")  # social: P3
    report = sla.evaluate_sla(session, T0 + timedelta(hours=4), CONFIG)

    assert report.breaches == [(ticket.id, states.ACK), (ticket.id, states.FIRST_CONTACT)]
    breaches = session.scalars(select(TicketEscalation).where(
        TicketEscalation.kind == "sla_breach").order_by(TicketEscalation.id)).all()
    assert [(b.action, b.notify, b.urgency_to) for b in breaches] == [
        ("supervisor", "sue", "P2"), ("supervisor", "sue", "P2")]  # one step up per round
    assert ticket.assignee_id == "ana"
