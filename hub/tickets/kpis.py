"""Helpdesk KPIs over a period, each on an explicit cohort (docs/tickets.md, "KPIs").

Pure reads: everything is rebuilt from stored tickets, their status history, messages and
clocks, so a report for a past week gives the same figures whenever it is run. Durations are
calendar time in minutes, shown as median and P90; rates carry their numerator and
denominator, and are ``None`` when nothing is in the cohort.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from hub.errors import InvalidInput
from hub.models import Ticket
from hub.tickets import states
from hub.tickets.models import (
    Agent,
    SlaClock,
    Survey,
    TicketMessage,
    TicketTransition,
    TriageCorrection,
)
from hub.tickets.policy import DEFAULT_CONFIG, TicketConfig
from hub.tickets.shifts import parse_windows

MIN_AGENT_SAMPLE = 5  # tickets resolved in the period before an agent is ranked
NPS_MIN_ANSWERS = 30  # fewer answers than this: the NPS is shown, flagged as thin
MAX_PERIOD_DAYS = 366
DEFAULT_PERIOD_DAYS = 7
_IN_CHUNK = 500  # ticket ids per IN (...) list
_REOPENED_FROM = frozenset({states.RESOLVED, states.FOLLOWED_UP, states.CLOSED})


@dataclass(frozen=True)
class Rate:
    """``hits`` of ``total``; ``value`` is None for an empty cohort."""

    hits: int
    total: int

    @property
    def value(self) -> float | None:
        """The share, or None when the cohort is empty."""
        return self.hits / self.total if self.total else None


@dataclass(frozen=True)
class Durations:
    """A cohort's durations in minutes: how many, median and P90 (None when empty)."""

    count: int
    median_min: float | None
    p90_min: float | None

    @classmethod
    def of(cls, minutes: Sequence[float]) -> Durations:
        """Summarise ``minutes``; P90 is the nearest-rank percentile."""
        if not minutes:
            return cls(0, None, None)
        ordered = sorted(minutes)
        p90 = ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]
        return cls(len(ordered), round(statistics.median(ordered), 2), round(p90, 2))


@dataclass(frozen=True)
class Nps:
    """Net promoter score: % promoters (9-10) − % detractors (0-6) of the answers, -100..100."""

    answers: int
    promoters: int
    passives: int  # 7-8
    detractors: int
    score: float | None  # None when nobody answered
    thin: bool  # fewer than NPS_MIN_ANSWERS answers

    @classmethod
    def of(cls, answers: Sequence[int]) -> Nps:
        """The NPS of 0-10 answers."""
        promoters = sum(1 for a in answers if a >= 9)
        detractors = sum(1 for a in answers if a <= 6)
        score = round(100 * (promoters - detractors) / len(answers), 1) if answers else None
        return cls(len(answers), promoters, len(answers) - promoters - detractors, detractors,
                   score, len(answers) < NPS_MIN_ANSWERS)


@dataclass(frozen=True)
class AgentKpis:
    """One agent's parts of the ranking, for the tickets assigned to them now."""

    agent_id: str
    name: str
    resolved: int  # volume: tickets resolved in the period
    first_contact: Rate
    sla: Rate
    csat: Rate
    fcr: Rate
    ranked: bool  # False: fewer than MIN_AGENT_SAMPLE resolved, shown but not ranked
    score: float | None  # mean of the parts that have a value; None when not ranked


@dataclass(frozen=True)
class TicketKpis:
    """The helpdesk's KPIs for tickets in [since, until)."""

    since: datetime
    until: datetime
    timezone: str  # of the heat map
    created: int
    resolved: int
    first_response: Durations  # created in the period and contacted: first contact - created
    first_contact: Rate  # FIRST_CONTACT clocks started in the period, decided: MET / decided
    first_contact_pending: int  # started in the period, still running and not yet due
    time_to_resolution: Durations  # resolved in the period: resolved - created - evidence wait
    resolution_rate: Rate  # resolved in the period / created in the period
    sla: Rate  # clocks that ended or breached in the period: MET / all of them
    sla_by_target: dict[str, Rate]
    first_contact_resolution: Rate  # resolved: no customer message after first contact, no reopen
    reopen_rate: Rate  # reopens in the period / resolutions in the period
    csat: Rate  # resolved in the period and answered: satisfaction 4-5 / answered
    survey_response: Rate  # resolved in the period: answered / resolved
    nps: Nps  # resolved in the period, answered "would you recommend us": latest answer each
    by_category: dict[str, int]  # created in the period
    triage_review: Rate  # created in the period: sent to the triage review queue / created
    triage_agreed: Rate  # tickets first checked in the period: the classifier's category kept
    agents: list[AgentKpis]
    heatmap: list[list[int]] = field(default_factory=list)  # [weekday 0=Mon][hour]: created
    staffed: list[list[int]] = field(default_factory=list)  # agents planned on shift then


