"""Helpers of the ticket tests: a fixed triage, agents, a test calendar and config."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.models import Ticket
from hub.tickets import intake, states
from hub.tickets.calendar import BusinessCalendar
from hub.tickets.intake import Complaint
from hub.tickets.models import Agent
from hub.tickets.policy import SlaPolicy, Target, TicketConfig

T0 = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)  # a Friday morning: the tests' "now"
HOLIDAY = date(2026, 11, 23)  # a Monday
OFFICE = BusinessCalendar(
    "office", "UTC",
    {d: ((time(9), time(12)), (time(13), time(18))) for d in range(5)},  # lunch 12-13
    frozenset({HOLIDAY}))


def _targets(first_contact: float, calendar: str) -> dict[str, Target]:
    return {states.ACK: Target(10), states.FIRST_CONTACT: Target(first_contact, calendar),
            states.RESOLUTION: Target(8 * 60, calendar), states.FOLLOW_UP: Target(24 * 60)}


CONFIG = TicketConfig(
    policies=(SlaPolicy("urgent", _targets(30, "24x7"), rank=1,
                        urgencies=frozenset({"P1"})),),
    default_policy=SlaPolicy("office", _targets(60, "office")),
    calendars={"office": OFFICE})


@dataclass(frozen=True)
class FixedTriage:
    """A triage result chosen by the test."""

    category: str = "spoiled"
    urgency: str = "P3"
    sentiment: str = "negative"
    sentiment_score: float = -0.6
    keywords: list[str] = field(default_factory=lambda: ["mouldy"])
    confidence: float = 0.9
    language: str = "zh"
    model_version: str = "test-1"


def triage(**kwargs: object):  # type: ignore[no-untyped-def]
    """Return a triage function answering ``FixedTriage(**kwargs)`` for any text."""
    result = FixedTriage(**kwargs)  # type: ignore[arg-type]
    return lambda _text: result


def add_agent(session: Session, agent_id: str, *, skills: tuple[str, ...] = ("*",),
              languages: tuple[str, ...] = (), regions: tuple[str, ...] = (),
              capacity: int = 5, on_shift: bool = True, online: bool = True,
              supervisor: bool = False, shifts: list[dict[str, object]] | None = None,
              active: bool = True) -> Agent:
    """Add an agent (on shift and online unless told; no planned shifts unless given)."""
    agent = Agent(id=agent_id, name=agent_id.title(), team="support", skills=list(skills),
                  languages=list(languages), regions=list(regions), capacity=capacity,
                  shifts=list(shifts or []), on_shift=on_shift, online=online,
                  supervisor=supervisor, active=active)
    session.add(agent)
    session.flush()
    return agent


def social(handle: str, text: str = "烂了, all mouldy", post_id: str | None = None) -> Complaint:
    """A social post from an unknown handle (its own customer key, no order)."""
    return Complaint(channel="social", text=text, external_id=post_id or f"weibo:{handle}",
                     sender=f"weibo:{handle}", author=f"weibo:{handle}")


def complain(session: Session, handle: str, minutes: float = 0, **kwargs: object) -> Ticket:
    """A social complaint of its own customer through intake, ``minutes`` after T0, triaged
    as ``FixedTriage(**kwargs)``, under the test ``CONFIG``."""
    return intake.receive(session, social(handle), T0 + timedelta(minutes=minutes),
                          triage=triage(**kwargs), config=CONFIG).ticket


def count(session: Session, model: type[object], *where: object) -> int:
    """Count the rows of a table matching ``where``."""
    query = select(func.count()).select_from(model)
    for condition in where:
        query = query.where(condition)  # type: ignore[arg-type]
    return session.scalar(query) or 0


def window(days: tuple[int, ...], start: str, end: str) -> dict[str, object]:
    """A planned shift window as stored on an agent (ISO weekdays, local HH:MM)."""
    return {"days": list(days), "start": start, "end": end}

PHONE = "+86 138 0000 0001"  # customer C-1's (conftest's `session` fixture)
