"""The ticket workflow: an explicit table of allowed transitions, each with its guard.

    new -> confirming -> handling <-> awaiting_evidence -> resolved -> followed_up -> closed
    resolved | followed_up | closed -> handling (reopen);  any open status -> merged

Every transition writes a ``ticket_transitions`` row (from, to, actor, reason, details, at)
and tells the SLA clocks. Events that leave the status as it is (a merged ticket received, a
hotline call's first contact) are audit rows with from = to. A transition the table does not
allow raises :class:`hub.errors.Conflict` naming both statuses; a guard that fails raises
:class:`hub.errors.InvalidInput` naming the missing or bad field.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.errors import Conflict, InvalidInput, NotFound
from hub.models import CustodyRecord, Item, Ticket
from hub.tickets import merging, notices, qc, routing, sla, states, surveys
from hub.tickets.models import Survey, TicketEvidence, TicketTransition
from hub.tickets.policy import DEFAULT_CONFIG, TicketConfig

logger = logging.getLogger(__name__)

HANDLING_KINDS = frozenset({"simple", "complex"})
SIMPLE_RESOLUTIONS = frozenset({"refund", "reship"})  # done at once
RESOLUTIONS = SIMPLE_RESOLUTIONS | frozenset({"replace", "credit", "explained", "rejected"})
LEGACY_OPEN = states.LEGACY_OPEN  # the status of tickets written before the state machine


@dataclass(frozen=True)
class Change:
    """What a transition request carries beyond its target status."""

    actor: str
    reason: str = ""
    handling: str | None = None
    resolution: str | None = None
    satisfaction: int | None = None
    comment: str | None = None
    merged_into: int | None = None


Guard = Callable[[Session, Ticket, Change], dict[str, Any]]  # raises, or returns details


def _accept(session: Session, ticket: Ticket, change: Change) -> dict[str, Any]:
    if ticket.assignee_id is None:
        raise InvalidInput(f"ticket {ticket.id} has no assignee; assign it before confirming")
    return {"assignee": ticket.assignee_id}


def _handle(session: Session, ticket: Ticket, change: Change) -> dict[str, Any]:
    if change.handling not in HANDLING_KINDS:
        raise InvalidInput(f"handling must be one of {', '.join(sorted(HANDLING_KINDS))} to "
                           f"handle ticket {ticket.id}, got {change.handling!r}")
    return {"handling": change.handling}


def _resolve(session: Session, ticket: Ticket, change: Change) -> dict[str, Any]:
    allowed = SIMPLE_RESOLUTIONS if ticket.handling == "simple" else RESOLUTIONS
    if change.resolution not in allowed:
        raise InvalidInput(f"resolution must be one of {', '.join(sorted(allowed))} to resolve "
                           f"ticket {ticket.id} ({ticket.handling} handling), got "
                           f"{change.resolution!r}")
    return {"resolution": change.resolution}


def _follow_up(session: Session, ticket: Ticket, change: Change) -> dict[str, Any]:
    score = change.satisfaction
    if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
        raise InvalidInput(f"satisfaction must be an integer 1-5 to follow up ticket "
                           f"{ticket.id}, got {score!r}")
    return {"satisfaction": score, "comment": change.comment}


def _reopen(session: Session, ticket: Ticket, change: Change) -> dict[str, Any]:
    if not change.reason.strip():
        raise InvalidInput(f"reason is required to reopen ticket {ticket.id}")
    return {}


def _merge(session: Session, ticket: Ticket, change: Change) -> dict[str, Any]:
    target = (session.get(Ticket, change.merged_into, with_for_update=True)
              if change.merged_into else None)
    if target is None or target.id == ticket.id:
        raise InvalidInput(f"merged_into must name another ticket to merge ticket {ticket.id} "
                           f"into, got {change.merged_into!r}")
    if target.status not in states.OPEN_STATUSES or target.customer_key != ticket.customer_key:
        raise InvalidInput(f"merged_into: ticket {target.id} is not an open ticket of the same "
                           "customer")
    return {"merged_into": target.id}


def _none(session: Session, ticket: Ticket, change: Change) -> dict[str, Any]:
    return {}


_REOPENABLE = (states.RESOLVED, states.FOLLOWED_UP, states.CLOSED)
TRANSITIONS: dict[tuple[str, str], Guard] = {
    (states.NEW, states.CONFIRMING): _accept,
    (states.CONFIRMING, states.HANDLING): _handle,
    (states.HANDLING, states.AWAITING_EVIDENCE): _none,
    (states.AWAITING_EVIDENCE, states.HANDLING): _none,
    (states.HANDLING, states.RESOLVED): _resolve,
    (states.AWAITING_EVIDENCE, states.RESOLVED): _resolve,
    (states.RESOLVED, states.FOLLOWED_UP): _follow_up,
    (states.FOLLOWED_UP, states.CLOSED): _none,
    **{(source, states.HANDLING): _reopen for source in _REOPENABLE},
    **{(source, states.MERGED): _merge for source in states.OPEN_STATUSES},
}


def allowed_from(status: str) -> list[str]:
    """Return the statuses a ticket in ``status`` may move to."""
    return sorted(to for source, to in TRANSITIONS if source == status)


def transition(session: Session, ticket_id: int, to: str, change: Change, now: datetime, *,
               config: TicketConfig = DEFAULT_CONFIG,
               details: Mapping[str, Any] | None = None) -> TicketTransition:
    """Move a ticket to ``to`` if the table allows it and the guard passes; audit it.

    ``details`` are added to the audit row's (what caused the transition). A merge audits the
    surviving ticket too (hub.tickets.merging moves the messages and evidence).
    """
    if not change.actor.strip():
        raise InvalidInput("actor is required: who makes the transition")
    ticket = session.get(Ticket, ticket_id, with_for_update=True)
    if ticket is None:
        raise NotFound(f"ticket {ticket_id} does not exist")
    source = states.NEW if ticket.status == LEGACY_OPEN else ticket.status
    guard = TRANSITIONS.get((source, to))
    if guard is None:
        allowed = ", ".join(allowed_from(source)) or "nothing"
        raise Conflict(f"ticket {ticket.id} cannot go from {source} to {to}; from {source} it "
                       f"may go to: {allowed}")
    found = {**guard(session, ticket, change), **(details or {})}
    moved = _apply(session, ticket, source, to, change, now, config)
    record = audit(session, ticket, source, to, actor=change.actor, reason=change.reason,
                   now=now, details={**found, **moved})
    if to == states.MERGED:
        survivor = session.get(Ticket, ticket.merged_into)
        assert survivor is not None
        reason = f"ticket {ticket.id} merged in" + (f": {change.reason.strip()}"
                                                    if change.reason.strip() else "")
        audit(session, survivor, survivor.status, survivor.status, actor=change.actor,
              reason=reason, now=now, details={"merged_from": ticket.id, **moved})
    logger.info("ticket %s: %s -> %s by %s", ticket.id, source, to, change.actor)
    return record


def audit(session: Session, ticket: Ticket, source: str | None, to: str, *, actor: str,
          reason: str, now: datetime, details: dict[str, Any] | None = None
          ) -> TicketTransition:
    """Write one audit row and set the ticket's status."""
    ticket.status = to
    record = TicketTransition(ticket_id=ticket.id, from_status=source, to_status=to,
                              actor=actor.strip(), reason=reason.strip(),
                              details=details or {}, at=now)
    session.add(record)
    session.flush()
    return record