def default_period(now: datetime, since: datetime | None = None,
                   until: datetime | None = None) -> tuple[datetime, datetime]:
    """The period asked for, filled in: until the end of the current minute (so what happened
    just now is in), and DEFAULT_PERIOD_DAYS before ``until``."""
    until = until or (now + timedelta(minutes=1)).replace(second=0, microsecond=0)
    return since or until - timedelta(days=DEFAULT_PERIOD_DAYS), until


def ticket_kpis(session: Session, since: datetime, until: datetime, now: datetime,
                config: TicketConfig = DEFAULT_CONFIG, team: str = "support") -> TicketKpis:
    """Compute the KPIs of [since, until) as known at ``now`` (see the cohorts above)."""
    _check_period(since, until)
    horizon = min(until, now)
    counted = Ticket.merged_into.is_(None)  # a merged ticket lives on in the one it joined
    created = list(session.scalars(select(Ticket).where(
        counted, Ticket.created_at >= since, Ticket.created_at < until)))
    resolutions = list(session.scalars(select(TicketTransition).where(
        TicketTransition.to_status == states.RESOLVED,
        TicketTransition.at >= since, TicketTransition.at < until)))
    last_resolved: dict[int, datetime] = {}
    for row in resolutions:
        last_resolved[row.ticket_id] = max(row.at, last_resolved.get(row.ticket_id, row.at))
    resolved = {t.id: t for t in _tickets(session, last_resolved) if t.merged_into is None}
    history = _history(session, resolved)
    inbound = _inbound(session, resolved)

    ttr, fcr_hits, answered, happy = [], set(), set(), set()
    for ticket_id, ticket in resolved.items():
        at = last_resolved[ticket_id]
        waited = _time_in(history[ticket_id], states.AWAITING_EVIDENCE, at)
        ttr.append(((at - ticket.created_at).total_seconds() - waited) / 60)
        reopened = any(t.from_status in _REOPENED_FROM and t.to_status in states.OPEN_STATUSES
                       for t in history[ticket_id] if t.at <= at)
        contact = ticket.first_contact_at
        asked_again = any(m > contact for m in inbound[ticket_id]) if contact else False
        if not reopened and not asked_again:
            fcr_hits.add(ticket_id)
        if ticket.satisfaction is not None:
            answered.add(ticket_id)
            if ticket.satisfaction >= 4:
                happy.add(ticket_id)

    reopens = session.scalars(select(TicketTransition).where(
        TicketTransition.from_status.in_(_REOPENED_FROM),
        TicketTransition.to_status.in_(states.OPEN_STATUSES),
        TicketTransition.at >= since, TicketTransition.at < until)).all()
    clocks = _clocks(session, since, until)
    first_contact, pending, sla, by_target, clock_hits = _clock_rates(clocks, since, until,
                                                                      horizon)
    zone = config.team_timezone(team)
    return TicketKpis(
        since=since, until=until, timezone=zone, created=len(created), resolved=len(resolved),
        first_response=Durations.of([(t.first_contact_at - t.created_at).total_seconds() / 60
                                     for t in created if t.first_contact_at is not None]),
        first_contact=first_contact, first_contact_pending=pending,
        time_to_resolution=Durations.of(ttr),
        resolution_rate=Rate(len(resolved), len(created)),
        sla=sla, sla_by_target=by_target,
        first_contact_resolution=Rate(len(fcr_hits), len(resolved)),
        reopen_rate=Rate(len(reopens), len(resolutions)),
        csat=Rate(len(happy), len(answered)), survey_response=Rate(len(answered), len(resolved)),
        nps=Nps.of(_recommendations(session, resolved)),
        by_category=dict(sorted(Counter(t.category for t in created).items())),
        triage_review=Rate(sum(1 for t in created
                               if (t.triage_confidence or 0.0) < config.triage_review_below),
                           len(created)),
        triage_agreed=_triage_agreed(session, since, until),
        agents=_agents(session, resolved, fcr_hits, answered, happy, clock_hits),
        heatmap=_heatmap(created, zone), staffed=_staffed(session, zone))


