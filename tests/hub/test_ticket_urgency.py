"""Urgency raised by what the words do not say: a public channel, the customer's situation."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub.tickets.urgency import Assessment, Situation, assess, repeat_contact
from tests.hub.conftest import T0


def level(triaged: str, **situation: object) -> tuple[str, tuple[str, ...]]:
    found = assess(triaged, Situation(**{"channel": "app", **situation}), T0)  # type: ignore[arg-type]
    return found.urgency, found.raised


def test_a_plain_complaint_keeps_its_triage() -> None:
    assert level("P3", tier="standard", order_value_cents=4_990) == ("P3", ())
    assert level("P9") == ("P3", ())  # an unknown level reads as P3


def test_a_public_channel_raises_one_level() -> None:
    assert level("P3", channel="social") == ("P2", ("public channel (social)",))
    assert level("P2", channel="social")[0] == "P1"  # a public threat, as before


@pytest.mark.parametrize(("situation", "reason"), [
    ({"tier": "platinum"}, "tier platinum"),
    ({"order_value_cents": 50_000}, "order worth 500.00"),
    ({"last_contact": T0 - timedelta(hours=3)}, "repeat contact (last 3.0 h before)"),
    ({"last_contact": T0 - timedelta(minutes=20)}, "repeat contact (last 20 min before)"),
])
def test_the_customers_situation_raises_one_level(situation: dict[str, object],
                                                  reason: str) -> None:
    assert level("P4", **situation) == ("P3", (reason,))


def test_situations_raise_one_level_together_and_never_past_p2() -> None:
    urgency, raised = level("P4", tier="vip", order_value_cents=80_000,
                            last_contact=T0 - timedelta(hours=1))
    assert urgency == "P3" and len(raised) == 3
    assert level("P3", tier="vip") == ("P2", ("tier vip",))
    assert level("P2", tier="vip") == ("P2", ())  # a threat stays a threat ...
    assert level("P3", channel="social", tier="vip") == ("P2", ("public channel (social)",))
    assert level("P1", tier="vip") == ("P1", ())  # ... and food safety stays P1


@pytest.mark.parametrize("situation", [
    {"tier": "gold"},  # has the vip SLA policy; not a top tier
    {"order_value_cents": 49_999},
    {"last_contact": T0 - timedelta(hours=24, seconds=1)},
    {"last_contact": T0 + timedelta(minutes=1)},  # a clock skew is no repeat contact
])
def test_below_the_thresholds_nothing_is_raised(situation: dict[str, object]) -> None:
    assert level("P4", **situation) == ("P4", ())


def test_writing_again_raises_an_open_ticket_once() -> None:
    first = repeat_contact(Assessment("P4", ()), T0 - timedelta(hours=2), T0)
    assert (first.urgency, first.raised, first.situation) == (
        "P3", ("repeat contact (last 2.0 h before)",), True)
    again = repeat_contact(first, T0, T0 + timedelta(hours=1))
    assert again == first  # raised for the customer's situation already
    valuable = level("P4", order_value_cents=90_000)
    assert repeat_contact(Assessment(*valuable, situation=True), T0, T0).urgency == "P3"
    late = repeat_contact(Assessment("P4", ()), T0 - timedelta(hours=30), T0)
    assert (late.urgency, late.raised) == ("P4", ())
    public = repeat_contact(Assessment("P3", ("public channel (social)",)), T0,
                            T0 + timedelta(hours=1))
    assert public.urgency == "P2"  # the channel's rise is no situation
