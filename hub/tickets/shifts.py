"""Planned shifts: agents go on and off shift when their windows start and end.

An agent's ``shifts`` is a list of windows ``{"days": [1..7], "start": "HH:MM", "end":
"HH:MM"}``: ISO weekdays (1 = Monday) on which the window starts, and local times in the time
zone of the agent's team calendar (``TicketConfig.team_timezone``). An end not after the start
runs past midnight into the next day. Overlapping or touching windows count as one.

:func:`apply_shifts` is computed from ``now`` and stored values only, so running it twice, or
after a restart, changes nothing more. It never fights a person: once someone starts or ends an
agent's shift by hand (``agents.shift_set_by_hand_at``), the plan leaves the agent alone until
its next change after that moment (an agent sent home during a window stays off until the next
window starts; one kept on after hours stays on until the next window ends).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.errors import InvalidInput
from hub.tickets import routing
from hub.tickets.models import Agent
from hub.tickets.policy import DEFAULT_CONFIG, TicketConfig

logger = logging.getLogger(__name__)

# The plan repeats weekly: its last change before ``now`` is at most a week and a day back.
LOOK_BACK_DAYS = 8


class ShiftWindow(BaseModel):
    """One planned window: the weekdays it starts on, and its local start and end times."""

    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True,
                              frozen=True)

    days: Annotated[list[Annotated[int, Field(ge=1, le=7)]], Field(min_length=1, max_length=7)]
    start: str
    end: str

    @field_validator("start", "end")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        if len(value) != 5 or value[2] != ":" or not (value[:2] + value[3:]).isdecimal() \
                or int(value[:2]) > 23 or int(value[3:]) > 59:
            raise PydanticCustomError("shift_time", "must be a local time HH:MM, 00:00 to 23:59")
        return value

    @model_validator(mode="after")
    def _a_real_window(self) -> ShiftWindow:
        if len(set(self.days)) != len(self.days):
            raise PydanticCustomError("shift_days", "days name a weekday twice")
        if self.start == self.end:
            raise PydanticCustomError(
                "shift_length", "start and end are both {at}: a window needs a length (an end "
                "before the start runs past midnight)", {"at": self.start})
        return self

    @property
    def start_time(self) -> time:
        """The local start time."""
        return time.fromisoformat(self.start)

    @property
    def end_time(self) -> time:
        """The local end time (on the next day when not after the start)."""
        return time.fromisoformat(self.end)

    def covers(self, weekday: int, at: time) -> bool:
        """Whether the window covers local time ``at`` on ISO ``weekday`` (1 = Monday)."""
        start, end = self.start_time, self.end_time
        if end > start:
            return weekday in self.days and start <= at < end
        yesterday = 7 if weekday == 1 else weekday - 1  # a window running past midnight
        return (weekday in self.days and at >= start) or (yesterday in self.days and at < end)


DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # ISO weekdays 1..7
_WRITTEN = re.compile(r"^(?P<days>.+?)\s+(?P<start>\d{1,2}:\d{2})\s*[-–~]\s*"
                      r"(?P<end>\d{1,2}:\d{2})$")
WRITTEN_FORM = ("days and times, e.g. Mon-Fri 09:00-18:00, Sat,Sun 10:00-16:00 or "
                "Daily 22:00-06:00 (an end before the start runs past midnight)")


def window_from_text(line: str) -> ShiftWindow:
    """A window as a person writes it (``WRITTEN_FORM``); ``InvalidInput`` names what is
    wrong. Day names are English, of three letters or whole, in any case."""
    found = _WRITTEN.match(line.strip())
    if found is None:
        raise InvalidInput(f"{line.strip()!r} is not {WRITTEN_FORM}")
    days: list[int] = []
    for part in re.sub(r"\s+", "", found["days"]).lower().split(","):
        first, _, last = part.partition("-")
        if part == "daily":
            days += range(1, 8)
        elif last:
            start, end = _weekday(first), _weekday(last)
            days += range(start, end + 1) if start <= end else [*range(start, 8),
                                                                 *range(1, end + 1)]
        else:
            days.append(_weekday(first))
    try:
        return ShiftWindow(days=sorted(set(days)), start=found["start"].zfill(5),
                           end=found["end"].zfill(5))
    except ValidationError as err:
        raise InvalidInput(f"{line.strip()!r}: {err.errors()[0]['msg']}") from None


def window_text(window: ShiftWindow) -> str:
    """The window as :func:`window_from_text` reads it back ("Mon-Fri 09:00-18:00")."""
    runs: list[list[int]] = []
    for day in sorted(window.days):
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    if len(window.days) == 7:
        days = "Daily"
    else:
        days = ",".join(DAY_NAMES[r[0] - 1] if len(r) == 1 else
                        f"{DAY_NAMES[r[0] - 1]}-{DAY_NAMES[r[-1] - 1]}" if len(r) > 2 else
                        f"{DAY_NAMES[r[0] - 1]},{DAY_NAMES[r[1] - 1]}" for r in runs)
    return f"{days} {window.start}-{window.end}"


def _weekday(name: str) -> int:
    for number, day in enumerate(DAY_NAMES, start=1):
        if name in (day.lower(), _FULL_NAMES[number - 1]):
            return number
    shown = name or "(nothing)"
    raise InvalidInput(f"{shown!r} is not a day; days are {' '.join(DAY_NAMES)} (or whole "
                       "names), a range such as Mon-Fri, or Daily")


_FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def parse_windows(raw: Iterable[Any]) -> list[ShiftWindow]:
    """Return stored windows as :class:`ShiftWindow` (raises ``ValidationError``)."""
    return [ShiftWindow.model_validate(item) for item in raw]


@dataclass(frozen=True)
class PlannedState:
    """Whether the plan has the agent on shift at a moment, and since when (its last change)."""

    on_shift: bool
    since: datetime | None  # None: no window in the last LOOK_BACK_DAYS days


def planned_state(windows: Sequence[ShiftWindow], timezone: str,
                  now: datetime) -> PlannedState:
    """Return the plan's state at ``now``: inside a window or not, and its last change."""
    spans = _merged(sorted(_instances(windows, ZoneInfo(timezone), now)))
    on, since = False, None
    for start, end in spans:
        if start <= now < end:
            on, since = True, start
        elif end <= now:
            since = end if since is None or end > since else since
    return PlannedState(on, since)


