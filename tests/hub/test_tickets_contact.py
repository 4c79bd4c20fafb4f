"""Contact with the customer: an answered hotline call is the first contact; messages to a
mini-program customer fit WeChat's reply window (48 h after their message, 5 messages)."""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.errors import Conflict
from hub.models import Ticket
from hub.tickets import contact, intake, sla, states
from hub.tickets.channels import AppMessage, HotlineTranscript, MiniProgramMessage
from hub.tickets.models import TicketTransition
from tests.hub.conftest import T0
from tests.hub.tickets_helpers import CONFIG, PHONE, add_agent, triage

HOTLINE = HotlineTranscript(
    call_id="call-1", caller_phone=PHONE, phone_verified=True, order_id="O-1",
    agent_id="ana", started_at=T0 - timedelta(minutes=5),
    turns=[{"speaker": "customer", "text": "The berries are mouldy"},  # type: ignore[list-item]
           {"speaker": "agent", "text": "Sorry, I will sort it out"}])  # type: ignore[list-item]
APP = AppMessage(message_id="app-1", user_id="C-1", order_id="O-1", text="mouldy berries")


@pytest.fixture(autouse=True)
def _agents(session: Session) -> None:
    """The agents who answer the hotline (off shift: routing gives them no tickets)."""
    for agent_id in ("ana", "bo"):
        add_agent(session, agent_id, on_shift=False, online=False)



def receive(session: Session, complaint: intake.Complaint,
            minutes: float = 0) -> intake.IntakeResult:
    """Receive a complaint ``minutes`` after T0."""
    return intake.receive(session, complaint, T0 + timedelta(minutes=minutes), triage=triage(),
                          config=CONFIG)


def say(session: Session, ticket: Ticket, minutes: float, kind: contact.Kind = "message"
        ) -> None:
    """An agent's message (call, note) ``minutes`` after T0."""
    contact.record_contact(session, ticket.id, agent="ana", text="About your order",
                           kind=kind, now=T0 + timedelta(minutes=minutes), config=CONFIG)


def audit(session: Session, ticket: Ticket) -> list[TicketTransition]:
    """The ticket's audit rows."""
    return list(session.scalars(select(TicketTransition).where(
        TicketTransition.ticket_id == ticket.id).order_by(TicketTransition.id)))


# --- an answered hotline call ---------------------------------------------------------------


def test_a_hotline_call_answered_by_an_agent_is_the_first_contact(session: Session) -> None:
    ticket = receive(session, HOTLINE.complaint()).ticket
    receive(session, HOTLINE.complaint(), minutes=1)  # redelivered: nothing more

    assert ticket.first_contact_at == T0  # the call opened the ticket: contact at once
    first = sla.clocks_of(session, ticket.id)[states.FIRST_CONTACT]
    assert (first.state, first.stopped_at) == ("MET", T0)
    rows = audit(session, ticket)
    assert [(r.from_status, r.to_status, r.actor) for r in rows] == [
        (None, "new", "intake:hotline"), ("new", "new", "ana")]
    assert rows[1].reason == "first contact: hotline call call-1 answered by ana"
    assert rows[1].details == {"event": "first_contact", "channel": "hotline",
                               "call_id": "call-1", "agent_id": "ana",
                               "contact_at": T0.isoformat()}


@pytest.mark.parametrize(("call_at", "state"), [(15, "MET"), (120, "MET_LATE")])
def test_a_call_about_an_app_ticket_is_its_contact_at_the_call_time(
        session: Session, call_at: float, state: str) -> None:
    ticket = receive(session, APP.complaint()).ticket  # first contact due 10:30
    call = HOTLINE.model_copy(update={"started_at": T0 + timedelta(minutes=call_at)})
    joined = receive(session, call.complaint(), minutes=call_at + 10).ticket

    assert joined.id == ticket.id
    assert ticket.first_contact_at == T0 + timedelta(minutes=call_at)
    first = sla.clocks_of(session, ticket.id)[states.FIRST_CONTACT]
    assert (first.state, first.stopped_at) == (state, T0 + timedelta(minutes=call_at))
    later = HOTLINE.model_copy(update={"call_id": "call-2", "agent_id": "bo",
                                       "started_at": T0 + timedelta(hours=5)})
    receive(session, later.complaint(), minutes=300)
    assert ticket.first_contact_at == T0 + timedelta(minutes=call_at)  # the first stays
    assert len(audit(session, ticket)) == 2


