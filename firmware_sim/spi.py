"""Fake ``spidev`` and ``RPi.GPIO`` modules routing to simulated MFRC522 chips.

``simulated_spi`` installs them in ``sys.modules`` for the length of a ``with`` block and drops
cached ``mfrc522`` modules on entry and exit, so the unmodified driver imported inside the block
binds to the fakes and nothing leaks out of it. Each SPI transfer moves the chip's virtual time
by its bit time at ``max_speed_hz``, which is what makes the chip's timer expire. The SPI mode,
the chip's hard power-down through its reset pin and interrupts are not modelled.
"""

from __future__ import annotations

import errno
import logging
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, ClassVar

from firmware_sim.mfrc522_chip import Mfrc522Chip, RfField
from firmware_sim.mifare import MifareClassic1K

__all__ = ["FakeGpio", "SimulatedBus", "SimulatedReader", "SpiDev", "simulated_reader",
           "simulated_spi"]

_FAKED = ("spidev", "RPi", "RPi.GPIO")
_DRIVER_LOGGER = "mfrc522Logger"  # the driver adds a handler to it per instance
# Physical header pin -> BCM GPIO on every 40-pin Raspberry Pi.
_BOARD_TO_BCM = {
    3: 2, 5: 3, 7: 4, 8: 14, 10: 15, 11: 17, 12: 18, 13: 27, 15: 22, 16: 23, 18: 24, 19: 10,
    21: 9, 22: 25, 23: 11, 24: 8, 26: 7, 27: 0, 28: 1, 29: 5, 31: 6, 32: 12, 33: 13, 35: 19,
    36: 16, 37: 26, 38: 20, 40: 21,
}


@dataclass
class _Pin:
    direction: int
    level: int
    pull: int


class FakeGpio:
    """What ``RPi.GPIO`` keeps: the numbering mode and the pins, readable by tests."""

    BOARD, BCM = 10, 11
    OUT, IN = 0, 1
    LOW, HIGH = 0, 1
    PUD_OFF, PUD_DOWN, PUD_UP = 20, 21, 22
    RISING, FALLING, BOTH = 31, 32, 33

    def __init__(self) -> None:
        self.mode: int | None = None
        self.warnings = True
        self.pins: dict[int, _Pin] = {}  # by BCM number, whatever mode set them up
        self.history: list[tuple[int, int]] = []  # (BCM pin, level) of every output write

    def bcm(self, channel: int, numbering: int | None = None) -> int:
        """Return the BCM number of ``channel`` in ``numbering`` (default: the current mode)."""
        numbering = self.mode if numbering is None else numbering
        if numbering is None:
            raise RuntimeError("Please set pin numbering mode using GPIO.setmode(GPIO.BOARD) "
                               "or GPIO.setmode(GPIO.BCM)")
        if numbering == self.BOARD and channel in _BOARD_TO_BCM:
            return _BOARD_TO_BCM[channel]
        if numbering == self.BCM and 0 <= channel <= 27:
            return channel
        raise ValueError("The channel sent is invalid on a Raspberry Pi")

    def level(self, channel: int, numbering: int | None = None) -> int | None:
        """Return a pin's level, or None when it is not set up."""
        pin = self.pins.get(self.bcm(channel, numbering))
        return None if pin is None else pin.level

    def setmode(self, mode: int) -> None:
        """Choose BOARD or BCM numbering, once."""
        if mode not in (self.BOARD, self.BCM):
            raise ValueError("An invalid mode was passed to setmode()")
        if self.mode is not None and mode != self.mode:
            raise ValueError("A different mode has already been set!")
        self.mode = mode

    def getmode(self) -> int | None:
        """Return the numbering mode, None if not set."""
        return self.mode

    def setwarnings(self, flag: bool) -> None:
        """Enable or disable warnings."""
        self.warnings = bool(flag)

    def setup(self, channel: int | Sequence[int], direction: int, pull_up_down: int = 20,
              initial: int = -1) -> None:
        """Set up one or more channels as inputs or outputs."""
        if direction not in (self.IN, self.OUT):
            raise ValueError("An invalid direction was passed to setup()")
        if direction == self.OUT and pull_up_down != self.PUD_OFF:
            raise ValueError("pull_up_down parameter is not valid for outputs")
        for bcm in self._channels(channel):
            level = (1 if pull_up_down == self.PUD_UP else 0) if direction == self.IN else (
                1 if initial == self.HIGH else 0)
            self.pins[bcm] = _Pin(direction, level, pull_up_down)

    def output(self, channel: int | Sequence[int], value: int | Sequence[int]) -> None:
        """Drive output channels high or low."""
        channels = self._channels(channel)
        values = list(value) if isinstance(value, Sequence) else [value] * len(channels)
        for bcm, level in zip(channels, values, strict=True):
            pin = self.pins.get(bcm)
            if pin is None or pin.direction != self.OUT:
                raise RuntimeError("The GPIO channel has not been set up as an OUTPUT")
            pin.level = 1 if level else 0
            self.history.append((bcm, pin.level))

    def input(self, channel: int) -> int:
        """Read a channel's level."""
        pin = self.pins.get(self.bcm(channel))
        if pin is None:
            raise RuntimeError("You must setup() the GPIO channel first")
        return pin.level

    def cleanup(self, channel: int | Sequence[int] | None = None) -> None:
        """Release channels (all of them, and the numbering mode, without an argument)."""
        if channel is None:
            self.pins.clear()
        else:
            for bcm in self._channels(channel):
                self.pins.pop(bcm, None)
        if not self.pins:
            self.mode = None

    def _channels(self, channel: int | Sequence[int]) -> list[int]:
        channels = list(channel) if isinstance(channel, Sequence) else [channel]
        return [self.bcm(c) for c in channels]


