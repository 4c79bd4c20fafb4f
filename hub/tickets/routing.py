"""Routing: filter the qualified agents, score them, claim the ticket atomically.

Filter: active, on shift and online, in the ticket's team, the category among their skills
("*" covers all), the ticket's language among theirs and its region among theirs (an empty
list means any), open tickets below capacity. Score: balanced, the lowest open/capacity
first, ties to the least recently assigned, then by id; the agent of the customer's other
open ticket is preferred when qualified. Claim: the ticket row is locked (PostgreSQL
``FOR UPDATE SKIP LOCKED``: a ticket another worker holds is skipped; SQLite serialises
writers) and the candidates' rows too, so two workers never over-fill one agent.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from hub.errors import NotFound
from hub.models import Ticket
from hub.tickets import sla, states
from hub.tickets.models import Agent, SlaClock, TicketAssignment, TicketEscalation
from hub.tickets.policy import DEFAULT_CONFIG, TicketConfig

logger = logging.getLogger(__name__)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Candidate:
    """A qualified agent and the numbers it was scored by."""

    agent: Agent
    open_tickets: int

    @property
    def load(self) -> float:
        """Open tickets over capacity."""
        return self.open_tickets / max(1, self.agent.capacity)


def open_counts(session: Session) -> dict[str, int]:
    """Return each agent's number of open tickets."""
    rows = session.execute(
        select(Ticket.assignee_id, func.count()).where(
            Ticket.assignee_id.is_not(None), Ticket.status.in_(states.OPEN_STATUSES))
        .group_by(Ticket.assignee_id))
    return {agent_id: count for agent_id, count in rows if agent_id is not None}


def open_count(session: Session, agent_id: str) -> int:
    """Return one agent's number of open tickets."""
    return session.scalar(select(func.count()).select_from(Ticket).where(
        Ticket.assignee_id == agent_id, Ticket.status.in_(states.OPEN_STATUSES))) or 0


def qualifies(agent: Agent, ticket: Ticket) -> bool:
    """Return whether the agent's team, skills, languages and regions cover the ticket."""
    return not shortfalls(agent, ticket)


def shortfalls(agent: Agent, ticket: Ticket, open_tickets: int | None = None) -> list[str]:
    """Return what keeps the agent from taking the ticket, each naming the check that fails.

    With ``open_tickets`` (the agent's open tickets besides this one) capacity is checked too.
    """
    found = []
    if not agent.active:
        found.append(f"inactive: agent {agent.id} is on leave or gone")
    if not agent.on_shift:
        found.append(f"off shift: agent {agent.id} is not on shift")
    if not agent.online:
        found.append(f"offline: agent {agent.id} is not online")
    found += profile_shortfalls(agent, ticket)
    if open_tickets is not None and open_tickets >= agent.capacity:
        found.append(f"capacity: agent {agent.id} has {open_tickets} open tickets, capacity "
                     f"{agent.capacity}")
    return found


def profile_shortfalls(agent: Agent, ticket: Ticket) -> list[str]:
    """Return where the agent's team, skills, languages and regions do not cover the ticket
    (whatever their presence and load)."""
    found = []
    if agent.team != (ticket.team or agent.team):
        found.append(f"team: agent {agent.id} is in team {agent.team}, the ticket in "
                     f"{ticket.team}")
    skills = set(agent.skills or [])
    if "*" not in skills and ticket.category not in skills:
        found.append(f"skill: agent {agent.id}'s skills ({', '.join(sorted(skills)) or 'none'})"
                     f" do not cover category {ticket.category}")
    if agent.languages and ticket.language and ticket.language not in agent.languages:
        found.append(f"language: agent {agent.id} speaks {', '.join(agent.languages)}, not "
                     f"{ticket.language}")
    if agent.regions and ticket.region and ticket.region not in agent.regions:
        found.append(f"region: agent {agent.id} covers {', '.join(agent.regions)}, not "
                     f"{ticket.region}")
    return found


def candidates(session: Session, ticket: Ticket, *, exclude: Collection[str] = (),
               lock: bool = False) -> list[Candidate]:
    """Return the qualified agents with room, best first (balanced score)."""
    query = (select(Agent).where(Agent.active.is_(True), Agent.on_shift.is_(True),
                                 Agent.online.is_(True)).order_by(Agent.id))
    if lock and _is_postgres(session):
        query = query.with_for_update()
    counts = open_counts(session)
    found = [Candidate(agent, counts.get(agent.id, 0)) for agent in session.scalars(query)
             if agent.id not in exclude and qualifies(agent, ticket)]
    found = [c for c in found if c.open_tickets < c.agent.capacity]
    return sorted(found, key=lambda c: (c.load, c.agent.last_assigned_at or _EPOCH,
                                        c.agent.id))


