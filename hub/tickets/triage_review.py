"""People check the classifier: the triage review queue, corrections, training rows.

A ticket whose triage confidence is below ``TicketConfig.triage_review_below`` (and every
ticket the classifier could not triage) is routed on the suggestion at once, since its
first-contact clock does not wait, and waits in the review queue (``triage_state`` review)
until someone confirms or corrects category and urgency. Any ticket may be corrected later.
Each check is a ``triage_corrections`` row keeping what the classifier said, audited on the
ticket; a changed category moves the ticket to its team and, when the assignee does not
cover it, to an agent who does. :func:`training_rows` turns corrections into rows for
``hub.triage.train`` (docs/triage.md, "Corrections").
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.errors import InvalidInput
from hub.models import Ticket
from hub.tickets import routing, states
from hub.tickets.intake import TEXT_SEPARATOR
from hub.tickets.lookup import live_ticket
from hub.tickets.models import Agent, TriageCorrection
from hub.tickets.policy import DEFAULT_CONFIG, TicketConfig
from hub.tickets.workflow import audit
from hub.triage.taxonomy import CATEGORIES

logger = logging.getLogger(__name__)

AUTO, REVIEW, CONFIRMED, CORRECTED = "auto", "review", "confirmed", "corrected"
TRIAGE_STATES = (AUTO, REVIEW, CONFIRMED, CORRECTED)


def check_triage(session: Session, ticket_id: int, *, actor: str, now: datetime,
                 category: str | None = None, urgency: str | None = None, reason: str = "",
                 config: TicketConfig = DEFAULT_CONFIG) -> TriageCorrection:
    """Confirm (nothing given, or the same values) or correct a ticket's category/urgency."""
    if not actor.strip():
        raise InvalidInput("actor is required: who checked the triage")
    if category is not None and category not in CATEGORIES:
        raise InvalidInput(f"category must be one of {', '.join(CATEGORIES)}, got {category!r}")
    if urgency is not None and urgency not in states.URGENCIES:
        raise InvalidInput(f"urgency must be one of {', '.join(states.URGENCIES)}, "
                           f"got {urgency!r}")
    ticket = live_ticket(session, ticket_id, instead="check the triage there")
    new_category, new_urgency = category or ticket.category, urgency or ticket.urgency
    changed = (new_category, new_urgency) != (ticket.category, ticket.urgency)
    correction = TriageCorrection(
        ticket_id=ticket.id, text=_first_text(ticket), language=ticket.language,
        model_version=ticket.triage_model_version, confidence=ticket.triage_confidence,
        suggested_category=ticket.category, category=new_category,
        suggested_urgency=ticket.urgency, urgency=new_urgency, actor=actor.strip(),
        reason=reason.strip(), at=now)
    session.add(correction)
    details: dict[str, object] = {"triage": CORRECTED if changed else CONFIRMED}
    if new_category != ticket.category:
        details["category"] = [ticket.category, new_category]
        ticket.category = new_category
        ticket.team = config.team_for(new_category)
    if new_urgency != ticket.urgency:
        details["urgency"] = [ticket.urgency, new_urgency]
        ticket.urgency = ticket.priority = new_urgency  # a person's word over escalations
        ticket.context = {**(ticket.context or {}),  # the intake's reasons no longer apply
                          "urgency": {"set_by": actor.strip(), "raised": []}}
    ticket.triage_state = CORRECTED if changed else CONFIRMED
    handed = _reroute(session, ticket, now, actor, config) if "category" in details else None
    if handed is not None:
        details["reassigned"] = handed
    audit(session, ticket, ticket.status, ticket.status, actor=actor,
          reason=reason or f"triage {details['triage']}", now=now, details=details)
    logger.info("ticket %s: triage %s by %s", ticket.id, details["triage"], actor)
    return correction


def _reroute(session: Session, ticket: Ticket, now: datetime, actor: str,
             config: TicketConfig) -> str | None:
    """Give the ticket to an agent who covers its new category, if its assignee does not."""
    if ticket.status not in states.OPEN_STATUSES:
        return None
    current = session.get(Agent, ticket.assignee_id) if ticket.assignee_id else None
    if current is not None and routing.qualifies(current, ticket):
        return None
    if current is not None:
        routing.unassign(session, ticket, now, "recategorised")
    chosen = routing.assign(session, ticket, now, reason="triage", actor=actor, config=config)
    return chosen.id if chosen is not None else "queue"


def _first_text(ticket: Ticket) -> str:
    """The complaint as first triaged (later messages are appended to ``ticket.text``)."""
    return ticket.text.split(TEXT_SEPARATOR.split("{when}")[0], 1)[0].strip()


def training_rows(corrections: Iterable[TriageCorrection], *,
                  exclude_texts: Iterable[str] = ()) -> Iterator[dict[str, str]]:
    """Training rows (``id, category, review``) from people's checks, newest check per ticket
    winning; texts in ``exclude_texts`` (the evaluation sets) are left out."""
    excluded = {" ".join(t.split()) for t in exclude_texts}
    latest: dict[int, TriageCorrection] = {}
    for correction in corrections:
        kept = latest.get(correction.ticket_id)
        if kept is None or (correction.at, correction.id) >= (kept.at, kept.id):
            latest[correction.ticket_id] = correction
    for ticket_id in sorted(latest):
        correction = latest[ticket_id]
        text = " ".join(correction.text.split())
        if text and text not in excluded:
            yield {"id": f"ticket{ticket_id}", "category": correction.category, "review": text}


def corrections_since(session: Session, since: datetime | None = None) -> list[TriageCorrection]:
    """Every check (since ``since``), oldest first."""
    query = select(TriageCorrection).order_by(TriageCorrection.at, TriageCorrection.id)
    if since is not None:
        query = query.where(TriageCorrection.at >= since)
    return list(session.scalars(query))
