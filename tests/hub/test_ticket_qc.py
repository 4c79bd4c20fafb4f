"""Quality control is asked to check a complex case's goods, and its finding reaches the ticket."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.errors import Conflict, InvalidInput, NotFound
from hub.models import Ticket
from hub.tickets import intake, qc, sla, states
from hub.tickets.intake import Complaint
from hub.tickets.models import QcCheck, SlaClock, TicketMessage, TicketTransition
from hub.tickets.workflow import Change, transition
from tests.hub.conftest import T0
from tests.hub.tickets_helpers import CONFIG, add_agent, count, triage


def complex_case(session: Session, minutes: float = 10) -> Ticket:
    """A complaint about strawberries IT-1 of order O-1, handled as complex by ana."""
    add_agent(session, "ana")
    ticket = intake.receive(session, Complaint(
        channel="app", text="mouldy strawberries", external_id="m-1", user_id="C-1",
        order_id="O-1", item_ids=("IT-1",)), T0, triage=triage(), config=CONFIG).ticket
    transition(session, ticket.id, states.CONFIRMING, Change("ana"), T0 + timedelta(minutes=5),
               config=CONFIG)
    transition(session, ticket.id, states.HANDLING, Change("ana", handling="complex"),
               T0 + timedelta(minutes=minutes), config=CONFIG)
    return ticket


def test_a_complex_case_asks_qc_to_check_the_complained_goods(session: Session) -> None:
    ticket = complex_case(session)

    check = session.scalars(select(QcCheck)).one()
    assert (check.ticket_id, check.order_id, check.category, check.status) == (
        ticket.id, "O-1", "spoiled", "open")
    assert check.items == [{"id": "IT-1", "product": "Strawberries 500 g", "lot": "L2611"}]
    assert (check.requested_by, check.requested_at) == ("ana", T0 + timedelta(minutes=10))
    assert qc.open_checks(session) == [check]


def test_a_simple_case_asks_qc_nothing(session: Session) -> None:
    add_agent(session, "ana")
    ticket = intake.receive(session, Complaint(
        channel="app", text="late", external_id="m-1", user_id="C-1", order_id="O-1"),
        T0, triage=triage(), config=CONFIG).ticket
    transition(session, ticket.id, states.CONFIRMING, Change("ana"), T0, config=CONFIG)
    transition(session, ticket.id, states.HANDLING, Change("ana", handling="simple"), T0,
               config=CONFIG)
    assert count(session, QcCheck) == 0


def test_the_finding_lands_on_the_ticket_and_the_clocks_run_on(session: Session) -> None:
    ticket = complex_case(session)
    check = session.scalars(select(QcCheck)).one()
    resolution_due = session.scalars(select(SlaClock.due_at).where(
        SlaClock.ticket_id == ticket.id, SlaClock.target == states.RESOLUTION)).one()

    done = qc.record_finding(session, check.id, actor="qc-lin", outcome="confirmed",
                             finding="  mould on 3 of 12 punnets of lot L2611  ",
                             now=T0 + timedelta(hours=2))

    assert (done.status, done.outcome, done.done_by) == ("done", "confirmed", "qc-lin")
    assert done.finding == "mould on 3 of 12 punnets of lot L2611"
    assert qc.open_checks(session) == []
    note = session.scalars(select(TicketMessage).where(
        TicketMessage.author == "qc-lin")).one()
    assert (note.direction, note.ticket_id) == ("note", ticket.id)
    assert note.text == "QC: confirmed: mould on 3 of 12 punnets of lot L2611"
    row = session.scalars(select(TicketTransition).order_by(TicketTransition.id.desc())).first()
    assert row is not None
    assert (row.from_status, row.to_status, row.actor, row.details) == (
        "handling", "handling", "qc-lin", {"qc_check": check.id, "outcome": "confirmed"})
    clocks = sla.clocks_of(session, ticket.id)
    assert clocks[states.RESOLUTION].state == "RUNNING"  # QC's time is not the customer's
    assert clocks[states.RESOLUTION].due_at == resolution_due


def test_a_check_is_recorded_once_and_bad_findings_are_refused(session: Session) -> None:
    complex_case(session)
    check = session.scalars(select(QcCheck)).one()
    for kwargs, says in [
        ({"actor": " "}, "actor is required"),
        ({"outcome": "mouldy"}, "outcome must be one of confirmed, not_confirmed, "
                                "inconclusive, got 'mouldy'"),
        ({"finding": ""}, "finding is required"),
        ({"finding": "x" * 2001}, "finding is 2001 characters long"),
    ]:
        with pytest.raises(InvalidInput, match=says):
            qc.record_finding(session, check.id, now=T0, **{
                "actor": "qc-lin", "outcome": "confirmed", "finding": "ok"} | kwargs)
    assert check.status == "open"
    with pytest.raises(NotFound, match="QC check 99 does not exist"):
        qc.record_finding(session, 99, actor="qc-lin", outcome="confirmed", finding="x",
                          now=T0)
    qc.record_finding(session, check.id, actor="qc-lin", outcome="inconclusive",
                      finding="item not returned", now=T0)
    with pytest.raises(Conflict, match="already recorded by qc-lin"):
        qc.record_finding(session, check.id, actor="qc-wu", outcome="confirmed",
                          finding="late look", now=T0)


def test_a_ticket_has_one_check(session: Session) -> None:
    ticket = complex_case(session)
    again = qc.request_check(session, ticket, T0 + timedelta(days=1), actor="bo")
    assert again.requested_by == "ana" and count(session, QcCheck) == 1
