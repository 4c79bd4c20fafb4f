"""Agent administration: register an agent, change a profile, and what a change does to tickets.

A profile is what an administrator sets: name, team, skills (categories, "*" for all),
languages, regions, capacity, planned shift windows, presence online, supervisor, active.
Whether the agent is on shift is not part of it: that changes when a shift starts or ends, by
hand or by the plan (``hub.tickets.routing``, ``hub.tickets.shifts``).

Saving a profile keeps the tickets in step with it, in the same transaction:

- **deactivated** (on leave or gone): the shift ends and *every* open ticket of the agent is
  handed over, those the customer was already contacted about too (nobody would answer them);
- **no longer covering** a ticket (team, skills, languages or regions changed): each open
  ticket the agent has not contacted the customer about and no longer qualifies for is handed
  over; a contacted one stays, as it does when a shift ends (the customer has a person);
- **on shift** after the change: the queue is offered, so a new skill or more capacity takes
  queued tickets now rather than at the next SLA round.

A handed-over ticket goes to the best qualified agent, or back to its team's queue.

Every change is an ``agent_changes`` row (:func:`record_change`): who, when, and each field's
old and new value; passwords (``hub.web.accounts``) and shifts started or ended by hand are
recorded there too, without the password.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.errors import Conflict, InvalidInput, NotFound
from hub.models import Ticket
from hub.tickets import routing, states
from hub.tickets.models import Agent, AgentChange
from hub.tickets.policy import DEFAULT_CONFIG, TicketConfig
from hub.tickets.shifts import ShiftWindow
from hub.triage.taxonomy import CATEGORIES, LANGUAGES

ALL_SKILLS = "*"
AGENT_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
AGENT_ID_RULE = "1-32 of A-Z a-z 0-9 _ . -"
# Actors the hub records its own steps under (API calls, routing, SLA escalations, customers'
# survey answers, the demo): an agent of that id would make the audit ambiguous.
SYSTEM_ACTORS = frozenset({"api", "router", "sla", "escalation", "customer", "survey", "demo",
                           "system"})
_Name = Annotated[str, Field(min_length=1, max_length=32)]
_Names = Annotated[list[_Name], Field(max_length=100)]


class AgentProfile(BaseModel):
    """What an administrator sets about an agent (everything but being on shift)."""

    # Strict: a number where a string belongs is an error, not silently "123".
    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True)

    name: Annotated[str, Field(min_length=1, max_length=120)]
    team: Annotated[str, Field(min_length=1, max_length=32)] = "support"
    skills: _Names = [ALL_SKILLS]
    languages: _Names = []  # empty: any
    regions: _Names = []  # empty: any
    capacity: Annotated[int, Field(ge=0, le=1000)] = 5
    # planned windows, local times of the team's calendar: hub.tickets.shifts
    shifts: Annotated[list[ShiftWindow], Field(max_length=50)] = []
    online: bool = False
    supervisor: bool = False
    active: bool = True

    @field_validator("skills")
    @classmethod
    def _known_skills(cls, skills: list[str]) -> list[str]:
        unknown = [s for s in skills if s != ALL_SKILLS and s not in CATEGORIES]
        if unknown:
            raise PydanticCustomError(
                "skill", "{unknown} is not a category; skills are categories ({known}) or * "
                "for all", {"unknown": ", ".join(map(repr, unknown)),
                            "known": ", ".join(CATEGORIES)})
        return list(dict.fromkeys(skills))

    @field_validator("languages")
    @classmethod
    def _known_languages(cls, languages: list[str]) -> list[str]:
        unknown = [lang for lang in languages if lang not in LANGUAGES]
        if unknown:
            raise PydanticCustomError(
                "language", "{unknown} is not a language tickets come in; languages are "
                "{known}", {"unknown": ", ".join(map(repr, unknown)),
                            "known": ", ".join(f"{c} ({n})" for c, n in LANGUAGES.items())})
        return list(dict.fromkeys(languages))

    @field_validator("regions")
    @classmethod
    def _distinct_regions(cls, regions: list[str]) -> list[str]:
        return list(dict.fromkeys(regions))


def system_actor_problem(agent_id: str) -> str | None:
    """Why a new agent may not take this id (one of ``SYSTEM_ACTORS``), or None."""
    if agent_id.casefold() in SYSTEM_ACTORS:
        return (f"agent id {agent_id!r} is a name the hub records its own steps under; "
                "choose another")
    return None


@dataclass
class AgentSaved:
    """What :func:`save_agent` did."""

    agent: Agent
    created: bool
    handed_over: list[tuple[Ticket, Agent | None]] = field(default_factory=list)  # to
    assigned: int = 0  # queued tickets the agent took


def save_agent(session: Session, agent_id: str, profile: AgentProfile, now: datetime, *,
               actor: str, create_only: bool = False,
               config: TicketConfig = DEFAULT_CONFIG) -> AgentSaved:
    """Register the agent or replace their profile, hand over what they no longer cover, and
    record the change as ``actor``'s.

    ``create_only``: an agent of that id already registered is a ``Conflict``. A team without
    a queue in ``config`` is ``InvalidInput`` (its agents would never be given a ticket).
    """
    if not AGENT_ID.match(agent_id):
        raise InvalidInput(f"agent id {agent_id!r} must be {AGENT_ID_RULE}")
    if profile.team not in config.teams:
        raise InvalidInput(f"team {profile.team!r} has no queue: tickets go to "
                           f"{', '.join(config.teams)} (the ticket configuration's teams)")
    agent = session.get(Agent, agent_id, with_for_update=True)
    if agent is None and (problem := system_actor_problem(agent_id)):
        raise InvalidInput(problem)
    if agent is not None and create_only:
        raise Conflict(f"agent {agent_id!r} already exists; PUT /agents/{agent_id} updates it")
    created = agent is None
    if agent is None:
        agent = Agent(id=agent_id, on_shift=False)
        session.add(agent)
    was_active = created or agent.active
    before = {} if created else {name: getattr(agent, name)
                                 for name in (*AgentProfile.model_fields, "on_shift")}
    for name, value in profile.model_dump().items():
        setattr(agent, name, value)
    session.flush()
    saved = AgentSaved(agent, created)
    if created:
        record_change(session, agent_id, actor, "created",
                      {name: [None, value] for name, value in profile.model_dump().items()
                       if value not in (None, "", [])}, now)
        return saved
    if was_active and not agent.active:
        agent.on_shift = False
        saved.handed_over = routing.hand_over(session, agent, _open_tickets(session, agent),
                                              now, "inactive", config=config)
    else:
        uncovered = [t for t in _open_tickets(session, agent)
                     if t.first_contact_at is None and routing.profile_shortfalls(agent, t)]
        saved.handed_over = routing.hand_over(session, agent, uncovered, now, "profile",
                                              config=config)
    changed = {name: [old, getattr(agent, name)] for name, old in before.items()
               if old != getattr(agent, name)}
    if changed:
        record_change(session, agent_id, actor, "updated", changed, now)
    if agent.on_shift and agent.active:
        saved.assigned = routing.route_queue(session, now, config=config)
    return saved


def start_shift(session: Session, agent_id: str, now: datetime, *, actor: str,
                config: TicketConfig = DEFAULT_CONFIG) -> int:
    """Start the agent's shift by hand (online; the queue is worked), recorded as ``actor``'s;
    return the queued tickets assigned."""
    assigned = routing.agent_on_shift(session, agent_id, now, config=config)
    record_change(session, agent_id, actor, "shift_started", {"assigned": assigned}, now)
    return assigned


def end_shift(session: Session, agent_id: str, now: datetime, *, actor: str,
              config: TicketConfig = DEFAULT_CONFIG) -> list[tuple[Ticket, Agent | None]]:
    """End the agent's shift by hand (un-contacted tickets handed over), recorded as
    ``actor``'s; return each ticket handed over and to whom (None: the queue)."""
    handed = routing.agent_off_shift(session, agent_id, now, config=config)
    record_change(session, agent_id, actor, "shift_ended", {"handed_over": [
        {"ticket_id": t.id, "to": a.id if a else None} for t, a in handed]}, now)
    return handed