class SpiDev:
    """``spidev.SpiDev`` on a simulated bus (``simulated_spi`` binds a subclass to its bus)."""

    _bus: ClassVar[SimulatedBus]

    def __init__(self, bus: int | None = None, device: int | None = None) -> None:
        self._chip: Mfrc522Chip | None = None
        self.mode = 0
        self.max_speed_hz = 125_000_000  # the Raspberry Pi kernel driver's default
        self.bits_per_word = 8
        self.cshigh = self.lsbfirst = self.threewire = self.loop = self.no_cs = False
        if bus is not None and device is not None:
            self.open(bus, device)

    def open(self, bus: int, device: int) -> None:
        """Open /dev/spidev<bus>.<device>."""
        chip = self._bus.chips.get((bus, device))
        if chip is None:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory",
                                    f"/dev/spidev{bus}.{device}")
        self._chip = chip

    def close(self) -> None:
        """Close the device."""
        self._chip = None

    def xfer2(self, values: Sequence[int], speed_hz: int = 0, delay_usecs: int = 0,
              bits_per_word: int = 0) -> list[int]:
        """Clock ``values`` out with chip select held; return the bytes clocked in."""
        if self._chip is None:
            raise OSError(errno.EBADF, "Bad file descriptor")
        # Stricter than spidev, which truncates silently: a simulator should expose the bug.
        for value in values:
            if not isinstance(value, int) or not 0 <= value <= 0xFF:
                raise ValueError(f"SPI bytes must be ints 0..255, got {value!r}")
        speed = speed_hz or self.max_speed_hz
        self._chip.advance(len(values) * 8 * 1_000_000_000 // speed + delay_usecs * 1000)
        self._bus.transfers += 1
        return self._chip.spi_transfer(values)

    xfer = xfer2
    xfer3 = xfer2

    def readbytes(self, count: int) -> list[int]:
        """Clock in ``count`` bytes while sending zeros."""
        return self.xfer2([0] * count)

    def writebytes(self, values: Sequence[int]) -> None:
        """Clock out ``values``, ignoring what comes back."""
        self.xfer2(values)


class SimulatedBus:
    """The fake modules of one ``simulated_spi`` scope and the chips they reach."""

    def __init__(self, chips: Mapping[tuple[int, int], Mfrc522Chip]) -> None:
        self.chips = dict(chips)
        self.gpio = FakeGpio()
        self.transfers = 0
        self.spidev = ModuleType("spidev", "Simulated spidev (firmware_sim.spi).")
        self.spidev.SpiDev = type("SpiDev", (SpiDev,), {"_bus": self})  # type: ignore[attr-defined]
        self.rpi_gpio = ModuleType("RPi.GPIO", "Simulated RPi.GPIO (firmware_sim.spi).")
        for name in ("BOARD", "BCM", "OUT", "IN", "LOW", "HIGH", "PUD_OFF", "PUD_DOWN", "PUD_UP",
                     "RISING", "FALLING", "BOTH", "setmode", "getmode", "setwarnings", "setup",
                     "output", "input", "cleanup"):
            setattr(self.rpi_gpio, name, getattr(self.gpio, name))
        self.rpi_gpio.VERSION = "0.7.1 (simulated)"  # type: ignore[attr-defined]
        self.rpi = ModuleType("RPi", "Simulated RPi package (firmware_sim.spi).")
        self.rpi.__path__ = []  # a package, so ``import RPi.GPIO`` resolves
        self.rpi.GPIO = self.rpi_gpio  # type: ignore[attr-defined]

    def modules(self) -> dict[str, ModuleType]:
        """The entries this bus puts in ``sys.modules``."""
        return {"spidev": self.spidev, "RPi": self.rpi, "RPi.GPIO": self.rpi_gpio}


def _pop_driver_modules() -> dict[str, Any]:
    names = [n for n in sys.modules if n == "mfrc522" or n.startswith("mfrc522.")]
    return {name: sys.modules.pop(name) for name in names}


@contextmanager
def simulated_spi(chips: Mapping[tuple[int, int], Mfrc522Chip]) -> Iterator[SimulatedBus]:
    """Install fake ``spidev``/``RPi.GPIO`` reaching ``chips`` by (bus, device) for a block."""
    bus = SimulatedBus(chips)
    saved = {name: sys.modules[name] for name in _FAKED if name in sys.modules}
    saved_driver = _pop_driver_modules()
    driver_logger = logging.getLogger(_DRIVER_LOGGER)
    saved_handlers, saved_level = list(driver_logger.handlers), driver_logger.level
    sys.modules.update(bus.modules())
    try:
        yield bus
    finally:
        for name in _FAKED:
            sys.modules.pop(name, None)
        _pop_driver_modules()
        sys.modules.update(saved)
        sys.modules.update(saved_driver)
        # Each MFRC522() adds a StreamHandler to the driver's logger; keep that inside the scope.
        driver_logger.handlers[:] = saved_handlers
        driver_logger.setLevel(saved_level)


@dataclass
class SimulatedReader:
    """One MFRC522 on SPI with its field, inside a ``simulated_spi`` scope."""

    chip: Mfrc522Chip
    bus: SimulatedBus
    field: RfField = field(init=False)

    def __post_init__(self) -> None:
        self.field = self.chip.field

    def present_tag(self, uid: str | bytes, data: bytes | None = None, *,
                    first_block: int = 8) -> MifareClassic1K:
        """Lay a new card on the antenna, ``data`` in the blocks from ``first_block`` on."""
        card = MifareClassic1K(bytes.fromhex(uid) if isinstance(uid, str) else uid)
        data = data or b""
        for k in range(0, len(data), 16):
            block = first_block + k // 16
            if block % 4 == 3:
                raise ValueError(f"data would overwrite sector trailer {block}")
            card.write_block(block, data[k:k + 16].ljust(16, b"\0"))
        self.field.present(card)
        return card


@contextmanager
def simulated_reader(*cards: MifareClassic1K, bus: int = 0,
                     device: int = 0) -> Iterator[SimulatedReader]:
    """Build one chip with ``cards`` in its field at (bus, device) and enter ``simulated_spi``."""
    chip = Mfrc522Chip(RfField(*cards))
    with simulated_spi({(bus, device): chip}) as spi:
        yield SimulatedReader(chip, spi)
