"""The JSON shapes of tickets, their messages, evidence, audit, clocks and agents."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import Ticket
from hub.tickets import routing, sla
from hub.tickets.call_back import call_back
from hub.tickets.kpis import Rate, TicketKpis
from hub.tickets.lookup import related_tickets
from hub.tickets.models import (
    Agent,
    QcCheck,
    SlaClock,
    TicketAssignment,
    TicketEscalation,
    TicketEvidence,
    TicketMessage,
    TicketTransition,
    TriageCorrection,
)
from hub.web.serialize import time

Json = dict[str, Any]


def ticket_summary(record: Ticket) -> Json:
    """Return a ticket's own fields as JSON."""
    return {"id": record.id, "status": record.status, "channel": record.channel,
            "order_id": record.order_id, "customer_id": record.customer_id,
            "customer_key": record.customer_key, "category": record.category,
            "urgency": record.urgency, "priority": record.priority,
            "language": record.language, "sentiment": record.sentiment,
            "sentiment_score": record.sentiment_score, "keywords": record.keywords,
            "triage_confidence": record.triage_confidence,
            "triage_model_version": record.triage_model_version,
            "triage_state": record.triage_state, "team": record.team,
            "assignee_id": record.assignee_id, "tier": record.tier, "region": record.region,
            "sla_policy": record.sla_policy, "handling": record.handling,
            "resolution": record.resolution, "satisfaction": record.satisfaction,
            "satisfaction_comment": record.satisfaction_comment,
            "merged_into": record.merged_into, "text": record.text,
            "created_at": time(record.created_at), "assigned_at": time(record.assigned_at),
            "confirmed_at": time(record.confirmed_at),
            "first_contact_at": time(record.first_contact_at),
            "resolved_at": time(record.resolved_at),
            "followed_up_at": time(record.followed_up_at), "closed_at": time(record.closed_at)}


def ticket_detail(session: Session, record: Ticket) -> Json:
    """Return a ticket with its messages, evidence, transitions, clocks and assignment."""
    def rows(model: Any) -> list[Any]:
        return list(session.scalars(select(model).where(model.ticket_id == record.id)
                                    .order_by(model.id)))

    current = routing.current_assignment(session, record.id)
    phone = call_back(session, record)
    return {**ticket_summary(record), "context": record.context,
            "call_back": None if phone is None else {
                "number": phone.number, "source": phone.source, "verified": phone.verified},
            "messages": [message(m) for m in rows(TicketMessage)],
            "evidence": [evidence(e) for e in rows(TicketEvidence)],
            "transitions": [transition(t) for t in rows(TicketTransition)],
            "clocks": [clock(c) for c in sla.clocks_of(session, record.id).values()],
            "assignment": None if current is None else assignment(current),
            "assignments": [assignment(a) for a in rows(TicketAssignment)],
            "escalations": [escalation(e) for e in rows(TicketEscalation)],
            "related": [ticket_summary(t) for t in related_tickets(session, record)]}


def message(record: TicketMessage) -> Json:
    """Return a ticket message as JSON."""
    return {"id": record.id, "channel": record.channel, "external_id": record.external_id,
            "direction": record.direction, "author": record.author, "text": record.text,
            "meta": record.meta, "received_at": time(record.received_at)}


def evidence(record: TicketEvidence) -> Json:
    """Return an evidence file's record as JSON."""
    return {"id": record.id, "ticket_id": record.ticket_id, "sha256": record.sha256,
            "size": record.size, "content_type": record.content_type,
            "filename": record.filename, "storage_path": record.storage_path,
            "uploaded_by": record.uploaded_by, "uploaded_at": time(record.uploaded_at),
            "merged_from": record.merged_from}


def transition(record: TicketTransition) -> Json:
    """Return an audit row as JSON."""
    return {"id": record.id, "from": record.from_status, "to": record.to_status,
            "actor": record.actor, "reason": record.reason, "details": record.details,
            "at": time(record.at)}


def clock(record: SlaClock) -> Json:
    """Return an SLA clock as JSON."""
    return {"target": record.target, "policy": record.policy, "calendar": record.calendar,
            "target_minutes": record.target_minutes, "state": record.state,
            "breached": record.breached_at is not None, "started_at": time(record.started_at),
            "due_at": time(record.due_at), "paused_at": time(record.paused_at),
            "pauses": record.pauses, "stopped_at": time(record.stopped_at),
            "warned_50": record.warned_50, "warned_80": record.warned_80,
            "breached_at": time(record.breached_at), "escalated_at": time(record.escalated_at)}


def assignment(record: TicketAssignment) -> Json:
    """Return an assignment as JSON."""
    return {"agent_id": record.agent_id, "rule": record.rule, "reason": record.reason,
            "scores": record.scores, "actor": record.actor, "note": record.note,
            "assigned_at": time(record.assigned_at), "ended_at": time(record.ended_at),
            "end_reason": record.end_reason}


def escalation(record: TicketEscalation) -> Json:
    """Return an escalation or SLA warning as JSON."""
    return {"kind": record.kind, "action": record.action, "notify": record.notify,
            "urgency_from": record.urgency_from, "urgency_to": record.urgency_to,
            "detail": record.detail, "at": time(record.at)}


def agent(record: Agent) -> Json:
    """Return an agent as JSON."""
    return {"id": record.id, "name": record.name, "team": record.team, "skills": record.skills,
            "languages": record.languages, "regions": record.regions,
            "capacity": record.capacity, "shifts": record.shifts, "on_shift": record.on_shift,
            "shift_set_by_hand_at": time(record.shift_set_by_hand_at), "online": record.online,
            "supervisor": record.supervisor, "active": record.active,
            "last_assigned_at": time(record.last_assigned_at)}


def rate(value: Rate) -> Json:
    """Return a rate with its parts (``value`` is null for an empty cohort)."""
    return {"hits": value.hits, "total": value.total,
            "value": None if value.value is None else round(value.value, 4)}


def kpis(report: TicketKpis) -> Json:
    """Return a KPI report: rates with their parts, durations in minutes (median, P90)."""
    found: Json = {}
    for name, value in vars(report).items():
        if isinstance(value, Rate):
            found[name] = rate(value)
        elif name in ("since", "until"):
            found[name] = time(value)
        elif name == "sla_by_target":
            found[name] = {target: rate(r) for target, r in value.items()}
        elif name == "agents":
            found[name] = [{**asdict(a), **{part: rate(getattr(a, part)) for part in
                                            ("first_contact", "sla", "csat", "fcr")}}
                           for a in value]
        elif hasattr(value, "__dataclass_fields__"):
            found[name] = asdict(value)
        else:
            found[name] = value
    return found


def triage_correction(record: TriageCorrection) -> Json:
    """Return a person's triage check as JSON."""
    return {"id": record.id, "ticket_id": record.ticket_id, "actor": record.actor,
            "suggested": {"category": record.suggested_category,
                          "urgency": record.suggested_urgency,
                          "confidence": record.confidence, "model_version": record.model_version},
            "category": record.category, "urgency": record.urgency, "reason": record.reason,
            "at": time(record.at)}


def qc_check(record: QcCheck) -> Json:
    """Return a QC check as JSON."""
    return {"id": record.id, "ticket_id": record.ticket_id, "category": record.category,
            "order_id": record.order_id, "items": record.items,
            "requested_at": time(record.requested_at), "requested_by": record.requested_by,
            "status": record.status, "outcome": record.outcome, "finding": record.finding,
            "done_at": time(record.done_at) if record.done_at else None,
            "done_by": record.done_by}
