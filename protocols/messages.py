"""Versioned MQTT message schemas shared by gateways and the hub.

Every message carries ``v`` ("MAJOR.MINOR"). A major this side does not speak is rejected
with :class:`UnsupportedVersion`; a newer minor is accepted and its unknown fields are kept
(they survive a decode/encode round trip). Gateway messages carry an ``id`` made of
gateway id, boot counter and sequence (see :class:`MessageId`); the hub is idempotent on it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from protocols.errors import MessageError, UnsupportedVersion
from protocols.instants import EpochTime, Instant
from protocols.storable import unstorable
from protocols.topics import EventType, GatewayTopic, Kind, check_name

SCHEMA_MAJOR = 1
SCHEMA_MINOR = 1  # 1.1: GatewayState.alarms, HealthReport
SCHEMA_VERSION = f"{SCHEMA_MAJOR}.{SCHEMA_MINOR}"
MAX_PAYLOAD_BYTES = 256 * 1024

_VERSION = re.compile(r"([0-9]{1,3})\.([0-9]{1,3})")
# Matched whole ("$" would pass a final "\n"), ASCII digits only ("\d" takes "١"), no leading
# zeros ("gw:01:7" would be a second id for "gw:1:7").
_MESSAGE_ID = re.compile(r"([a-z0-9][a-z0-9_-]{0,31}):(0|[1-9][0-9]{0,8}):(0|[1-9][0-9]{0,14})")

# No control characters: they corrupt logs and PostgreSQL refuses NUL in text.
_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
_NO_NUL = r"^[^\x00]*$"  # free text (an error message may span lines)
MAX_BOOT = 999_999_999  # the boot counter of a message id has at most 9 digits
MAX_COUNT = 2**31 - 1  # counters and versions: they are stored as 32-bit integers
ShortText = Annotated[str, Field(min_length=1, max_length=64, pattern=_PRINTABLE)]
ItemId = Annotated[str, Field(min_length=1, max_length=16, pattern=r"^[A-Z0-9-]+$")]
Celsius = Annotated[float, Field(ge=-60.0, le=150.0)]


@dataclass(frozen=True, slots=True, order=True)
class MessageId:
    """Gateway id + boot counter + sequence: unique across reboots of one gateway."""

    gateway: str
    boot: int
    seq: int

    def __str__(self) -> str:
        return f"{self.gateway}:{self.boot}:{self.seq}"

    @classmethod
    def parse(cls, text: str) -> MessageId:
        """Parse ``gateway:boot:seq``; raise MessageError if malformed."""
        match = _MESSAGE_ID.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise MessageError(f"message id {text!r} is not gateway:boot:seq")
        return cls(match[1], int(match[2]), int(match[3]))


def _check_message_id(value: str) -> str:
    MessageId.parse(value)
    return value


class ClockState(StrEnum):
    """Whether the gateway's clock was synchronised when it stamped an event."""

    SYNCED = "synced"
    UNSYNCED = "unsynced"
    HOLDOVER = "holdover"  # was synced, lost the time source, still free-running


class Grade(StrEnum):
    """A scan station's answer for a returned item."""

    RESELL = "resell"  # green
    DISCOUNT = "discount"  # amber
    SCRAP = "scrap"  # red
    CHECK = "check"  # amber + "check by hand"


class CustodyAction(StrEnum):
    """A change of custody of an item."""

    PICKED_UP = "picked_up"  # driver collected a return from the customer
    RECEIVED = "received"  # sorting center took it over
    HANDED_OVER = "handed_over"
    DISPOSED = "disposed"


class Severity(StrEnum):
    """How bad a fault is."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


class AckStatus(StrEnum):
    """The hub's verdict on one event."""

    STORED = "stored"
    DUPLICATE = "duplicate"  # already stored earlier: safe to drop from the outbox
    REJECTED = "rejected"  # invalid: quarantined at the hub, never retried


