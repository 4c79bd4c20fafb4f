"""Tap a running gateway's devices and write what they did as a capture.

The taps wrap the real adapters, so the same code records on a Raspberry Pi (real chip, real
serial port, real pins) and on simulated devices: the RFID reader's answers become card
events, the serial port's raw bytes and disappearances become serial events, the pins a
station drives become pin events, and the uplink's live state becomes link events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edge.hardware import DeviceHardware, ProbeEvent
from edge.indicators import DamageButton
from edge.ports import Indicator, Light, TagRead, TagReader, TemperatureProbe
from edge.probe import SerialFactory, SerialPort, pyserial_factory
from edge.settings import StationSettings
from firmware_sim.capture import (
    CaptureWriter,
    CardPresented,
    CardRemoved,
    LinkChange,
    PinChange,
    PortChange,
    serial_event,
)


@dataclass
class _TappedReader:
    """A TagReader that records cards entering and leaving the field."""

    inner: TagReader
    writer: CaptureWriter
    station: str
    _present: TagRead | None = None

    def read(self) -> TagRead | None:
        tag = self.inner.read()  # a ReaderFault passes through unrecorded (see docs)
        if tag != self._present:
            if self._present is not None:
                self.writer.write(CardRemoved(t=self.writer.now(), source=f"rfid:{self.station}"))
            if tag is not None:
                self.writer.write(CardPresented(t=self.writer.now(), source=f"rfid:{self.station}",
                                                uid=tag.uid, data=tag.data.hex()))
            self._present = tag
        return tag


@dataclass
class _TappedIndicator:
    """An Indicator that records every output pin it changed."""

    inner: Any  # LightTower
    writer: CaptureWriter
    station: str
    pins: dict[int, bool] = field(default_factory=dict)

    def show(self, light: Light) -> None:
        self.inner.show(light)
        for pin, on in self.inner.outputs().items():
            if self.pins.get(pin) != on:
                self.pins[pin] = on
                self.writer.write(PinChange(t=self.writer.now(), source=f"gpio:{self.station}",
                                            pin=pin, state=1 if on else 0))


@dataclass
class _TappedPort:
    """A serial port that records every byte read, and its loss."""

    inner: SerialPort
    record: Callable[[bytes], None]
    lost: Callable[[], None]

    @property
    def in_waiting(self) -> int:
        try:
            return self.inner.in_waiting
        except OSError:
            self.lost()
            raise

    def read(self, size: int = 1) -> bytes:
        try:
            data = self.inner.read(size)
        except OSError:
            self.lost()
            raise
        if data:
            self.record(data)
        return data

    def fileno(self) -> int:
        return self.inner.fileno()

    def close(self) -> None:
        self.inner.close()


class TappedHardware:
    """Wraps a gateway's hardware (built on ``DeviceHardware``) and records what it does."""

    def __init__(self, hardware: Any, devices: DeviceHardware, writer: CaptureWriter,
                 station_of_port: Callable[[str], str]) -> None:
        self.hardware = hardware
        self.writer = writer
        self._station_of_port = station_of_port
        self._open: dict[str, bool] = {}
        inner: SerialFactory = devices.serial_factory or pyserial_factory()
        devices.serial_factory = self._tapping(inner)
        self._live: bool | None = None

    def _tapping(self, inner: SerialFactory) -> SerialFactory:
        def open_port(port: str, baudrate: int) -> SerialPort:
            station = self._station_of_port(port)
            opened = inner(port, baudrate)
            if self._open.get(port) is False:
                self.writer.write(PortChange(t=self.writer.now(), source=f"serial:{station}",
                                             open=True))
            self._open[port] = True

            def lost() -> None:
                if self._open.get(port):
                    self._open[port] = False
                    self.writer.write(PortChange(t=self.writer.now(),
                                                 source=f"serial:{station}", open=False))

            return _TappedPort(opened, lambda data: self.writer.write(
                serial_event(self.writer.now(), station, data)), lost)
        return open_port

    def tag_reader(self, station: StationSettings) -> TagReader:
        """The station's reader, tapped."""
        return _TappedReader(self.hardware.tag_reader(station), self.writer, station.id)

    def probe(self, station: StationSettings) -> TemperatureProbe:
        """The station's probe (its port is tapped underneath)."""
        probe: TemperatureProbe = self.hardware.probe(station)
        return probe

    def indicator(self, station: StationSettings) -> Indicator:
        """The station's outputs, tapped."""
        return _TappedIndicator(self.hardware.indicator(station), self.writer, station.id)

    def damage_button(self, station: StationSettings) -> DamageButton | None:
        """The station's damage button (presses are not recorded in captures yet)."""
        button: DamageButton | None = self.hardware.damage_button(station)
        return button

    def poll(self) -> list[ProbeEvent]:
        """Poll the boards (their bytes are recorded as they are read)."""
        events: list[ProbeEvent] = self.hardware.poll()
        return events

    def note_link(self, live: bool) -> None:
        """Record the uplink's state when it changes."""
        if live != self._live:
            if self._live is not None or not live:
                self.writer.write(LinkChange(t=self.writer.now(), up=live))
            self._live = live

    def close(self) -> None:
        """Close the wrapped hardware."""
        self.hardware.close()