def _recommendations(session: Session, resolved: dict[int, Ticket]) -> list[int]:
    """The latest 0-10 "would you recommend us" answer of each resolved ticket that has one."""
    latest: dict[int, int] = {}
    for chunk in _chunks(resolved):
        for survey in session.scalars(
                select(Survey).where(Survey.ticket_id.in_(chunk), Survey.recommend.is_not(None))
                .order_by(Survey.answered_at, Survey.id)):
            if survey.recommend is not None:
                latest[survey.ticket_id] = survey.recommend
    return [latest[t] for t in sorted(latest)]


def _triage_agreed(session: Session, since: datetime, until: datetime) -> Rate:
    """Of the tickets checked in the period (their latest check), how many kept the
    classifier's category: its accuracy on the hub's own complaints, as people judge it."""
    first: dict[int, TriageCorrection] = {}  # only a ticket's first check saw the classifier's
    for row in session.scalars(select(TriageCorrection).where(TriageCorrection.at < until)
                               .order_by(TriageCorrection.at, TriageCorrection.id)):
        first.setdefault(row.ticket_id, row)
    checked = [r for r in first.values() if r.at >= since]
    return Rate(sum(1 for r in checked if r.category == r.suggested_category), len(checked))


def _check_period(since: datetime, until: datetime) -> None:
    if since.tzinfo is None or until.tzinfo is None:
        raise InvalidInput("since and until need a time zone offset (ISO 8601, e.g. ...Z)")
    if until <= since:
        raise InvalidInput(f"until ({until.isoformat()}) must be after since "
                           f"({since.isoformat()})")
    if until - since > timedelta(days=MAX_PERIOD_DAYS):
        raise InvalidInput(f"a KPI period is at most {MAX_PERIOD_DAYS} days long")


def _chunks(ids: Iterable[int]) -> Iterator[list[int]]:
    """``ids`` sorted, in lists short enough for an ``IN (...)`` on any database."""
    wanted = sorted(ids)
    for start in range(0, len(wanted), _IN_CHUNK):
        yield wanted[start:start + _IN_CHUNK]


def _tickets(session: Session, ids: Iterable[int]) -> list[Ticket]:
    found: list[Ticket] = []
    for chunk in _chunks(ids):
        found += session.scalars(select(Ticket).where(Ticket.id.in_(chunk)))
    return found


def _history(session: Session, tickets: dict[int, Ticket]) -> dict[int, list[TicketTransition]]:
    """Each ticket's status changes, oldest first."""
    found: dict[int, list[TicketTransition]] = {ticket_id: [] for ticket_id in tickets}
    for chunk in _chunks(tickets):
        rows = session.scalars(select(TicketTransition)
                               .where(TicketTransition.ticket_id.in_(chunk))
                               .order_by(TicketTransition.at, TicketTransition.id))
        for row in rows:
            found[row.ticket_id].append(row)
    return found


def _inbound(session: Session, tickets: dict[int, Ticket]) -> dict[int, list[datetime]]:
    """When each ticket's customer wrote (every inbound message, merged ones included)."""
    found: dict[int, list[datetime]] = {ticket_id: [] for ticket_id in tickets}
    for chunk in _chunks(tickets):
        rows = session.execute(select(TicketMessage.ticket_id, TicketMessage.received_at)
                               .where(TicketMessage.ticket_id.in_(chunk),
                                      TicketMessage.direction == "in"))
        for ticket_id, at in rows:
            found[ticket_id].append(at)
    return found


def _time_in(history: Sequence[TicketTransition], status: str, until: datetime) -> float:
    """Seconds the ticket spent in ``status`` before ``until``, from its status history."""
    total, entered = 0.0, None
    for row in history:
        if row.at > until:
            break
        if row.to_status == status and entered is None:
            entered = row.at
        elif row.to_status != status and entered is not None:
            total += (row.at - entered).total_seconds()
            entered = None
    if entered is not None:
        total += (until - entered).total_seconds()
    return total


def _clocks(session: Session, since: datetime, until: datetime) -> list[SlaClock]:
    """Clocks that started, stopped or breached in the period, of tickets not merged away."""
    def within(column: InstrumentedAttribute[datetime | None]) -> ColumnElement[bool]:
        return and_(column >= since, column < until)

    return list(session.scalars(
        select(SlaClock).join(Ticket, Ticket.id == SlaClock.ticket_id)
        .where(Ticket.merged_into.is_(None),
               or_(within(SlaClock.started_at), within(SlaClock.stopped_at),
                   within(SlaClock.breached_at)))))