class _Message(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)
    name: ClassVar[str] = "message"

    v: str = SCHEMA_VERSION

    @field_validator("v")
    @classmethod
    def _known_major(cls, value: str) -> str:
        check_version(value)
        return value

    def encode(self) -> bytes:
        """Serialise to the compact JSON bytes sent on the wire."""
        return self.model_dump_json().encode()


class _GatewayMessage(_Message):
    id: str
    ts: Instant

    @field_validator("id")
    @classmethod
    def _message_id(cls, value: str) -> str:
        return _check_message_id(value)

    @cached_property
    def message_id(self) -> MessageId:
        """The parsed message id."""
        return MessageId.parse(self.id)


class _Event(_GatewayMessage):
    station: ShortText
    clock: ClockState = ClockState.SYNCED
    historical: bool = False  # sent from a backlog after an outage: fills the record, no alarms


class ScanEvent(_Event):
    """An item laid on a station's pad: its tag and core temperature."""

    name: ClassVar[str] = "scan"
    type: Literal["scan"] = "scan"
    item_id: ItemId
    tag_uid: Annotated[str, Field(pattern=r"^[0-9a-f]{8,20}$")]
    lot: Annotated[str, Field(min_length=1, max_length=10, pattern=_PRINTABLE)]
    gtin: Annotated[str, Field(pattern=r"^[0-9]{14}$")]
    core_temp_c: Celsius | None = None
    probe: ShortText | None = None


class GradeEvent(_Event):
    """The grade a station gave an item, with what it was based on."""

    name: ClassVar[str] = "grade"
    type: Literal["grade"] = "grade"
    item_id: ItemId
    scan_id: str
    grade: Grade
    model_version: ShortText
    scores: dict[str, float] = Field(default_factory=dict)
    features: dict[str, float | None] = Field(default_factory=dict)
    rule: ShortText | None = None  # the safety rule that overrode the model, if any
    # A model on trial graded the same scan: {"model", "grade", "agrees"} (schema 1.1).
    shadow: dict[str, str | bool] | None = None

    @field_validator("scan_id")
    @classmethod
    def _scan_id(cls, value: str) -> str:
        return _check_message_id(value)


class CustodyEvent(_Event):
    """A change of who holds an item."""

    name: ClassVar[str] = "custody"
    type: Literal["custody"] = "custody"
    item_id: ItemId
    action: CustodyAction
    actor: ShortText
    location: ShortText
    pickup_code: Annotated[str, Field(max_length=16, pattern=_PRINTABLE)] | None = None


class FaultEvent(_Event):
    """A device fault: unreadable tag, probe fault, disk full, reader error."""

    name: ClassVar[str] = "fault"
    type: Literal["fault"] = "fault"
    component: ShortText
    code: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,48}$")]
    severity: Severity = Severity.WARNING
    detail: Annotated[str, Field(max_length=500, pattern=_PRINTABLE)] = ""


Event = ScanEvent | GradeEvent | CustodyEvent | FaultEvent
EVENT_MODELS: dict[EventType, type[_Event]] = {
    EventType.SCAN: ScanEvent,
    EventType.GRADE: GradeEvent,
    EventType.CUSTODY: CustodyEvent,
    EventType.FAULT: FaultEvent,
}

# One reading: probe id, epoch seconds, °C (None: unplugged or sensor error).
TelemetryReading = tuple[
    Annotated[str, Field(min_length=1, max_length=32, pattern=_PRINTABLE)], EpochTime,
    Celsius | None
]


class TelemetryBatch(_GatewayMessage):
    """A batch of probe readings; telemetry leaves the gateway on the broker's PUBACK."""

    name: ClassVar[str] = "telemetry"
    historical: bool = False
    readings: Annotated[list[TelemetryReading], Field(min_length=1, max_length=10_000)]


