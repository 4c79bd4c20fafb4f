"""Business calendars: working intervals per weekday in a time zone, and holidays.

Business time is counted only inside the intervals. ``add`` walks forward day by day and
``seconds_between`` sums the overlaps; both walk at most ``MAX_WALK_DAYS`` days, so a calendar
without working time raises instead of looping.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hub.errors import InvalidInput

MAX_WALK_DAYS = 400
Interval = tuple[time, time]  # start, end (end time(0) means midnight at the day's end)


@dataclass(frozen=True)
class BusinessCalendar:
    """Working intervals per weekday (0 = Monday) in ``timezone``, minus ``holidays``."""

    name: str
    timezone: str = "UTC"
    weekly: Mapping[int, Sequence[Interval]] = field(default_factory=dict)
    holidays: frozenset[date] = frozenset()

    @property
    def always_open(self) -> bool:
        """Whether every moment is business time (24x7, no holidays)."""
        full = ((time(0), time(0)),)
        return not self.holidays and all(tuple(self.weekly.get(d, ())) == full
                                         for d in range(7))

    def intervals_on(self, day: date) -> list[tuple[datetime, datetime]]:
        """Return the day's working intervals as aware UTC datetimes."""
        if day in self.holidays:
            return []
        zone = ZoneInfo(self.timezone)
        found = []
        for start, end in self.weekly.get(day.weekday(), ()):
            begin = datetime.combine(day, start, zone)
            finish = (datetime.combine(day + timedelta(days=1), time(0), zone)
                      if end == time(0) else datetime.combine(day, end, zone))
            if finish > begin:
                found.append((begin.astimezone(UTC), finish.astimezone(UTC)))
        return found

    def _days_from(self, moment: datetime) -> Iterator[date]:
        day = moment.astimezone(ZoneInfo(self.timezone)).date() - timedelta(days=1)
        for offset in range(MAX_WALK_DAYS):
            yield day + timedelta(days=offset)

    def add(self, start: datetime, seconds: float) -> datetime:
        """Return the moment ``seconds`` of business time after ``start``."""
        if self.always_open:
            return start + timedelta(seconds=seconds)
        remaining = timedelta(seconds=max(0.0, seconds))
        for day in self._days_from(start):
            for begin, end in self.intervals_on(day):
                if end <= start:
                    continue
                begin = max(begin, start)
                if remaining <= end - begin:
                    if remaining == timedelta(0):
                        return begin
                    return begin + remaining
                remaining -= end - begin
        raise InvalidInput(f"calendar {self.name!r} has no business time within "
                           f"{MAX_WALK_DAYS} days of {start.isoformat()}")

    def seconds_between(self, start: datetime, end: datetime) -> float:
        """Return the business seconds between two moments (0 when ``end`` is not later)."""
        if end <= start:
            return 0.0
        if self.always_open:
            return (end - start).total_seconds()
        total = 0.0
        for day in self._days_from(start):
            for begin, finish in self.intervals_on(day):
                if begin >= end:
                    return total
                overlap = min(finish, end) - max(begin, start)
                total += max(0.0, overlap.total_seconds())
        return total


ALWAYS = BusinessCalendar("24x7", "UTC", {d: ((time(0), time(0)),) for d in range(7)})
