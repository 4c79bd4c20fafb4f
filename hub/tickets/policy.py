"""SLA policies, business calendars and intake/routing settings: configuration in code.

A policy is chosen once per ticket, at creation: the first policy (by ``rank``) whose
conditions all match the ticket (``None`` matches anything), else the config's default. Each
target of the policy becomes one clock (hub.tickets.sla). Policies live here rather than in a
table: they change with a deploy and are reviewed like code; the ticket stores the policy id
and each clock its computed ``due_at``, so a changed policy never moves a running clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time

from hub.tickets import states
from hub.tickets.calendar import ALWAYS, BusinessCalendar

TRIAGE_REVIEW_BELOW = 0.6  # the default confidence under which people check a triage


@dataclass(frozen=True)
class Target:
    """One clock of a policy: minutes of business time on the named calendar."""

    minutes: float
    calendar: str = "24x7"


@dataclass(frozen=True)
class SlaPolicy:
    """Targets for the tickets matching every given condition (``None`` matches anything)."""

    id: str
    targets: Mapping[str, Target]
    rank: int = 100
    channels: frozenset[str] | None = None
    categories: frozenset[str] | None = None
    urgencies: frozenset[str] | None = None
    tiers: frozenset[str] | None = None
    regions: frozenset[str] | None = None

    def matches(self, *, channel: str, category: str, urgency: str, tier: str | None,
                region: str | None) -> bool:
        """Return whether the ticket's attributes satisfy every condition."""
        checks = ((self.channels, channel), (self.categories, category),
                  (self.urgencies, urgency), (self.tiers, tier), (self.regions, region))
        return all(allowed is None or value in allowed for allowed, value in checks)


@dataclass(frozen=True)
class TicketConfig:
    """Everything tickets are configured by: policies, calendars, windows and warnings."""

    policies: tuple[SlaPolicy, ...]
    default_policy: SlaPolicy
    calendars: Mapping[str, BusinessCalendar] = field(default_factory=dict)
    merge_window_h: float = 72.0  # a message joins an open ticket of the same customer+order
    warn_at: tuple[float, ...] = (0.5, 0.8)  # shares of a target that raise a warning
    team_by_category: Mapping[str, str] = field(default_factory=dict)
    default_team: str = "support"
    public_channels: frozenset[str] = frozenset({"social"})  # raise urgency one level
    # the customer's situation raises urgency one level, to P2 at most (hub.tickets.urgency)
    urgent_tiers: frozenset[str] = frozenset({"platinum", "vip"})
    valuable_order_cents: int = 50_000  # an order worth this much (500.00) or more
    repeat_contact_h: float = 24.0  # the customer complained or wrote this recently
    # a classifier confidence below this puts the ticket in the triage review queue
    triage_review_below: float = TRIAGE_REVIEW_BELOW
    # agents' planned shifts are local times of their team's calendar (hub.tickets.shifts)
    team_calendars: Mapping[str, str] = field(default_factory=dict)
    default_team_calendar: str = "office"

    def calendar(self, name: str) -> BusinessCalendar:
        """Return the named calendar ("24x7" is always known)."""
        if name == ALWAYS.name:
            return self.calendars.get(name, ALWAYS)
        return self.calendars[name]

    def team_timezone(self, team: str) -> str:
        """Return the time zone of a team's calendar (UTC when the config has no such one)."""
        name = self.team_calendars.get(team, self.default_team_calendar)
        return self.calendars.get(name, ALWAYS).timezone

    def choose(self, *, channel: str, category: str, urgency: str, tier: str | None,
               region: str | None) -> SlaPolicy:
        """Return the policy of a new ticket: the first match by rank, else the default."""
        for policy in sorted(self.policies, key=lambda p: (p.rank, p.id)):
            if policy.matches(channel=channel, category=category, urgency=urgency, tier=tier,
                              region=region):
                return policy
        return self.default_policy

    def policy(self, policy_id: str | None) -> SlaPolicy:
        """Return a policy by id (an unknown or missing id falls back to the default)."""
        for policy in (*self.policies, self.default_policy):
            if policy.id == policy_id:
                return policy
        return self.default_policy

    @property
    def teams(self) -> tuple[str, ...]:
        """The teams with a queue: the default team and every team a category goes to."""
        return tuple(dict.fromkeys((self.default_team, *self.team_by_category.values())))

    def team_for(self, category: str) -> str:
        """Return the team whose queue takes a ticket of ``category``."""
        return self.team_by_category.get(category, self.default_team)


_WORKDAY = ((time(9), time(12)), (time(13), time(18)))  # with a lunch break
OFFICE = BusinessCalendar("office", "Asia/Shanghai",
                          {d: _WORKDAY for d in range(5)} | {5: ((time(10), time(16)),)})


def _targets(first_contact_min: float, resolution_h: float, *,
             calendar: str = "24x7") -> dict[str, Target]:
    return {states.ACK: Target(10, "24x7"),
            states.FIRST_CONTACT: Target(first_contact_min, calendar),
            states.RESOLUTION: Target(resolution_h * 60, calendar),
            states.FOLLOW_UP: Target(24 * 60, "24x7")}


DEFAULT_CONFIG = TicketConfig(
    policies=(
        SlaPolicy("food-safety", _targets(30, 8), rank=10, urgencies=frozenset({"P1"})),
        SlaPolicy("vip", _targets(60, 24), rank=20,
                  tiers=frozenset({"gold", "platinum", "vip"})),
    ),
    default_policy=SlaPolicy("standard", _targets(60, 48, calendar="office")),
    calendars={"office": OFFICE},
)
