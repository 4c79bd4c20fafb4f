"""SLA clocks: started, paused and stopped by ticket events; evaluated from stored rows.

Each clock stores when it started, its closed pauses and an open one, and ``due_at``: start +
target in business time of its calendar + the business time of its pauses. Nothing counts in
memory: :func:`evaluate_sla` reads the rows and ``now``, so a restarted hub finds the same
warnings and breaches, and flags on the rows (``warned_50``, ``warned_80``, ``escalated_at``)
make each happen once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import Ticket
from hub.tickets import states
from hub.tickets.models import Agent, SlaClock, TicketEscalation
from hub.tickets.policy import DEFAULT_CONFIG, TicketConfig

logger = logging.getLogger(__name__)

# ticket events -> what they do to which clock
ASSIGNED = "assigned"  # (re)starts ACK unless it ended
ACCEPTED = "accepted"  # stops ACK
CONTACTED = "contacted"  # stops FIRST_CONTACT (once; never restarts)
AWAITING_EVIDENCE = "awaiting_evidence"  # pauses RESOLUTION
EVIDENCE_RECEIVED = "evidence_received"  # resumes RESOLUTION
RESOLVED = "resolved"  # stops RESOLUTION, starts FOLLOW_UP
FOLLOWED_UP = "followed_up"  # stops FOLLOW_UP
CLOSED = "closed"  # cancels what still runs
REOPENED = "reopened"  # restarts RESOLUTION, FOLLOW_UP back to pending
MERGED = "merged"  # cancels what still runs


def start_clocks(session: Session, ticket: Ticket, now: datetime,
                 config: TicketConfig = DEFAULT_CONFIG) -> list[SlaClock]:
    """Choose the ticket's policy and create its clocks (FIRST_CONTACT and RESOLUTION run)."""
    policy = config.choose(channel=ticket.channel, category=ticket.category,
                           urgency=ticket.urgency, tier=ticket.tier, region=ticket.region)
    ticket.sla_policy = policy.id
    clocks = []
    for target, spec in policy.targets.items():
        clock = SlaClock(ticket_id=ticket.id, target=target, policy=policy.id,
                         calendar=spec.calendar, target_minutes=spec.minutes,
                         state=states.PENDING, pauses=[], warned_50=False, warned_80=False)
        if target in (states.FIRST_CONTACT, states.RESOLUTION):
            _start(clock, ticket.created_at, config)
        session.add(clock)
        clocks.append(clock)
    session.flush()
    return clocks


def clocks_of(session: Session, ticket_id: int) -> dict[str, SlaClock]:
    """Return a ticket's clocks by target."""
    rows = session.scalars(select(SlaClock).where(SlaClock.ticket_id == ticket_id)
                           .order_by(SlaClock.id))
    return {clock.target: clock for clock in rows}


def on_event(session: Session, ticket: Ticket, event: str, now: datetime,
             config: TicketConfig = DEFAULT_CONFIG) -> None:
    """Apply a ticket event to its clocks (see the event names of this module)."""
    clocks = clocks_of(session, ticket.id)
    ack, first = clocks.get(states.ACK), clocks.get(states.FIRST_CONTACT)
    resolution, follow_up = clocks.get(states.RESOLUTION), clocks.get(states.FOLLOW_UP)
    if event == ASSIGNED and ack is not None and ack.state not in states.ENDED_CLOCK_STATES:
        _start(ack, now, config)
    elif event == ACCEPTED and ack is not None:
        stop(ack, now)
    elif event == CONTACTED and first is not None:
        stop(first, now)
    elif event == AWAITING_EVIDENCE and resolution is not None:
        pause(resolution, now)
    elif event == EVIDENCE_RECEIVED and resolution is not None:
        resume(resolution, now, config)
    elif event == RESOLVED:
        if resolution is not None:
            stop(resolution, now)
        if follow_up is not None:
            _start(follow_up, now, config)
    elif event == FOLLOWED_UP and follow_up is not None:
        stop(follow_up, now)
    elif event in (CLOSED, MERGED):
        for clock in clocks.values():
            cancel(clock, now)
    elif event == REOPENED:
        if resolution is not None:
            _start(resolution, now, config)
        if follow_up is not None and follow_up.state not in (states.MET, states.MET_LATE):
            _reset(follow_up)
    session.flush()