def set_online(session: Session, agent_id: str, online: bool, now: datetime, *, actor: str,
               config: TicketConfig = DEFAULT_CONFIG) -> int:
    """An agent on shift steps away (no new tickets; theirs stay with them) or is back (the
    queue is offered at once); return the queued tickets assigned. Recorded as ``actor``'s."""
    agent = session.get(Agent, agent_id, with_for_update=True)
    if agent is None:
        raise NotFound(f"agent {agent_id!r} does not exist")
    if not agent.on_shift:
        raise Conflict(f"agent {agent_id!r} is off shift: start the shift instead")
    if agent.online == online:
        return 0
    record_change(session, agent_id, actor, "back" if online else "away",
                  {"online": [agent.online, online]}, now)
    agent.online = online
    session.flush()
    return routing.route_queue(session, now, config=config) if online else 0


def record_change(session: Session, agent_id: str, actor: str, action: str,
                  changes: dict[str, Any], now: datetime) -> AgentChange:
    """Record a change of the agent's record (``changes``: field -> [old, new])."""
    row = AgentChange(agent_id=agent_id, actor=actor, at=now, action=action, changes=changes)
    session.add(row)
    return row


def changes_of(session: Session, agent_id: str, limit: int = 50) -> list[AgentChange]:
    """The agent's latest recorded changes, newest first."""
    return list(session.scalars(
        select(AgentChange).where(AgentChange.agent_id == agent_id)
        .order_by(AgentChange.at.desc(), AgentChange.id.desc()).limit(limit)))


def _open_tickets(session: Session, agent: Agent) -> list[Ticket]:
    return list(session.scalars(
        select(Ticket).where(Ticket.assignee_id == agent.id,
                             Ticket.status.in_(states.OPEN_STATUSES)).order_by(Ticket.id)))
