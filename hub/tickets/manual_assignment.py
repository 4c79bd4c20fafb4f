"""Manual assignment: a person gives a ticket to a named agent.

The agent must qualify as routing would ask (on shift, online, team, skill, language, region,
capacity); otherwise the request is refused naming each check that fails, unless the person
overrides with a reason. An unknown agent is NotFound, an inactive one (on leave) is always
refused, and a closed or merged ticket cannot be assigned (Conflict). The assignment row
records rule "manual", the actor, the reason (``note``) and the checks (``scores``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from hub.errors import Conflict, InvalidInput, NotFound
from hub.models import Ticket
from hub.tickets import routing, states
from hub.tickets.lookup import live_ticket
from hub.tickets.models import Agent
from hub.tickets.policy import DEFAULT_CONFIG, TicketConfig


def assign_by_hand(session: Session, ticket_id: int, agent_id: str, now: datetime, *,
                   actor: str, reason: str = "", override: bool = False,
                   config: TicketConfig = DEFAULT_CONFIG) -> Ticket:
    """Give the ticket to the agent if they qualify (or ``override`` with a reason)."""
    if not actor.strip():
        raise InvalidInput("actor is required: who assigns the ticket")
    ticket = live_ticket(session, ticket_id, instead="assign that one")
    if ticket.status == states.CLOSED:
        raise Conflict(f"ticket {ticket.id} is closed; reopen it (transition to handling) "
                       "before assigning it")
    agent = session.get(Agent, agent_id, with_for_update=True)
    if agent is None:
        raise NotFound(f"agent {agent_id!r} does not exist")
    if not agent.active:
        raise InvalidInput(f"agent {agent.id} is not active (on leave or gone); choose an "
                           "active agent")
    if override and not reason.strip():
        raise InvalidInput("reason is required to override the checks: say why this agent "
                           "should take the ticket anyway")
    if ticket.assignee_id == agent.id:
        return ticket  # nothing changes
    load = (routing.open_count(session, agent.id)
            if ticket.status in states.OPEN_STATUSES else None)  # only open tickets load
    unmet = routing.shortfalls(agent, ticket, load)
    if unmet and not override:
        raise InvalidInput(f"agent {agent.id} does not qualify for ticket {ticket.id}: "
                           + "; ".join(unmet)
                           + '; send "override": true with a reason to assign anyway')
    routing.assign_to(session, ticket, agent.id, now, actor=actor.strip(), config=config,
                      note=reason.strip() or None,
                      scores={"override": override, "unmet": unmet})
    return ticket
