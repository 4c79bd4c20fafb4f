"""The stations' devices through their real drivers: mfrc522 on SPI, pyserial, gpiozero.

On a Raspberry Pi the defaults reach the hardware; off a Pi, firmware_sim passes a simulated
SPI bus, pseudo-terminal probe boards and gpiozero's mock pins, and this same code runs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from edge.errors import EdgeError
from edge.indicators import DamageButton, LightTower
from edge.probe import BoardProbe, ProbeFault, SerialFactory, SerialProbeBoard
from edge.rfid import Mfrc522Reader
from edge.settings import StationSettings
from protocols.probe_frame import ProbeFrame

_SPI = re.compile(r"^spi:(\d+)\.(\d+)$")
ProbeEvent = tuple[str, ProbeFrame | ProbeFault]  # (board port, what it said)


def parse_spi(text: str) -> tuple[int, int]:
    """Parse ``spi:BUS.DEVICE``; raise EdgeError naming the expected form."""
    match = _SPI.match(text)
    if match is None:
        raise EdgeError(f"reader {text!r} is not 'spi:BUS.DEVICE' (e.g. spi:0.0)")
    return int(match[1]), int(match[2])


class DeviceHardware:
    """Builds each station's reader, probe and light tower; one reader per serial port."""

    def __init__(self, *, pin_factory: Any = None, clock: Callable[[], float] = time.time,
                 serial_factory: SerialFactory | None = None,
                 reader_address: Callable[[StationSettings], tuple[int, int]] | None = None,
                 probe_port: Callable[[StationSettings], str] | None = None,
                 stale_after_s: float = 5.0) -> None:
        self.pin_factory = pin_factory
        self.clock = clock
        self.serial_factory = serial_factory
        self.stale_after_s = stale_after_s
        self._reader_address = reader_address or (lambda s: parse_spi(s.reader))
        self._port_of = probe_port or (lambda s: s.probe)
        self.boards: dict[str, SerialProbeBoard] = {}
        self.readers: list[Mfrc522Reader] = []
        self.towers: list[LightTower] = []
        self.buttons: list[DamageButton] = []

    def tag_reader(self, station: StationSettings) -> Mfrc522Reader:
        """The station's MFRC522 reader."""
        bus, device = self._reader_address(station)
        reader = Mfrc522Reader(bus, device, pin_rst=station.rst_pin)
        self.readers.append(reader)
        return reader

    def probe_port(self, station: StationSettings) -> str:
        """The serial device of the station's probe board."""
        return self._port_of(station)

    def probe(self, station: StationSettings) -> BoardProbe:
        """The station's core probe: one probe of a (possibly shared) serial probe board."""
        port = self.probe_port(station)
        if port not in self.boards:
            self.boards[port] = SerialProbeBoard(
                port, clock=self.clock, serial_factory=self.serial_factory,
                stale_after_s=self.stale_after_s)
        return self.boards[port].probe(station.probe_index, f"{station.id}-core")

    def indicator(self, station: StationSettings) -> LightTower:
        """The station's lamps, buzzer and bin gate."""
        tower = LightTower(station.light_pins, station.buzzer_pin, station.gate_pin,
                           self.pin_factory)
        self.towers.append(tower)
        return tower

    def damage_button(self, station: StationSettings) -> DamageButton | None:
        """The station's damage button, if it has one."""
        if station.damage_pin is None:
            return None
        button = DamageButton(station.damage_pin, self.pin_factory)
        self.buttons.append(button)
        return button

    def poll(self) -> list[ProbeEvent]:
        """Poll every probe board; return what each said since the last call."""
        events: list[ProbeEvent] = []
        for port, board in self.boards.items():
            board.poll()
            events.extend((port, item) for item in board.take_events())
        return events

    def close(self) -> None:
        """Release ports, SPI devices and pins."""
        for board in self.boards.values():
            board.close()
        for reader in self.readers:
            reader.close()
        for tower in self.towers:
            tower.close()
        for button in self.buttons:
            button.close()
