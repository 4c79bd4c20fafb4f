"""A sorting center's devices in software, under the gateway's real drivers.

Each station gets an MFRC522 chip model on a simulated SPI bus (the unmodified ``mfrc522``
driver talks to it), a probe board on a pseudo-terminal (read through real ``pyserial``) and
gpiozero mock pins. Tests, the demo and replays drive the devices (``present_tag``,
``set_core_temperature``, the board's fault injection) and read the pins back.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.hardware import DeviceHardware, ProbeEvent
from edge.indicators import DamageButton, LightTower
from edge.probe import BoardProbe
from edge.rfid import Mfrc522Reader
from edge.settings import StationSettings
from firmware_sim.mfrc522_chip import Mfrc522Chip
from firmware_sim.mifare import MifareClassic1K
from firmware_sim.probe_board import ProbeBoard
from firmware_sim.rf_field import RfField
from firmware_sim.spi import simulated_spi
from firmware_sim.thermal import Steady
from protocols.tag import TAG_BLOCKS, TagRecord, encode_tag, split_blocks


@dataclass
class SimStation:
    """One station's simulated devices."""

    station_id: str
    spi: tuple[int, int]
    chip: Mfrc522Chip
    board: ProbeBoard
    pin_factory: Any
    lights: LightTower | None = None
    card: MifareClassic1K | None = None

    @property
    def field(self) -> RfField:
        """The reader's RF field."""
        return self.chip.field

    def present_tag(self, uid: str, record: TagRecord | None = None, *,
                    data: bytes | None = None) -> MifareClassic1K:
        """Lay a tag on the pad: a coldloop record, or raw bytes for blocks 8-10 (None: blank)."""
        self.remove_tag()
        card = MifareClassic1K(bytes.fromhex(uid))
        payload = encode_tag(record) if record is not None else data
        if payload is not None:
            blocks = split_blocks(payload.ljust(16 * len(TAG_BLOCKS), b"\0"))
            for number, block in blocks.items():
                card.write_block(number, block)
        self.field.present(card)
        self.card = card
        return card

    def remove_tag(self) -> None:
        """Take the tag off the pad."""
        if self.card is not None:
            self.field.remove(self.card)
            self.card = None

    def set_core_temperature(self, celsius: float) -> None:
        """Make the core probe read ``celsius`` and send a frame now."""
        self.board.set_model(1, Steady(celsius, noise_sd_c=0.03))  # real probes jitter
        self.board.send_now()

    def press_damaged(self, pin: int = 5) -> None:
        """The worker presses the station's "damaged" button (BCM ``pin``)."""
        mock = self.pin_factory.pin(pin)
        mock.drive_low()  # gpiozero's Button is pulled up: pressed reads low
        mock.drive_high()

    def pin_state(self, pin: int) -> int:
        """The state of an output pin (BCM numbering)."""
        return int(self.pin_factory.pin(pin).state)


class SimulatedHardware:
    """``edge.gateway.Hardware`` on simulated devices; close it (or use ``with``) when done.

    ``emit_frames``: boards send their scheduled frames as the clock moves (demo, tests);
    off for replays, where the captured bytes are the only thing on the line.
    """

    def __init__(self, clock: Callable[[], float], link_dir: Path | None = None, *,
                 probe_rate_hz: float = 0.1, emit_frames: bool = True) -> None:
        from gpiozero.pins.mock import MockFactory

        self.clock = clock
        self.emit_frames = emit_frames
        self.probe_rate_hz = probe_rate_hz
        self._exit = contextlib.ExitStack()
        if link_dir is None:
            link_dir = Path(self._exit.enter_context(tempfile.TemporaryDirectory(
                prefix="coldloop-tty-")))
        self.link_dir = link_dir
        self.bus = self._exit.enter_context(simulated_spi({}))
        self.pin_factory = MockFactory()
        self.stations: dict[str, SimStation] = {}
        self.devices = DeviceHardware(
            pin_factory=self.pin_factory, clock=clock,
            reader_address=lambda s: self.station(s).spi,
            probe_port=lambda s: str(self.station(s).board.path))

    def station(self, settings: StationSettings) -> SimStation:
        """The simulated devices of a station (built on first use)."""
        if settings.id not in self.stations:
            spi = (0, len(self.stations))
            chip = Mfrc522Chip(RfField())
            self.bus.chips[spi] = chip
            board = ProbeBoard(settings.id, [Steady(2.0, noise_sd_c=0.03)], self.probe_rate_hz,
                               self.clock, self.link_dir)
            self._exit.callback(board.close)
            self.stations[settings.id] = SimStation(settings.id, spi, chip, board,
                                                    self.pin_factory)
        return self.stations[settings.id]

    def tag_reader(self, station: StationSettings) -> Mfrc522Reader:
        """The real MFRC522 reader, on this station's simulated chip."""
        return self.devices.tag_reader(station)

    def probe(self, station: StationSettings) -> BoardProbe:
        """The real serial probe reader, on this station's pty board."""
        return self.devices.probe(station)

    def damage_button(self, station: StationSettings) -> DamageButton | None:
        """The real gpiozero button, on a mock pin."""
        return self.devices.damage_button(station)

    def indicator(self, station: StationSettings) -> LightTower:
        """The real light tower, on mock pins."""
        tower = self.devices.indicator(station)
        self.station(station).lights = tower
        return tower

    def poll(self) -> list[ProbeEvent]:
        """Let the boards send what is due by now, then poll them through the real reader."""
        if self.emit_frames:
            for devices in self.stations.values():
                devices.board.run_until()
        return self.devices.poll()

    def close(self) -> None:
        """Close readers, ports, pty boards and the simulated SPI scope."""
        self.devices.close()
        self._exit.close()

    def __enter__(self) -> SimulatedHardware:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