def _apply(session: Session, ticket: Ticket, source: str, to: str, change: Change,
           now: datetime, config: TicketConfig) -> dict[str, Any]:
    event = None
    moved: dict[str, Any] = {}
    if to == states.CONFIRMING:
        ticket.confirmed_at = now
        ticket.context = {**(ticket.context or {}), **confirming_context(session, ticket)}
        event = sla.ACCEPTED
    elif to == states.HANDLING and source == states.CONFIRMING:
        ticket.handling = change.handling
        if change.handling == "complex":  # photos from the customer, a check by QC
            moved["evidence_requested"] = notices.request_evidence(session, ticket,
                                                                   now).channel
            moved["qc_check"] = qc.request_check(session, ticket, now, actor=change.actor).id
    elif to == states.AWAITING_EVIDENCE:
        event = sla.AWAITING_EVIDENCE
    elif to == states.HANDLING and source == states.AWAITING_EVIDENCE:
        event = sla.EVIDENCE_RECEIVED
    elif to == states.HANDLING:  # reopened
        ticket.closed_at = None
        event = sla.REOPENED
    elif to == states.RESOLVED:
        ticket.resolution = change.resolution
        ticket.resolved_at = now
        event = sla.RESOLVED
        moved["survey"] = surveys.send_survey(session, ticket, now).channel
    elif to == states.FOLLOWED_UP:
        ticket.satisfaction = change.satisfaction
        ticket.satisfaction_comment = change.comment
        ticket.followed_up_at = now
        event = sla.FOLLOWED_UP
    elif to == states.CLOSED:
        ticket.closed_at = now
        event = sla.CLOSED
    elif to == states.MERGED:
        ticket.merged_into = change.merged_into
        routing.unassign(session, ticket, now, "merged")
        survivor = session.get(Ticket, change.merged_into)
        assert survivor is not None  # the guard checked it
        moved = merging.move_into(session, ticket, survivor, now, config)
        event = sla.MERGED
    if source == states.RESOLVED and surveys.withdraw_open(session, ticket, f"moved to {to}"):
        moved["survey_withdrawn"] = True
    if event is not None:
        sla.on_event(session, ticket, event, now, config)
    return moved


def answer_survey(session: Session, token: str, score: object, comment: object,
                  now: datetime, config: TicketConfig = DEFAULT_CONFIG, *,
                  recommend: object = None) -> Survey:
    """Take a customer's survey answer (``recommend``: 0-10, optional) and follow the ticket
    up as the customer."""
    survey, ticket = surveys.take_answer(session, token, score, comment, now, recommend)
    transition(session, ticket.id, states.FOLLOWED_UP,
               Change(actor=surveys.CUSTOMER_ACTOR, reason="survey answered",
                      satisfaction=survey.score, comment=survey.comment),
               now, config=config, details={"survey": survey.id})
    return survey


def confirming_context(session: Session, ticket: Ticket) -> dict[str, Any]:
    """Return what confirming pulls in: the photos, and the items' delivery track."""
    photos = session.scalars(select(TicketEvidence).where(TicketEvidence.ticket_id == ticket.id)
                             .order_by(TicketEvidence.id)).all()
    track: list[dict[str, Any]] = []
    if ticket.order_id:
        item_ids = select(Item.id).where(Item.order_id == ticket.order_id)
        records = session.scalars(select(CustodyRecord)
                                  .where(CustodyRecord.item_id.in_(item_ids))
                                  .order_by(CustodyRecord.ts, CustodyRecord.message_id)).all()
        track = [{"item_id": r.item_id, "action": r.action, "actor": r.actor,
                  "location": r.location, "ts": r.ts.isoformat()} for r in records]
    return {"evidence": [{"sha256": p.sha256, "content_type": p.content_type} for p in photos],
            "delivery_track": track}