class HealthReport(_GatewayMessage):
    """The gateway's own health, every minute or so; leaves the outbox like telemetry."""

    name: ClassVar[str] = "health"
    historical: bool = False
    clock: ClockState = ClockState.UNSYNCED
    uptime_s: Annotated[float, Field(ge=0)] = 0.0
    cpu_temp_c: Celsius | None = None
    load1: Annotated[float, Field(ge=0)] | None = None
    rss_mb: Annotated[float, Field(ge=0)] | None = None
    disk_free_mb: Annotated[float, Field(ge=0)] | None = None
    disk_used_pct: Annotated[float, Field(ge=0, le=100)] | None = None
    outbox_depth: Annotated[int, Field(ge=0)] | None = None
    dead_letters: Annotated[int, Field(ge=0)] | None = None
    reader_errors: Annotated[int, Field(ge=0)] | None = None


class GatewayState(_Message):
    """A gateway's retained state; its last will says offline."""

    name: ClassVar[str] = "state"
    online: bool
    boot: Annotated[int, Field(ge=0, le=MAX_BOOT)]
    ts: Instant | None = None
    software: ShortText | None = None
    model_version: ShortText | None = None
    backlog: Annotated[int, Field(ge=0, le=MAX_COUNT)] = 0
    clock: ClockState = ClockState.UNSYNCED
    alarms: list[Annotated[str, Field(pattern=r"^[a-z0-9_]{1,48}$")]] = Field(
        default_factory=list, max_length=32)  # e.g. "disk_full"


class HubState(_Message):
    """The hub's retained online state; gateways send their backlog once it says online."""

    name: ClassVar[str] = "hub state"
    online: bool
    ts: Instant | None = None


class AckEntry(BaseModel):
    """The hub's verdict on one event id."""

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)
    id: str
    status: AckStatus
    reason: str | None = None


class Ack(_Message):
    """Application acks, sent by the hub only after its database commit."""

    name: ClassVar[str] = "ack"
    ts: Instant
    entries: Annotated[list[AckEntry], Field(min_length=1)]


class Command(_Message):
    """A hub -> gateway command (manifest, config, model, resync)."""

    name: ClassVar[str] = "command"
    id: ShortText
    ts: Instant
    args: dict[str, Any] = Field(default_factory=dict)


class ConfigDocument(_Message):
    """Desired (hub -> gateway) or reported (gateway -> hub) configuration."""

    name: ClassVar[str] = "config"
    version: Annotated[int, Field(ge=0, le=MAX_COUNT)]
    settings: dict[str, Any] = Field(default_factory=dict)
    status: Literal["desired", "applied", "rejected", "rolled_back"] = "desired"
    error: Annotated[str, Field(max_length=2000, pattern=_NO_NUL)] | None = None


M = TypeVar("M", bound=_Message)


def check_version(value: object) -> tuple[int, int]:
    """Return (major, minor) of a schema version this side speaks; raise otherwise."""
    match = _VERSION.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise MessageError(f"schema version {value!r} is not MAJOR.MINOR")
    major, minor = int(match[1]), int(match[2])
    if major != SCHEMA_MAJOR:
        raise UnsupportedVersion(
            f"schema major version {major} is not supported (this side speaks {SCHEMA_MAJOR}.x)"
        )
    return major, minor


# What a payload may spell that parses but cannot be stored (``protocols.storable``): an
# escaped NUL or UTF-16 surrogate, NaN or Infinity, a number whose exponent overflows to
# infinity. The payload is walked only when one is seen.
_SUSPECT = re.compile(rb"\\u[dD][89a-fA-F]|\\u0000|NaN|Infinity|[0-9][eE][+]?[0-9]{3}")


def _suspect(payload: bytes | str) -> bool:
    return bool(_SUSPECT.search(payload.encode("utf-8", "surrogatepass")
                                if isinstance(payload, str) else payload))


