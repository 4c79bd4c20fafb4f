"""A scan station's devices in software, driven and inspected by tests, the demo and replays."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from edge.errors import ReaderFault
from edge.indicators import LightTower
from edge.ports import TagRead
from edge.settings import StationSettings
from protocols.tag import TagRecord, encode_tag


class SimPad:
    """The RFID pad of a station: lay a tag on it, take it off, or make the reader fail."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tag: TagRead | None = None
        self._fault: str | None = None

    def present_tag(self, uid: str, record: TagRecord | None = None, *,
                    data: bytes | None = None) -> None:
        """Lay a tag on the pad: a coldloop record, or raw block bytes (blank, foreign...)."""
        payload = encode_tag(record) if record is not None else (data or bytes(48))
        with self._lock:
            self._tag = TagRead(uid, payload)

    def remove_tag(self) -> None:
        """Take the tag off the pad."""
        with self._lock:
            self._tag = None

    def fail(self, reason: str | None) -> None:
        """Make every read fail with ``reason`` (None: work again)."""
        with self._lock:
            self._fault = reason

    def read(self) -> TagRead | None:
        """What the station's reader sees."""
        with self._lock:
            if self._fault:
                raise ReaderFault(self._fault)
            return self._tag


class SimProbe:
    """A core-temperature probe whose reading tests set."""

    def __init__(self, probe_id: str, celsius: float | None = 2.0) -> None:
        self.probe_id = probe_id
        self._celsius = celsius

    def set_temperature(self, celsius: float) -> None:
        """Set what the probe reads."""
        self._celsius = celsius

    def unplug(self) -> None:
        """Unplug the probe: it has no valid reading."""
        self._celsius = None

    def read_celsius(self) -> float | None:
        """The current reading."""
        return self._celsius


@dataclass
class SimStation:
    """The devices of one simulated station."""

    pad: SimPad
    probe: SimProbe
    lights: LightTower


@dataclass
class SimulatedHardware:
    """Hardware for ``edge.gateway.build_gateway``: every station's devices in software."""

    stations: dict[str, SimStation] = field(default_factory=dict)
    _factory: Any = None

    def _station(self, settings: StationSettings) -> SimStation:
        if settings.id not in self.stations:
            if self._factory is None:
                from gpiozero.pins.mock import MockFactory

                self._factory = MockFactory()
            self.stations[settings.id] = SimStation(
                SimPad(), SimProbe(f"{settings.id}-core"),
                LightTower(settings.light_pins, settings.buzzer_pin, settings.gate_pin,
                           self._factory))
        return self.stations[settings.id]

    def tag_reader(self, station: StationSettings) -> SimPad:
        """The station's simulated pad."""
        return self._station(station).pad

    def probe(self, station: StationSettings) -> SimProbe:
        """The station's simulated probe."""
        return self._station(station).probe

    def indicator(self, station: StationSettings) -> LightTower:
        """The station's light tower on gpiozero mock pins."""
        return self._station(station).lights