def _instances(windows: Sequence[ShiftWindow], zone: ZoneInfo,
               now: datetime) -> Iterable[tuple[datetime, datetime]]:
    today = now.astimezone(zone).date()
    for offset in range(-LOOK_BACK_DAYS, 1):
        day = today + timedelta(days=offset)
        for window in windows:
            if day.isoweekday() not in window.days:
                continue
            start, end = window.start_time, window.end_time
            end_day = day if end > start else day + timedelta(days=1)
            yield (datetime.combine(day, start, zone).astimezone(UTC),
                   datetime.combine(end_day, end, zone).astimezone(UTC))


def _merged(spans: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


Change = Literal["start", "end"]


def due_change(agent: Agent, now: datetime,
               config: TicketConfig = DEFAULT_CONFIG) -> Change | None:
    """Return what the plan does to the agent at ``now``: start or end the shift, or nothing.

    Nothing for an agent without windows, with malformed stored windows (logged), whom a
    person set on or off shift after the plan's last change, or already in the planned state.
    An agent on leave (inactive) is never started.
    """
    if not agent.shifts:
        return None
    try:
        windows = parse_windows(agent.shifts)
    except ValidationError as err:
        logger.warning("agent %s: stored shifts are not windows, ignored: %s", agent.id, err)
        return None
    plan = planned_state(windows, config.team_timezone(agent.team), now)
    by_hand = agent.shift_set_by_hand_at
    if by_hand is not None and (plan.since is None or by_hand >= plan.since):
        return None  # a person decided after the plan's last change
    if plan.on_shift and not agent.on_shift and agent.active:
        return "start"
    if not plan.on_shift and agent.on_shift:
        return "end"
    return None


@dataclass
class ShiftRound:
    """What one :func:`apply_shifts` did."""

    started: list[str] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)
    handed_over: list[tuple[int, str | None]] = field(default_factory=list)  # ticket, to
    assigned: int = 0  # queued tickets given to the agents who started


def apply_shifts(session: Session, now: datetime, *,
                 config: TicketConfig = DEFAULT_CONFIG) -> ShiftRound:
    """Start the shifts whose window began and end those whose window ended; idempotent.

    Starting agents come first, so the tickets of agents going off are handed over to them
    too; then the queue is offered once, balanced across everyone who started.
    """
    report = ShiftRound()
    due = [(agent.id, change) for agent in session.scalars(select(Agent).order_by(Agent.id))
           if (change := due_change(agent, now, config)) is not None]
    for wanted in ("start", "end"):
        for agent_id, change in due:
            if change != wanted:
                continue
            agent = session.get(Agent, agent_id, with_for_update=True, populate_existing=True)
            if agent is None or due_change(agent, now, config) != change:
                continue  # another hub did it meanwhile
            if change == "start":
                routing.agent_on_shift(session, agent_id, now, config=config, by_schedule=True,
                                       route=False)
                report.started.append(agent_id)
            else:
                handed = routing.agent_off_shift(session, agent_id, now, config=config,
                                                 by_schedule=True)
                report.ended.append(agent_id)
                report.handed_over += [(t.id, a.id if a else None) for t, a in handed]
    if report.started:
        report.assigned = routing.route_queue(session, now, config=config)
    if report.started or report.ended:
        logger.info("shifts: started %s, ended %s, %d tickets handed over, %d assigned",
                    report.started, report.ended, len(report.handed_over), report.assigned)
    return report
