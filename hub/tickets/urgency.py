"""Urgency beyond the words: the triage's level, raised by where and from whom it came.

The classifier reads the text (food safety P1, threats P2, goods problems P3; docs/triage.md).
What it cannot read raises the level here, each rise with its reason kept on the ticket:

- a public channel (a social post): one level;
- the customer's situation: a top tier, a valuable order, or a repeat contact (another
  complaint of theirs, or another message on this one, within ``repeat_contact_h``). These
  raise one level together, never beyond P2: P1 is for food safety, and a customer's
  standing does not make a late delivery a health risk.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hub.tickets import states
from hub.tickets.policy import DEFAULT_CONFIG, TicketConfig

SITUATION_CEILING = "P2"  # the customer's situation raises no further than this


@dataclass(frozen=True)
class Situation:
    """What the hub knows of a complaint besides its words."""

    channel: str
    tier: str | None = None
    order_value_cents: int | None = None
    last_contact: datetime | None = None  # the customer's latest earlier complaint or message


@dataclass(frozen=True)
class Assessment:
    """The urgency a ticket gets and each reason it is above the triage's."""

    urgency: str
    raised: tuple[str, ...]
    situation: bool = False  # raised for the customer's situation (which happens once)


def assess(triaged: str, situation: Situation, now: datetime,
           config: TicketConfig = DEFAULT_CONFIG) -> Assessment:
    """Return the urgency of a new ticket whose text was triaged ``triaged``."""
    urgency = triaged if triaged in states.URGENCIES else "P3"
    raised: list[str] = []
    if situation.channel in config.public_channels:
        urgency = states.raise_urgency(urgency)
        raised.append(f"public channel ({situation.channel})")
    return _situation(urgency, raised, _reasons(situation, now, config))


def repeat_contact(before: Assessment, last_contact: datetime | None, now: datetime,
                   config: TicketConfig = DEFAULT_CONFIG) -> Assessment:
    """Return an open ticket's urgency after the customer wrote or called again: one level up
    (to P2 at most) if their last message was within the window and the ticket has not been
    raised for the customer's situation before."""
    reason = _repeat(last_contact, now, config)
    if reason is None or before.situation:
        return before
    return _situation(before.urgency, list(before.raised), [reason])


def _reasons(situation: Situation, now: datetime, config: TicketConfig) -> list[str]:
    found = []
    if situation.tier is not None and situation.tier in config.urgent_tiers:
        found.append(f"tier {situation.tier}")
    value = situation.order_value_cents
    if value is not None and value >= config.valuable_order_cents:
        found.append(f"order worth {value / 100:.2f}")
    repeat = _repeat(situation.last_contact, now, config)
    if repeat is not None:
        found.append(repeat)
    return found


def _repeat(last_contact: datetime | None, now: datetime, config: TicketConfig) -> str | None:
    if last_contact is None:
        return None
    hours = (now - last_contact).total_seconds() / 3600
    if not 0 <= hours <= config.repeat_contact_h:
        return None
    ago = f"{hours * 60:.0f} min" if hours < 1 else f"{hours:.1f} h"
    return f"repeat contact (last {ago} before)"


def _situation(urgency: str, raised: list[str], reasons: list[str]) -> Assessment:
    if not reasons or states.more_urgent(urgency, SITUATION_CEILING) == urgency:
        return Assessment(urgency, tuple(raised))  # nothing to raise for, or P2 already
    return Assessment(states.raise_urgency(urgency), (*raised, *reasons), situation=True)