def _reset(clock: SlaClock) -> None:
    clock.state = states.PENDING
    clock.started_at = clock.paused_at = clock.due_at = clock.stopped_at = None
    clock.pauses = []
    clock.warned_50 = clock.warned_80 = False
    clock.breached_at = clock.escalated_at = None


def _start(clock: SlaClock, now: datetime, config: TicketConfig) -> None:
    _reset(clock)
    clock.state = states.RUNNING
    clock.started_at = now
    clock.due_at = due_at(clock, config)


def pause(clock: SlaClock, now: datetime) -> None:
    """Pause a running clock (its open pause is ``paused_at``)."""
    if clock.state == states.RUNNING:
        clock.state = states.PAUSED
        clock.paused_at = now


def resume(clock: SlaClock, now: datetime, config: TicketConfig = DEFAULT_CONFIG) -> None:
    """Resume a paused clock: the pause is kept and ``due_at`` moves by its business time."""
    if clock.state == states.PAUSED and clock.paused_at is not None:
        clock.pauses = [*clock.pauses, [clock.paused_at.isoformat(), now.isoformat()]]
        clock.paused_at = None
        clock.state = states.RUNNING
        clock.due_at = due_at(clock, config)


def stop(clock: SlaClock, now: datetime) -> None:
    """Stop a clock: MET in time, MET_LATE once breached; a pending clock is cancelled."""
    if clock.state == states.PENDING:
        cancel(clock, now)
        return
    if clock.state not in states.ACTIVE_CLOCK_STATES:
        return
    if clock.state == states.PAUSED and clock.paused_at is not None:
        clock.pauses = [*clock.pauses, [clock.paused_at.isoformat(), now.isoformat()]]
        clock.paused_at = None
    late = clock.breached_at is not None or (clock.due_at is not None and now > clock.due_at)
    clock.state = states.MET_LATE if late else states.MET
    clock.stopped_at = now


def cancel(clock: SlaClock, now: datetime) -> None:
    """End a clock that did not run to its target (a breach stays recorded)."""
    if clock.state in states.ENDED_CLOCK_STATES:
        return
    clock.state = states.CANCELLED
    clock.paused_at = None
    clock.stopped_at = now


def paused_seconds(clock: SlaClock, config: TicketConfig, until: datetime | None = None) -> float:
    """Return the business seconds the clock was paused (the open pause up to ``until``)."""
    calendar = config.calendar(clock.calendar)
    total = sum(calendar.seconds_between(datetime.fromisoformat(a), datetime.fromisoformat(b))
                for a, b in clock.pauses)
    if clock.paused_at is not None and until is not None:
        total += calendar.seconds_between(clock.paused_at, until)
    return total


def due_at(clock: SlaClock, config: TicketConfig = DEFAULT_CONFIG) -> datetime | None:
    """Return start + target + closed pauses, in the clock's business time."""
    if clock.started_at is None:
        return None
    calendar = config.calendar(clock.calendar)
    return calendar.add(clock.started_at, clock.target_minutes * 60
                        + paused_seconds(clock, config))


def progress(clock: SlaClock, now: datetime, config: TicketConfig = DEFAULT_CONFIG) -> float:
    """Return the share of the target used by ``now`` (business time, pauses excluded)."""
    if clock.started_at is None or clock.target_minutes <= 0:
        return 0.0
    calendar = config.calendar(clock.calendar)
    used = calendar.seconds_between(clock.started_at, now) - paused_seconds(clock, config, now)
    return max(0.0, used) / (clock.target_minutes * 60)


@dataclass
class SlaReport:
    """What one evaluation did: warnings and breaches (ticket id, target)."""

    warnings: list[tuple[int, str, int]] = field(default_factory=list)  # (ticket, target, %)
    breaches: list[tuple[int, str]] = field(default_factory=list)