def assign(session: Session, ticket: Ticket, now: datetime, *, reason: str = "new",
           actor: str = "router", exclude: Collection[str] = (),
           config: TicketConfig = DEFAULT_CONFIG, record_queued: bool = True) -> Agent | None:
    """Give the ticket to the best qualified agent; None when it stays in the queue.

    With no qualified agent the ticket keeps no assignee and a ``no_agent`` escalation is
    recorded (once per stay in the queue).
    """
    session.flush()  # the refresh below must not drop the caller's pending changes
    if not _claim(session, ticket):
        return None  # another worker holds it
    session.refresh(ticket)
    if ticket.status not in states.OPEN_STATUSES:
        return None
    ranked = candidates(session, ticket, exclude=exclude, lock=True)
    if not ranked:  # a ticket with an assignee keeps them
        if record_queued and ticket.assignee_id is None:
            _record_queued(session, ticket, now)
        return None
    chosen, rule = ranked[0], "balanced"
    preferred = _other_ticket_agent(session, ticket)
    for candidate in ranked:
        if candidate.agent.id == preferred:
            chosen, rule = candidate, "same-customer"
            break
    if chosen.agent.id == ticket.assignee_id:
        return chosen.agent
    scores = {c.agent.id: {"open": c.open_tickets, "capacity": c.agent.capacity,
                           "load": round(c.load, 3)} for c in ranked}
    _give(session, ticket, chosen.agent, now, rule=rule, reason=reason, actor=actor,
          scores=scores, config=config)
    return chosen.agent


def assign_to(session: Session, ticket: Ticket, agent_id: str, now: datetime, *, actor: str,
              config: TicketConfig = DEFAULT_CONFIG, note: str | None = None,
              scores: Mapping[str, object] | None = None) -> Agent:
    """Give the ticket to a named agent by hand (no filter: a supervisor's decision).

    ``note`` (the person's reason) and ``scores`` (the checks made) go on the assignment row;
    hub.tickets.manual_assignment checks the agent first.
    """
    agent = session.get(Agent, agent_id)
    if agent is None:
        raise NotFound(f"agent {agent_id!r} does not exist")
    if ticket.assignee_id != agent.id:
        _give(session, ticket, agent, now, rule="manual", reason="manual", actor=actor,
              scores=scores or {}, config=config, note=note)
    return agent


def _give(session: Session, ticket: Ticket, agent: Agent, now: datetime, *, rule: str,
          reason: str, actor: str, scores: Mapping[str, object],
          config: TicketConfig, note: str | None = None) -> None:
    _end_current(session, ticket, now, reason)
    ticket.assignee_id = agent.id
    ticket.assigned_at = now
    agent.last_assigned_at = now
    session.add(TicketAssignment(ticket_id=ticket.id, agent_id=agent.id, rule=rule,
                                 reason=reason, scores=dict(scores), actor=actor, assigned_at=now,
                                 note=note))
    session.flush()
    sla.on_event(session, ticket, sla.ASSIGNED, now, config)
    logger.info("ticket %s assigned to %s (%s, %s)", ticket.id, agent.id, rule, reason)


def current_assignment(session: Session, ticket_id: int) -> TicketAssignment | None:
    """Return the ticket's assignment that has not ended."""
    return session.scalars(
        select(TicketAssignment).where(TicketAssignment.ticket_id == ticket_id,
                                       TicketAssignment.ended_at.is_(None))
        .order_by(TicketAssignment.id.desc())).first()


def _end_current(session: Session, ticket: Ticket, now: datetime, reason: str) -> None:
    current = current_assignment(session, ticket.id)
    if current is not None:
        current.ended_at = now
        current.end_reason = reason
    ticket.assignee_id = None
    ticket.assigned_at = None


def unassign(session: Session, ticket: Ticket, now: datetime, reason: str) -> None:
    """Hand the ticket back to its team's queue."""
    _end_current(session, ticket, now, reason)
    session.flush()


def agent_off_shift(session: Session, agent_id: str, now: datetime, *,
                    config: TicketConfig = DEFAULT_CONFIG, by_schedule: bool = False
                    ) -> list[tuple[Ticket, Agent | None]]:
    """Take an agent off shift; hand their un-contacted open tickets to others (or the queue).

    Tickets the agent already contacted the customer about stay with them. Unless
    ``by_schedule`` (hub.tickets.shifts), a person did it: the planned windows wait.
    """
    agent = _agent(session, agent_id)
    agent.on_shift = False
    if not by_schedule:
        agent.shift_set_by_hand_at = now
    tickets = session.scalars(
        select(Ticket).where(Ticket.assignee_id == agent.id,
                             Ticket.status.in_(states.OPEN_STATUSES),
                             Ticket.first_contact_at.is_(None)).order_by(Ticket.id)).all()
    return hand_over(session, agent, tickets, now, "off_shift", config=config)