def test_a_call_nobody_answered_is_no_contact(session: Session) -> None:
    ticket = receive(session, HOTLINE.model_copy(update={"agent_id": None}).complaint()).ticket
    assert ticket.first_contact_at is None
    assert sla.clocks_of(session, ticket.id)[states.FIRST_CONTACT].state == "RUNNING"


# --- WeChat's reply window --------------------------------------------------------------------


def mini(msg_id: str, **fields: object) -> intake.Complaint:
    """A mini-program message of openid o-abc."""
    return MiniProgramMessage.model_validate(
        {"msg_id": msg_id, "openid": "o-abc", "content": "菠菜烂了"} | fields).complaint()


def test_mini_program_messages_fit_the_48_hour_window_of_5(session: Session) -> None:
    ticket = receive(session, mini("1")).ticket
    for minute in range(1, 6):
        say(session, ticket, minute)
    with pytest.raises(Conflict, match=r"at most 5 messages per 48 h window .* 5 were sent"):
        say(session, ticket, 6)
    say(session, ticket, 7, "call")  # a phone call is not a WeChat message
    say(session, ticket, 8, "note")  # nor is an internal note

    receive(session, mini("2"), minutes=60)  # the customer writes again: a new window
    say(session, ticket, 61)
    with pytest.raises(Conflict, match="only within 48 h of the customer's last message") as err:
        say(session, ticket, 60 + 48 * 60)
    assert 'call the customer (kind "call") or send an SMS instead' in str(err.value)
    say(session, ticket, 60 + 48 * 60, "call")

    sent = contact.record_contact(session, ticket.id, agent="ana", text="Refund sent",
                                  kind="message", now=T0 + timedelta(minutes=62), config=CONFIG)
    assert sent.meta == {"kind": "message", "to": "mini_program", "openid": "o-abc",
                         "window_opened_at": (T0 + timedelta(hours=1)).isoformat()}


def test_the_window_counts_messages_to_the_user_about_their_other_tickets(
        session: Session) -> None:
    about_order = receive(session, mini("1", user_id="C-1", order_id="O-1")).ticket
    other = receive(session, mini("2", user_id="C-1"), minutes=1).ticket  # no order: new
    assert other.id != about_order.id and other.customer_key == about_order.customer_key

    for minute in (2, 3, 4):
        say(session, about_order, minute)
    for minute in (5, 6):
        say(session, other, minute)
    with pytest.raises(Conflict, match="5 were sent"):
        say(session, about_order, 7)


def test_replies_follow_the_channel_of_the_customers_latest_message(session: Session) -> None:
    ticket = receive(session, mini("1", user_id="C-1", order_id="O-1")).ticket
    assert receive(session, APP.complaint(), minutes=5).ticket.id == ticket.id  # now the app
    for minute in range(6, 13):  # seven messages, days later: the app has no window
        say(session, ticket, 3 * 24 * 60 + minute)


def test_a_call_time_with_an_offset_is_stored_in_utc(session: Session) -> None:
    ticket = receive(session, APP.complaint()).ticket
    shanghai = (T0 + timedelta(minutes=15)).astimezone(timezone(timedelta(hours=8)))
    receive(session, HOTLINE.model_copy(update={"started_at": shanghai}).complaint(), 20)
    assert ticket.first_contact_at == T0 + timedelta(minutes=15)
    assert audit(session, ticket)[-1].details["contact_at"] == (
        T0 + timedelta(minutes=15)).isoformat()