def _clock_rates(clocks: Sequence[SlaClock], since: datetime, until: datetime,
                 horizon: datetime) -> tuple[Rate, int, Rate, dict[str, Rate],
                                             dict[int, tuple[int, int]]]:
    """First-contact attainment, pending count, SLA compliance, per target, per ticket."""
    fc_hits = fc_total = pending = 0
    per_target: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    per_ticket: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for clock in clocks:
        if clock.state == states.CANCELLED:
            continue
        late = clock.state == states.MET_LATE or (
            clock.state in states.ACTIVE_CLOCK_STATES and clock.due_at is not None
            and clock.due_at <= horizon)
        if clock.target == states.FIRST_CONTACT and clock.started_at is not None \
                and since <= clock.started_at < until:
            if clock.state == states.MET or late:
                fc_total += 1
                fc_hits += clock.state == states.MET
            elif clock.state in states.ACTIVE_CLOCK_STATES:
                pending += 1
        ended = clock.stopped_at is not None and since <= clock.stopped_at < until
        breached = clock.breached_at is not None and since <= clock.breached_at < until
        if (ended and clock.state in (states.MET, states.MET_LATE)) or \
                (breached and clock.state in states.ACTIVE_CLOCK_STATES):
            met = int(clock.state == states.MET)
            for tally in (per_target[clock.target], per_ticket[clock.ticket_id]):
                tally[0] += met
                tally[1] += 1
    hits = sum(t[0] for t in per_target.values())
    total = sum(t[1] for t in per_target.values())
    return (Rate(fc_hits, fc_total), pending, Rate(hits, total),
            {target: Rate(*per_target[target]) for target in states.TARGETS
             if target in per_target},
            {ticket: (t[0], t[1]) for ticket, t in per_ticket.items()})


def _agents(session: Session, resolved: dict[int, Ticket], fcr: set[int], answered: set[int],
            happy: set[int], clock_hits: dict[int, tuple[int, int]]) -> list[AgentKpis]:
    """Per agent (the tickets' assignee now), with the parts of the ranking."""
    mine: dict[str, list[Ticket]] = defaultdict(list)
    for ticket in resolved.values():
        if ticket.assignee_id is not None:
            mine[ticket.assignee_id].append(ticket)
    names = {a.id: a.name for a in session.scalars(select(Agent))}
    in_time = _first_contact_met(session, resolved)
    found = []
    for agent_id, tickets in mine.items():
        ids = {t.id for t in tickets}
        contacted = [t for t in tickets if t.first_contact_at is not None]
        first = Rate(sum(1 for t in contacted if t.id in in_time), len(contacted))
        sla = Rate(sum(clock_hits.get(i, (0, 0))[0] for i in ids),
                   sum(clock_hits.get(i, (0, 0))[1] for i in ids))
        csat = Rate(len(ids & happy), len(ids & answered))
        first_time = Rate(len(ids & fcr), len(ids))
        parts = [r.value for r in (first, sla, csat, first_time) if r.value is not None]
        ranked = len(tickets) >= MIN_AGENT_SAMPLE and bool(parts)
        found.append(AgentKpis(agent_id, names.get(agent_id, agent_id), len(tickets), first, sla,
                               csat, first_time, ranked,
                               round(sum(parts) / len(parts), 4) if ranked else None))
    return sorted(found, key=lambda a: (not a.ranked, -(a.score or 0), -a.resolved, a.agent_id))


def _first_contact_met(session: Session, tickets: dict[int, Ticket]) -> set[int]:
    """Which of ``tickets`` had their first contact within the target."""
    found = set[int]()
    for chunk in _chunks(tickets):
        found.update(session.scalars(select(SlaClock.ticket_id).where(
            SlaClock.ticket_id.in_(chunk),
            SlaClock.target == states.FIRST_CONTACT, SlaClock.state == states.MET)))
    return found


def _heatmap(tickets: Iterable[Ticket], timezone: str) -> list[list[int]]:
    """Tickets created per local weekday (0 = Monday) and hour."""
    zone = ZoneInfo(timezone)
    grid = [[0] * 24 for _ in range(7)]
    for ticket in tickets:
        local = ticket.created_at.astimezone(zone)
        grid[local.weekday()][local.hour] += 1
    return grid


def _staffed(session: Session, timezone: str) -> list[list[int]]:
    """Active agents whose planned shifts cover the middle of each local weekday and hour."""
    grid = [[0] * 24 for _ in range(7)]
    for agent in session.scalars(select(Agent).where(Agent.active.is_(True))):
        try:
            windows = parse_windows(agent.shifts or [])
        except ValueError:  # malformed stored windows: shifts.apply_shifts logs those
            continue
        for day in range(7):
            for hour in range(24):
                if any(w.covers(day + 1, time(hour, 30)) for w in windows):
                    grid[day][hour] += 1
    return grid


