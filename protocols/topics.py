"""The MQTT topic tree shared by gateways and the hub.

```
coldloop/v1/hub/state                         hub's retained online state
coldloop/v1/{site}/{gateway}/state            gateway's retained state (last will: offline)
coldloop/v1/{site}/{gateway}/evt/{type}       business events: scan, grade, custody, fault
coldloop/v1/{site}/{gateway}/tlm              batched probe readings
coldloop/v1/{site}/{gateway}/health           the gateway's own health (CPU, disk, queue)
coldloop/v1/{site}/{gateway}/ack              hub -> gateway application acks
coldloop/v1/{site}/{gateway}/cmd/{name}       hub -> gateway commands
coldloop/v1/{site}/{gateway}/cfg/desired      hub -> gateway configuration
coldloop/v1/{site}/{gateway}/cfg/reported     gateway -> hub applied configuration
```
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from protocols.errors import TopicError

ROOT = "coldloop/v1"
HUB_STATE = f"{ROOT}/hub/state"

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")  # fullmatch: "$" would pass a final "\n"
RESERVED_SITES = frozenset({"hub"})
RESERVED_GATEWAYS = frozenset({"driver"})  # drivers' custody records use "driver:..." ids


class Kind(StrEnum):
    """What a gateway topic carries."""

    STATE = "state"
    EVENT = "evt"
    TELEMETRY = "tlm"
    HEALTH = "health"
    ACK = "ack"
    COMMAND = "cmd"
    CONFIG = "cfg"


class EventType(StrEnum):
    """Business events a gateway reports."""

    SCAN = "scan"
    GRADE = "grade"
    CUSTODY = "custody"
    FAULT = "fault"


COMMAND_NAMES = frozenset({"manifest", "config", "model", "resync"})
CONFIG_DIRECTIONS = frozenset({"desired", "reported"})


@dataclass(frozen=True, slots=True)
class GatewayTopic:
    """A parsed gateway topic; ``leaf`` is the event type, command name or config direction."""

    site: str
    gateway: str
    kind: Kind
    leaf: str | None = None

    def __str__(self) -> str:
        base = f"{ROOT}/{self.site}/{self.gateway}/{self.kind.value}"
        return f"{base}/{self.leaf}" if self.leaf is not None else base


def check_name(value: str, what: str) -> str:
    """Return ``value`` if it is a valid site or gateway name, else raise TopicError."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise TopicError(
            f"{what} {value!r} is not a valid name: use 1-32 of a-z 0-9 _ -, "
            "starting with a letter or digit"
        )
    return value


def _check_site(site: str) -> str:
    check_name(site, "site")
    if site in RESERVED_SITES:
        raise TopicError(f"site {site!r} is reserved")
    return site


def state(site: str, gateway: str) -> str:
    """Build the retained state topic of a gateway."""
    return _build(site, gateway, Kind.STATE)


def event(site: str, gateway: str, event_type: EventType | str) -> str:
    """Build an event topic."""
    return _build(site, gateway, Kind.EVENT, EventType(event_type).value)


def telemetry(site: str, gateway: str) -> str:
    """Build the telemetry topic of a gateway."""
    return _build(site, gateway, Kind.TELEMETRY)


def health(site: str, gateway: str) -> str:
    """Build the health topic of a gateway."""
    return _build(site, gateway, Kind.HEALTH)


def ack(site: str, gateway: str) -> str:
    """Build the topic on which the hub acknowledges a gateway's events."""
    return _build(site, gateway, Kind.ACK)


def command(site: str, gateway: str, name: str) -> str:
    """Build a hub -> gateway command topic."""
    if name not in COMMAND_NAMES:
        raise TopicError(f"unknown command {name!r}; expected one of {sorted(COMMAND_NAMES)}")
    return _build(site, gateway, Kind.COMMAND, name)


def config(site: str, gateway: str, direction: str) -> str:
    """Build a configuration topic, ``direction`` being desired or reported."""
    if direction not in CONFIG_DIRECTIONS:
        raise TopicError(f"config direction must be desired or reported, got {direction!r}")
    return _build(site, gateway, Kind.CONFIG, direction)


def _check_gateway(gateway: str) -> str:
    check_name(gateway, "gateway")
    if gateway in RESERVED_GATEWAYS:
        raise TopicError(f"gateway name {gateway!r} is reserved")
    return gateway


def _build(site: str, gateway: str, kind: Kind, leaf: str | None = None) -> str:
    _check_site(site)
    _check_gateway(gateway)
    return str(GatewayTopic(site, gateway, kind, leaf))


def parse(topic: str) -> GatewayTopic:
    """Parse a gateway topic; raise TopicError naming what is wrong."""
    if not isinstance(topic, str):
        raise TopicError(f"topic must be a string, got {type(topic).__name__}")
    return _parse_cached(topic)


@lru_cache(maxsize=4096)  # a hub sees the same few hundred topics over and over
def _parse_cached(topic: str) -> GatewayTopic:
    if not isinstance(topic, str):
        raise TopicError(f"topic must be a string, got {type(topic).__name__}")
    if "+" in topic or "#" in topic:
        raise TopicError(f"{topic!r} is a filter with wildcards, not a topic")
    if topic.startswith("$share/"):
        raise TopicError(f"{topic!r} is a shared-subscription filter, not a topic")
    parts = topic.split("/")
    if len(parts) < 5 or "/".join(parts[:2]) != ROOT:
        raise TopicError(f"{topic!r} is not under {ROOT}/{{site}}/{{gateway}}/")
    site, gateway, kind_text, *rest = parts[2:]
    _check_site(site)
    _check_gateway(gateway)
    try:
        kind = Kind(kind_text)
    except ValueError:
        raise TopicError(
            f"{topic!r}: unknown kind {kind_text!r}; expected one of {[k.value for k in Kind]}"
        ) from None
    leaf = _parse_leaf(topic, kind, rest)
    return GatewayTopic(site, gateway, kind, leaf)


def _parse_leaf(topic: str, kind: Kind, rest: list[str]) -> str | None:
    if kind in (Kind.STATE, Kind.TELEMETRY, Kind.HEALTH, Kind.ACK):
        if rest:
            raise TopicError(f"{topic!r}: {kind.value} takes no sub-level")
        return None
    if len(rest) != 1:
        raise TopicError(f"{topic!r}: {kind.value} needs exactly one sub-level")
    leaf = rest[0]
    if kind is Kind.EVENT:
        if leaf not in {e.value for e in EventType}:
            raise TopicError(
                f"{topic!r}: unknown event type {leaf!r}; "
                f"expected one of {[e.value for e in EventType]}"
            )
    elif kind is Kind.COMMAND:
        if leaf not in COMMAND_NAMES:
            raise TopicError(f"{topic!r}: unknown command {leaf!r}")
    elif leaf not in CONFIG_DIRECTIONS:
        raise TopicError(f"{topic!r}: config direction must be desired or reported")
    return leaf


def gateway_filter(kind: Kind, leaf: str = "+", site: str = "+", gateway: str = "+") -> str:
    """Build a subscription filter over gateways (``+`` wildcards by default)."""
    base = f"{ROOT}/{site}/{gateway}/{kind.value}"
    if kind in (Kind.STATE, Kind.TELEMETRY, Kind.HEALTH, Kind.ACK):
        return base
    return f"{base}/{leaf}"


def shared(group: str, topic_filter: str) -> str:
    """Wrap a filter in an MQTT v5 shared subscription so workers split the load."""
    check_name(group, "share group")
    return f"$share/{group}/{topic_filter}"