def hand_over(session: Session, agent: Agent, tickets: Iterable[Ticket], now: datetime,
              why: str, *, config: TicketConfig = DEFAULT_CONFIG
              ) -> list[tuple[Ticket, Agent | None]]:
    """Take the agent's ``tickets`` from them (``why`` ends each assignment: off_shift,
    inactive, profile) and give each to the best other qualified agent, or the queue."""
    handed: list[tuple[Ticket, Agent | None]] = []
    for ticket in tickets:
        unassign(session, ticket, now, why)
        handed.append((ticket, assign(session, ticket, now, reason="handover",
                                      exclude={agent.id}, config=config)))
    session.flush()
    return handed


def agent_on_shift(session: Session, agent_id: str, now: datetime, *,
                   config: TicketConfig = DEFAULT_CONFIG, by_schedule: bool = False,
                   route: bool = True) -> int:
    """Put an agent on shift (and online) and work the queue; return tickets assigned.

    Unless ``by_schedule`` (hub.tickets.shifts), a person did it: the planned windows wait.
    ``route=False`` leaves the queue to the caller (0 assigned).
    """
    agent = _agent(session, agent_id)
    agent.on_shift = True
    agent.online = True
    if not by_schedule:
        agent.shift_set_by_hand_at = now
    session.flush()
    return route_queue(session, now, config=config) if route else 0


def route_queue(session: Session, now: datetime, *,
                config: TicketConfig = DEFAULT_CONFIG) -> int:
    """Offer every queued open ticket, by first-contact due time then urgency; return count."""
    due = (select(SlaClock.due_at).where(SlaClock.ticket_id == Ticket.id,
                                         SlaClock.target == states.FIRST_CONTACT)
           .correlate(Ticket).scalar_subquery())
    queued = session.scalars(
        select(Ticket).where(Ticket.assignee_id.is_(None),
                             Ticket.status.in_(states.OPEN_STATUSES))
        .order_by(due.is_(None), due, Ticket.urgency, Ticket.id)).all()
    assigned = 0
    for ticket in queued:
        if assign(session, ticket, now, reason="queue", config=config) is not None:
            assigned += 1
    return assigned


def _other_ticket_agent(session: Session, ticket: Ticket) -> str | None:
    if not ticket.customer_key:
        return None
    return session.scalar(
        select(Ticket.assignee_id).where(
            Ticket.customer_key == ticket.customer_key, Ticket.id != ticket.id,
            Ticket.assignee_id.is_not(None), Ticket.status.in_(states.OPEN_STATUSES))
        .order_by(Ticket.created_at.desc()).limit(1))


def _record_queued(session: Session, ticket: Ticket, now: datetime) -> None:
    since = session.scalar(select(func.max(TicketAssignment.ended_at))
                           .where(TicketAssignment.ticket_id == ticket.id)) or ticket.created_at
    already = session.scalar(
        select(TicketEscalation.id).where(TicketEscalation.ticket_id == ticket.id,
                                          TicketEscalation.kind == "no_agent",
                                          TicketEscalation.at >= since).limit(1))
    if already is None:
        session.add(TicketEscalation(
            ticket_id=ticket.id, kind="no_agent", action="queued", at=now,
            detail=f"no qualified agent on shift for team {ticket.team}, category "
                   f"{ticket.category}, language {ticket.language}, region {ticket.region}; "
                   "queued"))
        session.flush()
        logger.warning("ticket %s queued: no qualified agent", ticket.id)


def _claim(session: Session, ticket: Ticket) -> bool:
    if _is_postgres(session):
        got = session.scalar(select(Ticket.id).where(Ticket.id == ticket.id)
                             .with_for_update(skip_locked=True))
        return got is not None
    # SQLite: a no-op UPDATE takes the database's write lock; writers are serialised.
    session.execute(update(Ticket).where(Ticket.id == ticket.id).values(status=Ticket.status)
                    .execution_options(synchronize_session=False))
    return True


def _agent(session: Session, agent_id: str) -> Agent:
    agent = session.get(Agent, agent_id)
    if agent is None:
        raise NotFound(f"agent {agent_id!r} does not exist")
    return agent


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"
