"""The customer's satisfaction survey: sent on resolution, answered once by link, withdrawn
when the ticket leaves ``resolved`` another way."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.errors import Conflict, InvalidInput, NotFound
from hub.models import Ticket
from hub.tickets import intake, sla, states, surveys
from hub.tickets.channels import AppMessage, MiniProgramMessage
from hub.tickets.models import Survey, TicketMessage, TicketTransition
from hub.tickets.workflow import Change, answer_survey, transition
from tests.hub.conftest import AUTH, T0
from tests.hub.tickets_helpers import CONFIG, add_agent, triage
from tests.hub.ui_helpers import csrf_token

APP = AppMessage(message_id="app-1", user_id="C-1", order_id="O-1", text="mouldy berries")


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def resolved(session: Session, complaint: intake.Complaint, minutes: float = 30) -> Ticket:
    """A ticket from ``complaint`` at T0, handled simply and resolved ``minutes`` later."""
    add_agent(session, "ana")
    ticket = intake.receive(session, complaint, T0, triage=triage(), config=CONFIG).ticket
    move(session, ticket, states.CONFIRMING, 1)
    move(session, ticket, states.HANDLING, 2, handling="simple")
    move(session, ticket, states.RESOLVED, minutes, resolution="refund")
    return ticket


def move(session: Session, ticket: Ticket, to: str, minutes: float, **change: object) -> None:
    fields = {"actor": "ana", "reason": f"to {to}"} | change
    transition(session, ticket.id, to, Change(**fields),  # type: ignore[arg-type]
               at(minutes), config=CONFIG)


def surveys_of(session: Session, ticket: Ticket) -> list[Survey]:
    return list(session.scalars(select(Survey).where(Survey.ticket_id == ticket.id)
                                .order_by(Survey.id)))


def link_message(session: Session, ticket: Ticket) -> TicketMessage:
    return session.scalars(select(TicketMessage).where(
        TicketMessage.ticket_id == ticket.id, TicketMessage.author == surveys.SURVEY_AUTHOR)
        .order_by(TicketMessage.id.desc())).first()  # type: ignore[return-value]


def test_the_customer_answers_the_link_and_follows_the_ticket_up(session: Session) -> None:
    ticket = resolved(session, APP.complaint())
    (survey,) = surveys_of(session, ticket)
    message = link_message(session, ticket)
    assert (survey.status, survey.channel, message.channel, message.direction) == (
        "open", "app", "app", "out")
    assert re.search(rf"/survey/{re.escape(survey.token)} ", message.text)
    assert survey.expires_at == at(30) + timedelta(days=7)

    answer_survey(session, survey.token, 4, "  fast refund ", at(90), CONFIG)
    assert (ticket.status, ticket.satisfaction, ticket.satisfaction_comment) == (
        "followed_up", 4, "fast refund")
    assert (survey.status, survey.score, survey.answered_at) == ("answered", 4, at(90))
    last = session.scalars(select(TicketTransition).order_by(TicketTransition.id.desc())).first()
    assert last is not None
    assert (last.actor, last.to_status, last.details["survey"]) == ("customer", "followed_up",
                                                                    survey.id)
    assert sla.clocks_of(session, ticket.id)[states.FOLLOW_UP].state == "MET"
    with pytest.raises(Conflict, match="already answered"):
        answer_survey(session, survey.token, 5, None, at(91), CONFIG)


@pytest.mark.parametrize("score", [0, 6, "5", True, 4.5, None])
def test_a_bad_score_is_refused_and_changes_nothing(session: Session, score: object) -> None:
    ticket = resolved(session, APP.complaint())
    (survey,) = surveys_of(session, ticket)
    with pytest.raises(InvalidInput, match="score must be a whole number from 1 to 5"):
        answer_survey(session, survey.token, score, "ok", at(60), CONFIG)
    assert (ticket.status, survey.status, ticket.satisfaction) == ("resolved", "open", None)


def test_the_answer_may_say_how_likely_the_customer_is_to_recommend_us(
        session: Session) -> None:
    (survey,) = surveys_of(session, resolved(session, APP.complaint()))
    answer_survey(session, survey.token, 4, None, at(60), CONFIG, recommend=0)
    assert (survey.score, survey.recommend) == (4, 0)


@pytest.mark.parametrize("recommend", [-1, 11, "9", True, 8.5])
def test_a_bad_recommend_answer_is_refused_and_changes_nothing(session: Session,
                                                                recommend: object) -> None:
    ticket = resolved(session, APP.complaint())
    (survey,) = surveys_of(session, ticket)
    with pytest.raises(InvalidInput, match="recommend must be a whole number from 0 to 10"):
        answer_survey(session, survey.token, 5, None, at(60), CONFIG, recommend=recommend)
    assert (ticket.status, survey.status, survey.score, survey.recommend) == (
        "resolved", "open", None, None)


def test_a_long_comment_and_a_comment_that_is_not_text_are_refused(session: Session) -> None:
    (survey,) = surveys_of(session, resolved(session, APP.complaint()))
    with pytest.raises(InvalidInput, match="at most 2000"):
        answer_survey(session, survey.token, 3, "x" * 2001, at(60), CONFIG)
    with pytest.raises(InvalidInput, match="comment must be text"):
        answer_survey(session, survey.token, 3, ["x"], at(60), CONFIG)


def test_the_link_closes_after_seven_days(session: Session) -> None:
    (survey,) = surveys_of(session, resolved(session, APP.complaint()))
    with pytest.raises(Conflict, match="this survey closed on"):
        answer_survey(session, survey.token, 5, None, at(30) + timedelta(days=7), CONFIG)
    answer_survey(session, survey.token, 5, None, at(29) + timedelta(days=7), CONFIG)


def test_unknown_and_truncated_links_are_not_found(session: Session) -> None:
    (survey,) = surveys_of(session, resolved(session, APP.complaint()))
    for token in ("nope", survey.token[:-1], survey.token + "x" * 30):
        with pytest.raises(NotFound, match="not known"):
            answer_survey(session, token, 5, None, at(60), CONFIG)


def test_a_reopen_withdraws_the_link_and_the_next_resolution_sends_a_new_one(
        session: Session) -> None:
    ticket = resolved(session, APP.complaint())
    move(session, ticket, states.HANDLING, 40, reason="refund never arrived")
    (first,) = surveys_of(session, ticket)
    assert (first.status, first.cancel_reason) == ("cancelled", "moved to handling")
    with pytest.raises(Conflict, match="withdrawn"):
        answer_survey(session, first.token, 5, None, at(41), CONFIG)

    move(session, ticket, states.RESOLVED, 50, resolution="refund")
    first_again, second = surveys_of(session, ticket)
    assert (first_again.status, second.status) == ("cancelled", "open")
    answer_survey(session, second.token, 2, "slow", at(60), CONFIG)
    assert ticket.satisfaction == 2


def test_an_agent_follow_up_withdraws_the_link(session: Session) -> None:
    ticket = resolved(session, APP.complaint())
    move(session, ticket, states.FOLLOWED_UP, 60, satisfaction=5, comment="said on the phone")
    (survey,) = surveys_of(session, ticket)
    assert survey.status == "cancelled"
    with pytest.raises(Conflict, match="withdrawn"):
        answer_survey(session, survey.token, 1, None, at(61), CONFIG)
    assert ticket.satisfaction == 5


def mini(msg_id: str, **fields: object) -> intake.Complaint:
    return MiniProgramMessage.model_validate(
        {"msg_id": msg_id, "openid": "o-abc", "content": "菠菜烂了"} | fields).complaint()


def test_inside_wechats_window_the_link_goes_to_the_mini_program(session: Session) -> None:
    ticket = resolved(session, mini("1"), minutes=60)
    message = link_message(session, ticket)
    assert (message.channel, message.meta["to"], message.meta["openid"]) == (
        "mini_program", "mini_program", "o-abc")


def test_outside_wechats_window_the_link_is_kept_for_the_agent_without_a_phone(
        session: Session) -> None:
    ticket = resolved(session, mini("1"), minutes=49 * 60)
    (survey,) = surveys_of(session, ticket)
    message = link_message(session, ticket)
    assert (survey.channel, message.channel, message.direction, message.meta["kind"]) == (
        "ticket", "ticket", "note", "survey_link")


def test_outside_wechats_window_a_known_phone_gets_an_sms(session: Session) -> None:
    ticket = resolved(session, mini("1", order_id="O-1", user_id="C-1"), minutes=49 * 60)
    message = link_message(session, ticket)
    assert (message.channel, message.direction, message.meta["to"]) == ("sms", "out", "sms")


# --- the customer's page and the channels' API -----------------------------------------------


def test_the_survey_page_takes_one_answer(session: Session, client: FlaskClient) -> None:
    ticket = resolved(session, APP.complaint())
    (survey,) = surveys_of(session, ticket)
    session.commit()
    path = f"/survey/{survey.token}"
    page = client.get(path)
    assert page.status_code == 200 and "How did we do?" in page.text
    assert client.post(path, data={"score": "4"}).status_code == 400  # no form token
    token = csrf_token(client, path)
    missing = client.post(path, data={"csrf_token": token, "comment": "hm"})
    assert missing.status_code == 400 and "Please choose one of the five answers." in missing.text
    assert 'name="recommend" value="10"' in page.text
    too_high = client.post(path, data={"csrf_token": token, "score": "4", "recommend": "11"})
    assert too_high.status_code == 400 and "from 0 to 10, or leave" in too_high.text
    squared = client.post(path, data={"csrf_token": token, "score": "²"})  # a digit, not a number
    assert squared.status_code == 400 and "Please choose one of the five answers." in squared.text
    for odd in ("٣", "0003", "4" * 5000):  # Arabic-Indic three, padded, past int()'s limit
        refused = client.post(path, data={"csrf_token": token, "score": odd})
        assert refused.status_code == 400 and "Please choose one of the five" in refused.text
    refused = client.post(path, data={"csrf_token": token, "score": "4", "recommend": "9" * 5000})
    assert refused.status_code == 400 and "from 0 to 10, or leave" in refused.text
    done = client.post(path, data={"csrf_token": token, "score": "4", "comment": "ok",
                                   "recommend": "9"})
    assert done.status_code == 200 and "Thank you" in done.text
    session.expire_all()
    assert (survey.score, survey.recommend) == (4, 9)
    again = client.get(path)
    assert again.status_code == 409 and "already answered" in again.text
    session.expire_all()
    assert (session.get(Ticket, ticket.id).satisfaction,  # type: ignore[union-attr]
            session.get(Ticket, ticket.id).status) == (4, "followed_up")  # type: ignore
    assert client.get("/survey/" + "x" * 30).status_code == 404


def test_channels_relay_answers_through_the_api(session: Session, client: FlaskClient) -> None:
    ticket = resolved(session, APP.complaint())
    (survey,) = surveys_of(session, ticket)
    session.commit()
    path = f"/api/v1/surveys/{survey.token}"
    bad = client.post(path, json={"score": "5"}, headers=AUTH)
    assert bad.status_code == 422 and "score" in bad.get_json()["fields"]
    assert client.post(path, json={"score": 5, "colour": 1}, headers=AUTH).status_code == 422
    assert client.post(path, json={"score": 5}).status_code == 401  # the channel's token
    out_of_range = client.post(path, json={"score": 5, "recommend": 11}, headers=AUTH)
    assert out_of_range.status_code == 422 and "recommend" in out_of_range.get_json()["fields"]
    created = client.post(path, json={"score": 5, "comment": "great", "recommend": 10},
                          headers=AUTH)
    assert created.status_code == 201
    assert created.get_json() == {"ticket_id": ticket.id, "status": "answered", "score": 5,
                                  "recommend": 10}
    again = client.post(path, json={"score": 1}, headers=AUTH)
    assert again.status_code == 409 and "already answered" in again.get_json()["error"]
    missing = client.post("/api/v1/surveys/" + "y" * 30, json={"score": 1}, headers=AUTH)
    assert missing.status_code == 404