def evaluate_sla(session: Session, now: datetime, config: TicketConfig = DEFAULT_CONFIG, *,
                 reassign: bool = True) -> SlaReport:
    """Warn at the configured shares and escalate breached running clocks, each once.

    A breach raises the ticket's urgency one level; an ACK or FIRST_CONTACT breach hands the
    ticket to another qualified agent when there is one, else (and for the other targets) the
    team's supervisor is notified. Each step is a ``ticket_escalations`` row.
    """
    query = (select(SlaClock).where(SlaClock.state == states.RUNNING,
                                    SlaClock.escalated_at.is_(None))
             .order_by(SlaClock.due_at, SlaClock.id))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)  # two hubs never escalate twice
    report = SlaReport()
    # tickets escalated this round -> (action, notified): one step per ticket and round
    escalated: dict[int, tuple[str, str | None]] = {}
    for clock in session.scalars(query).all():
        ticket = session.get(Ticket, clock.ticket_id)
        if ticket is None:
            continue
        share = progress(clock, now, config)
        for level, flag in zip(config.warn_at, ("warned_50", "warned_80"), strict=False):
            if share >= level and not getattr(clock, flag):
                setattr(clock, flag, True)
                pct = round(level * 100)
                session.add(TicketEscalation(
                    ticket_id=ticket.id, clock_id=clock.id, kind="sla_warning", action="warned",
                    notify=ticket.assignee_id, at=now,
                    detail=f"{clock.target} at {pct}% of {clock.target_minutes:g} min"))
                report.warnings.append((ticket.id, clock.target, pct))
        if clock.due_at is not None and now >= clock.due_at:
            escalated[ticket.id] = _escalate(session, ticket, clock, now, config,
                                             reassign=reassign,
                                             step=escalated.get(ticket.id))
            report.breaches.append((ticket.id, clock.target))
    session.flush()
    return report


def _escalate(session: Session, ticket: Ticket, clock: SlaClock, now: datetime,
              config: TicketConfig, *, reassign: bool,
              step: tuple[str, str | None] | None) -> tuple[str, str | None]:
    from hub.tickets import routing  # routing starts clocks: imported late

    due = clock.due_at
    clock.breached_at = due
    clock.escalated_at = now
    before = ticket.urgency
    if step is None:  # two clocks of one ticket breached in one round: one step up
        ticket.urgency = ticket.priority = states.raise_urgency(ticket.urgency)
    previous = ticket.assignee_id
    action, notify = "supervisor", None
    if step is not None:
        action, notify = step  # this round's other breach already acted
    elif reassign and clock.target in (states.ACK, states.FIRST_CONTACT):
        exclude = {previous} if previous else set()
        agent = routing.assign(session, ticket, now, reason="escalation", actor="sla",
                               exclude=exclude, config=config, record_queued=False)
        if agent is not None and agent.id != previous:
            action, notify = "reassigned", agent.id
    if action == "supervisor" and step is None:
        notify = _supervisor(session, ticket)
    detail = (f"{clock.target} due {due.isoformat() if due else '?'} "
              f"breached; urgency {before} -> {ticket.urgency}")
    if step is not None:
        detail += f"; as for this round's other breach ({action} {notify or '-'})"
    elif action == "reassigned":
        detail += f"; reassigned from {previous or 'the queue'} to {notify}"
    else:
        detail += f"; supervisor {notify or '(none on the team)'} notified"
    session.add(TicketEscalation(ticket_id=ticket.id, clock_id=clock.id, kind="sla_breach",
                                 action=action, urgency_from=before, urgency_to=ticket.urgency,
                                 notify=notify, detail=detail, at=now))
    logger.warning("ticket %s: %s", ticket.id, detail)
    return action, notify


def _supervisor(session: Session, ticket: Ticket) -> str | None:
    query = select(Agent.id).where(Agent.supervisor.is_(True), Agent.active.is_(True))
    preferred = session.scalar(query.where(Agent.team == ticket.team).order_by(Agent.id))
    return preferred or session.scalar(query.order_by(Agent.id))
