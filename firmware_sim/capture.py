"""Sensor captures: what a gateway's devices did, one JSON object a line (see docs/captures.md).

A capture is written on a real gateway by tapping its readers (``coldloop sim record``) and
replayed into the simulated devices (``coldloop sim replay``). Reading one validates every
line and names the line and field of any mistake.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from edge.settings import Name
from protocols.instants import Instant
from protocols.messages import describe

FORMAT = "coldloop-capture/1"
Source = str  # "rfid:<station>", "serial:<station>", "gpio:<station>", "link"


class CaptureError(ValueError):
    """A capture file that does not follow the format; the message names line and field."""


MAX_DURATION_S = 31 * 24 * 3600.0  # a capture is a shift or a few days, not years


class _Line(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    t: float = Field(ge=0, le=MAX_DURATION_S)  # seconds since the capture started (monotonic)


class Header(BaseModel):
    """First line: what was captured, where and when."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    format: Literal["coldloop-capture/1"]
    gateway: Name  # as in the gateway's settings, which a replay builds from these
    site: Name
    stations: list[Name] = Field(min_length=1)
    started_at: Instant
    note: str = ""

    @field_validator("stations")
    @classmethod
    def _distinct(cls, stations: list[str]) -> list[str]:
        if len(set(stations)) != len(stations):
            raise ValueError(f"stations are named more than once: {stations}")
        return stations


class CardPresented(_Line):
    """A card entered a station's field; ``data`` is its 48 coldloop bytes (hex)."""

    kind: Literal["card_presented"] = "card_presented"
    source: str = Field(pattern=r"^rfid:[a-z0-9][a-z0-9_-]{0,31}$")
    uid: str = Field(pattern=r"^[0-9a-f]{8}$")
    data: str = Field(pattern=r"^[0-9a-f]{96}$")


class CardRemoved(_Line):
    """The card left the field."""

    kind: Literal["card_removed"] = "card_removed"
    source: str = Field(pattern=r"^rfid:[a-z0-9][a-z0-9_-]{0,31}$")


class SerialBytes(_Line):
    """Bytes a probe board sent, exactly as received (noise and corruption included)."""

    kind: Literal["bytes"] = "bytes"
    source: str = Field(pattern=r"^serial:[a-z0-9][a-z0-9_-]{0,31}$")
    data: str  # base64

    @property
    def raw(self) -> bytes:
        """The bytes."""
        return base64.b64decode(self.data, validate=True)


class PortChange(_Line):
    """The probe board's serial device disappeared (unplugged) or came back."""

    kind: Literal["port"] = "port"
    source: str = Field(pattern=r"^serial:[a-z0-9][a-z0-9_-]{0,31}$")
    open: bool


class PinChange(_Line):
    """An output pin the gateway drove (lamps, buzzer, bin gate): recorded, checked on replay."""

    kind: Literal["pin"] = "pin"
    source: str = Field(pattern=r"^gpio:[a-z0-9][a-z0-9_-]{0,31}$")
    pin: int = Field(ge=0, le=63)
    state: Literal[0, 1]


class LinkChange(_Line):
    """The uplink to the hub went down or came back."""

    kind: Literal["link"] = "link"
    source: Literal["link"] = "link"
    up: bool


Event = CardPresented | CardRemoved | SerialBytes | PortChange | PinChange | LinkChange
_EVENT: TypeAdapter[Event] = TypeAdapter(Annotated[Event, Field(discriminator="kind")])


@dataclass
class Capture:
    """A parsed capture: its header and time-ordered events."""

    header: Header
    events: list[Event] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        """Time of the last event."""
        return self.events[-1].t if self.events else 0.0


def station_of(event: Event) -> str | None:
    """The station an event belongs to (None for link changes)."""
    prefix, _, station = event.source.partition(":")
    return station if prefix != "link" else None


def serial_event(t: float, station: str, data: bytes) -> SerialBytes:
    """Build a serial-bytes event."""
    return SerialBytes(t=t, source=f"serial:{station}", data=base64.b64encode(data).decode())


def parse_lines(lines: Iterable[str], name: str = "capture") -> Capture:
    """Parse capture lines; raise CaptureError naming the first bad line."""
    header: Header | None = None
    events: list[Event] = []
    last_t = 0.0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{name}:{number}"
        try:
            data: Any = json.loads(line)
        except ValueError as err:
            raise CaptureError(f"{where}: not JSON: {err}") from None
        except RecursionError:
            raise CaptureError(f"{where}: not JSON: nested too deeply to read") from None
        if not isinstance(data, dict):
            raise CaptureError(f"{where}: expected a JSON object")
        try:
            if header is None:
                header = Header.model_validate(data)
                continue
            event = _EVENT.validate_python(data)
        except ValidationError as err:
            what = "header" if header is None else f"event {data.get('kind', '?')!r}"
            raise CaptureError(f"{where}: bad {what}: {describe(err)}") from None
        if event.t < last_t:
            raise CaptureError(f"{where}: time goes backwards ({event.t} < {last_t})")
        station = station_of(event)
        if station is not None and station not in header.stations:
            raise CaptureError(f"{where}: unknown station {station!r}; the header lists "
                               f"{header.stations}")
        if isinstance(event, SerialBytes):
            try:
                event.raw  # noqa: B018  (validate the base64 now, not during replay)
            except ValueError as err:
                raise CaptureError(f"{where}: data is not base64: {err}") from None
        last_t = event.t
        events.append(event)
    if header is None:
        raise CaptureError(f"{name}: empty capture (no header line)")
    return Capture(header, events)


def load(path: Path) -> Capture:
    """Read and validate a capture file."""
    try:
        with path.open(encoding="utf-8") as handle:
            return parse_lines(handle, str(path))
    except UnicodeDecodeError as err:
        raise CaptureError(f"{path}: not UTF-8 text: {err}") from None


class CaptureWriter:
    """Appends events to a capture, one flushed line each (a crash loses at most one line)."""

    def __init__(self, out: IO[str], header: Header, clock: Callable[[], float]) -> None:
        self._out = out
        self._clock = clock
        self._t0 = float(clock())
        self._write(header.model_dump(mode="json"))

    def now(self) -> float:
        """Seconds since the capture started."""
        return round(max(0.0, float(self._clock()) - self._t0), 6)

    def write(self, event: Event) -> None:
        """Append one event."""
        self._write(event.model_dump(mode="json"))

    def _write(self, data: dict[str, Any]) -> None:
        self._out.write(json.dumps(data, separators=(",", ":"), ensure_ascii=False) + "\n")
        self._out.flush()


def dump(capture: Capture) -> Iterator[str]:
    """Serialise a capture back to lines (used to write generated captures)."""
    yield json.dumps(capture.header.model_dump(mode="json"), separators=(",", ":"))
    for event in capture.events:
        yield json.dumps(event.model_dump(mode="json"), separators=(",", ":"))


def header(gateway: str, site: str, stations: list[str], started_at: datetime,
           note: str = "") -> Header:
    """Build a capture header."""
    return Header(format="coldloop-capture/1", gateway=gateway, site=site, stations=stations,
                  started_at=started_at, note=note)
