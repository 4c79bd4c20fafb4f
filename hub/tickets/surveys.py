"""The customer's satisfaction survey: sent when a ticket is resolved, answered once by link.

Resolving a ticket sends the customer a link (``/survey/<token>``) as a ticket message on the
channel a reply goes to; when WeChat's reply window (hub.tickets.reply_window) would not
deliver it, the link goes by SMS to the customer's phone, and with no phone it is kept on the
ticket for the agent to pass on. The customer's answer (1-5 and a comment) follows the ticket
up as the customer, which stops the FOLLOW_UP clock; it may also say, from 0 to 10, how likely
the customer is to recommend us (optional; the NPS of hub.tickets.kpis). Any other way out of
``resolved`` (an agent's follow-up, a reopen, closing) withdraws the open link; a reopened
ticket gets a new one when it is resolved again. Message texts carry the path only: the
channel adapter that delivers them prefixes the hub's public address.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.errors import Conflict, InvalidInput, NotFound
from hub.models import Ticket
from hub.tickets import notices, states
from hub.tickets.models import Survey
from hub.tickets.notices import notify_customer

logger = logging.getLogger(__name__)

VALID_FOR = timedelta(days=7)
MAX_COMMENT = 2000
OPEN, ANSWERED, CANCELLED = "open", "answered", "cancelled"
SURVEY_AUTHOR = "survey"
CUSTOMER_ACTOR = "customer"
SMS, KEPT = notices.SMS, notices.KEPT


def send_survey(session: Session, ticket: Ticket, now: datetime) -> Survey:
    """Create the ticket's survey and its message on the channel that can carry it."""
    survey = Survey(ticket_id=ticket.id, token=secrets.token_urlsafe(24), channel=KEPT,
                    status=OPEN, sent_at=now, expires_at=now + VALID_FOR)
    message = notify_customer(
        session, ticket, f"How did we do with your complaint #{ticket.id}? Rate us 1-5 at "
        f"/survey/{survey.token} (open for {VALID_FOR.days} days)", now,
        author=SURVEY_AUTHOR, meta={"survey": True}, kept_as="survey_link")
    survey.channel = channel = message.channel
    session.add(survey)
    session.flush()
    logger.info("ticket %s: survey sent by %s", ticket.id, channel)
    return survey


def withdraw_open(session: Session, ticket: Ticket, reason: str) -> int:
    """Cancel the ticket's open survey links (the ticket left ``resolved`` another way)."""
    found = session.scalars(select(Survey).where(Survey.ticket_id == ticket.id,
                                                 Survey.status == OPEN)).all()
    for survey in found:
        survey.status, survey.cancel_reason = CANCELLED, reason[:64]
    return len(found)


def find(session: Session, token: str) -> Survey:
    """Return the survey of a link (NotFound for an unknown token)."""
    survey = session.scalar(select(Survey).where(Survey.token == token)) \
        if 20 <= len(token) <= 43 else None
    if survey is None:
        raise NotFound("this survey link is not known; check that it was copied whole")
    return survey


def check_open(survey: Survey, now: datetime) -> None:
    """Raise Conflict if the link can no longer be answered, saying why."""
    if survey.status == ANSWERED:
        raise Conflict("this survey was already answered; thank you")
    if survey.status == CANCELLED:
        raise Conflict("this survey was withdrawn: the complaint was reopened or followed up "
                       "another way")
    if now >= survey.expires_at:
        raise Conflict(f"this survey closed on {survey.expires_at:%Y-%m-%d %H:%M} UTC")


def take_answer(session: Session, token: str, score: object, comment: object,
                now: datetime, recommend: object = None) -> tuple[Survey, Ticket]:
    """Check and record the customer's answer; the caller follows the ticket up
    (:func:`hub.tickets.workflow.answer_survey`)."""
    survey = find(session, token)
    check_open(survey, now)
    if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
        raise InvalidInput(f"score must be a whole number from 1 to 5, got {score!r}")
    if recommend is not None and (isinstance(recommend, bool) or not isinstance(recommend, int)
                                  or not 0 <= recommend <= 10):
        raise InvalidInput(f"recommend must be a whole number from 0 to 10, got {recommend!r}")
    if comment is not None and not isinstance(comment, str):
        raise InvalidInput("comment must be text")
    text = (comment or "").strip()
    if len(text) > MAX_COMMENT:
        raise InvalidInput(f"comment is {len(text)} characters; at most {MAX_COMMENT}")
    ticket = session.get(Ticket, survey.ticket_id, with_for_update=True)
    if ticket is None or ticket.status != states.RESOLVED:  # withdraw_open should prevent it
        raise Conflict("this survey was withdrawn: the complaint is no longer resolved")
    survey.status, survey.answered_at = ANSWERED, now
    survey.score, survey.comment, survey.recommend = score, text or None, recommend
    return survey, ticket