def load_json(payload: bytes | str, what: str = "payload") -> dict[str, Any]:
    """Parse a JSON object payload; raise MessageError for anything else, or for one whose
    strings or numbers cannot be stored (a lone surrogate, NaN, an infinite number)."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise MessageError(f"{what} is {len(payload)} bytes, over the {MAX_PAYLOAD_BYTES} limit")
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise MessageError(f"{what} is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise MessageError(f"{what} must be a JSON object, got {type(data).__name__}")
    if _suspect(payload):
        found = unstorable(data, "(payload)")
        if found is not None:
            raise MessageError(f"{what}: {found[0]}: {found[1]}")
    return data


def decode_as(model: type[M], payload: bytes | str | dict[str, Any]) -> M:
    """Validate a payload as ``model``; raise MessageError naming each bad field."""
    if (not isinstance(payload, dict) and len(payload) <= MAX_PAYLOAD_BYTES
            and not _suspect(payload)):
        # Fast path: pydantic's own JSON parser, about twice as fast on telemetry batches.
        # Anything it refuses, or a payload without "v", takes the path below for the error.
        try:
            message = model.model_validate_json(payload)
        except ValidationError:
            pass
        else:
            if "v" in message.model_fields_set:
                return message
    data = payload if isinstance(payload, dict) else load_json(payload, model.name)
    if "v" not in data:
        raise MessageError(f"{model.name}: missing schema version 'v'")
    check_version(data["v"])
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise MessageError(f"{model.name}: {describe(err)}") from None


def describe(err: ValidationError) -> str:
    """Summarise a pydantic error as 'field: problem (got value)' clauses."""
    parts = []
    for issue in err.errors(include_url=False)[:5]:
        where = ".".join(str(p) for p in issue["loc"]) or "(message)"
        got = issue.get("input")
        shown = repr(got) if not isinstance(got, dict | list) else type(got).__name__
        if len(shown) > 40:
            shown = shown[:37] + "..."
        parts.append(f"{where}: {issue['msg']} (got {shown})")
    more = len(err.errors()) - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def decode_event(event_type: EventType | str, payload: bytes | str | dict[str, Any]) -> Event:
    """Decode a business event of the given type."""
    try:
        model = EVENT_MODELS[EventType(event_type)]
    except ValueError:
        raise MessageError(f"unknown event type {event_type!r}") from None
    event = decode_as(model, payload)
    if event.type != EventType(event_type).value:  # type: ignore[attr-defined]
        raise MessageError(f"payload type does not match topic event type {event_type!r}")
    return event  # type: ignore[return-value]


def decode_for_topic(topic: GatewayTopic, payload: bytes) -> _Message:
    """Decode a payload by the topic it arrived on, and check it belongs to that gateway."""
    message: _Message
    if topic.kind is Kind.EVENT:
        message = decode_event(topic.leaf or "", payload)
    elif topic.kind is Kind.TELEMETRY:
        message = decode_as(TelemetryBatch, payload)
    elif topic.kind is Kind.HEALTH:
        message = decode_as(HealthReport, payload)
    elif topic.kind is Kind.STATE:
        message = decode_as(GatewayState, payload)
    elif topic.kind is Kind.ACK:
        message = decode_as(Ack, payload)
    elif topic.kind is Kind.COMMAND:
        message = decode_as(Command, payload)
    else:
        message = decode_as(ConfigDocument, payload)
    if isinstance(message, _GatewayMessage):
        sender = message.message_id.gateway
        if sender != topic.gateway:
            raise MessageError(
                f"message id {message.id!r} belongs to gateway {sender!r}, "
                f"but arrived on {topic.gateway!r}'s topic"
            )
    return message


__all__ = [
    "SCHEMA_VERSION",
    "Ack",
    "AckEntry",
    "AckStatus",
    "ClockState",
    "Command",
    "ConfigDocument",
    "CustodyAction",
    "CustodyEvent",
    "Event",
    "FaultEvent",
    "GatewayState",
    "Grade",
    "GradeEvent",
    "HealthReport",
    "HubState",
    "MessageId",
    "ScanEvent",
    "Severity",
    "TelemetryBatch",
    "check_name",
    "decode_as",
    "decode_event",
    "decode_for_topic",
]
