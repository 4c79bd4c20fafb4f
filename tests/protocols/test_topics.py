"""The MQTT topic tree: build, parse, and reject what does not belong."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import topics
from protocols.errors import TopicError
from protocols.topics import EventType, GatewayTopic, Kind

names = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,31}", fullmatch=True).filter(
    lambda s: s not in {"hub", "driver"})


@given(names, names, st.sampled_from(list(EventType)))
def test_event_topic_round_trip(site: str, gateway: str, event_type: EventType) -> None:
    built = topics.event(site, gateway, event_type)
    assert topics.parse(built) == GatewayTopic(site, gateway, Kind.EVENT, event_type.value)


@pytest.mark.parametrize(("built", "kind", "leaf"), [
    (topics.state("s1", "gw-1"), Kind.STATE, None),
    (topics.telemetry("s1", "gw-1"), Kind.TELEMETRY, None),
    (topics.ack("s1", "gw-1"), Kind.ACK, None),
    (topics.command("s1", "gw-1", "resync"), Kind.COMMAND, "resync"),
    (topics.config("s1", "gw-1", "reported"), Kind.CONFIG, "reported"),
])
def test_every_kind_round_trips(built: str, kind: Kind, leaf: str | None) -> None:
    parsed = topics.parse(built)
    assert (parsed.kind, parsed.leaf) == (kind, leaf)
    assert str(parsed) == built


@pytest.mark.parametrize(("topic", "message"), [
    ("home/livingroom/temp", "not under coldloop/v1"),
    ("coldloop/v2/s1/gw-1/state", "not under coldloop/v1"),
    ("coldloop/v1/s1/gw-1", "not under coldloop/v1"),
    ("coldloop/v1/S1/gw-1/state", "site 'S1' is not a valid name"),
    ("coldloop/v1/hub/gw-1/state", "site 'hub' is reserved"),
    ("coldloop/v1/s1/driver/evt/custody", "gateway name 'driver' is reserved"),
    ("coldloop/v1/s1/gw 1/state", "gateway 'gw 1' is not a valid name"),
    ("coldloop/v1/s1/gw-1/weather", "unknown kind 'weather'"),
    ("coldloop/v1/s1/gw-1/evt/party", "unknown event type 'party'"),
    ("coldloop/v1/s1/gw-1/evt", "needs exactly one sub-level"),
    ("coldloop/v1/s1/gw-1/state/extra", "takes no sub-level"),
    ("coldloop/v1/s1/gw-1/cmd/reboot", "unknown command 'reboot'"),
    ("coldloop/v1/s1/gw-1/cfg/wanted", "desired or reported"),
    ("coldloop/v1/+/+/evt/+", "wildcards"),
    ("$share/hub/coldloop/v1/s1/gw-1/tlm", "shared-subscription"),
    ("coldloop/v1//gw-1/state", "not a valid name"),
])
def test_foreign_or_malformed_topics_are_rejected(topic: str, message: str) -> None:
    with pytest.raises(TopicError, match=message.replace("+", r"\+").replace("$", r"\$")):
        topics.parse(topic)


def test_filters_and_shared_subscriptions() -> None:
    assert topics.gateway_filter(Kind.EVENT) == "coldloop/v1/+/+/evt/+"
    assert topics.gateway_filter(Kind.TELEMETRY, site="s1") == "coldloop/v1/s1/+/tlm"
    assert topics.shared("hub", "coldloop/v1/+/+/tlm") == "$share/hub/coldloop/v1/+/+/tlm"
    with pytest.raises(TopicError):
        topics.shared("bad group", "x")


def test_builders_reject_bad_names() -> None:
    with pytest.raises(TopicError, match="gateway"):
        topics.state("s1", "GW")
    with pytest.raises(TopicError, match="unknown command"):
        topics.command("s1", "gw-1", "selfdestruct")
