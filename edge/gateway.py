"""The composition root of a gateway: settings + hardware -> stations, outbox and uplink."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from edge.commands import CommandHandler
from edge.errors import OutboxFull
from edge.grader import RuleGrader
from edge.health import HealthSampler
from edge.indicators import DamageButton
from edge.manifest import Manifest, manifest_path
from edge.outbox import DiskLevel, Outbox
from edge.ports import Grader, Indicator, TagReader, TemperatureProbe
from edge.probe import ProbeFault
from edge.recorder import Clock, Recorder
from edge.settings import GatewaySettings, StationSettings
from edge.shadow import ShadowGrader, ShadowVerdict
from edge.station import ScanOutcome, Station
from edge.telemetry import TelemetryPump
from edge.uplink import Uplink
from edge.watchdog import Heartbeat
from protocols.messages import ClockState
from protocols.probe_frame import ProbeFrame

logger = logging.getLogger(__name__)


class Hardware(Protocol):
    """Builds a station's devices: real drivers on a Pi, firmware_sim elsewhere."""

    def damage_button(self, station: StationSettings) -> DamageButton | None:
        """Return the station's "damaged" button, or None when it has none."""
        ...

    def poll(self) -> list[tuple[str, ProbeFrame | ProbeFault]]:
        """Poll the probe boards; return (port, frame or fault) since the last call."""
        ...

    def close(self) -> None:
        """Release every device."""
        ...

    def tag_reader(self, station: StationSettings) -> TagReader:
        """Return the RFID reader of a station."""
        ...

    def probe(self, station: StationSettings) -> TemperatureProbe:
        """Return the core-temperature probe of a station."""
        ...

    def indicator(self, station: StationSettings) -> Indicator:
        """Return the lights and buzzer of a station."""
        ...


@dataclass
class Gateway:
    """A running gateway: its stations, outbox and uplink."""

    settings: GatewaySettings
    hardware: Hardware
    outbox: Outbox
    uplink: Uplink
    recorder: Recorder
    telemetry: TelemetryPump
    stations: dict[str, Station]
    boot: int
    heartbeat: Heartbeat | None = None
    manifest: Manifest | None = None
    health: HealthSampler = field(init=False)
    _health_at: float | None = None
    _started_at: float = 0.0

    def __post_init__(self) -> None:
        self.health = HealthSampler(
            self.settings.data_dir, outbox_depth=self.outbox.depth,
            reader_errors=lambda: sum(s.reader_errors for s in self.stations.values()))
    _stop: threading.Event = field(default_factory=threading.Event)
    _poller: threading.Thread | None = None

    def start(self, poll_interval_s: float | None = 0.05) -> None:
        """Start the uplink and, unless ``poll_interval_s`` is None, a thread polling the pads."""
        self.uplink.start()
        if poll_interval_s is not None:
            if self.heartbeat is not None:
                self.heartbeat.register("stations")
            self._poller = threading.Thread(target=self._poll_forever, args=(poll_interval_s,),
                                            name=f"stations-{self.settings.id}", daemon=True)
            self._poller.start()

    def poll_once(self) -> list[ScanOutcome]:
        """Poll the probe boards and every station's pad once; return the new scans."""
        level = self.outbox.disk_level()
        self.uplink.set_alarms(set() if level is DiskLevel.OK else {f"disk_{level.value}"})
        for port, item in self.hardware.poll():
            self.telemetry.take(port, item)
        outcomes = [o for o in (s.poll() for s in self.stations.values()) if o is not None]
        for port, item in self.hardware.poll():  # what the stations' probe reads pulled in
            self.telemetry.take(port, item)
        self.telemetry.flush_due()
        self._report_health()
        return outcomes

    def _report_health(self) -> None:
        now = self.recorder.clock()
        every = self.settings.telemetry.health_interval_s
        if self._health_at is not None and now - self._health_at < every:
            return
        if self._health_at is None:
            self._started_at = now
        self._health_at = now
        values = self.health.sample()
        values["dead_letters"] = len(self.outbox.dead_letters())
        # On a full disk the alarm is already raised; health is the first thing to give up.
        with contextlib.suppress(OutboxFull):
            self.recorder.commit_health(values, uptime_s=now - self._started_at)

    def _poll_forever(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.poll_once()
            if self.heartbeat is not None:
                self.heartbeat.beat("stations")

    def stop(self) -> None:
        """Stop polling, close the link cleanly and close the outbox."""
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=5)
        self.telemetry.flush()
        self.uplink.stop()
        self.outbox.close()
        self.hardware.close()


def build_gateway(settings: GatewaySettings, hardware: Hardware, *,
                  grader: Grader | None = None, clock: Clock = time.time,
                  clock_state: Callable[[], ClockState] | None = None,
                  heartbeat: Heartbeat | None = None) -> Gateway:
    """Wire a gateway from its settings and the hardware it runs on."""
    manifest = Manifest(manifest_path(settings), settings.site, clock)
    key = settings.grader.public_key
    commands = CommandHandler(settings, manifest, clock=clock,
                              model_public_key=bytes.fromhex(key) if key else None)
    settings = commands.settings  # the file's settings plus what the hub changed remotely
    outbox = Outbox(settings.outbox_path, settings.outbox.max_attempts,
                    telemetry_reserve_mb=settings.outbox.telemetry_reserve_mb,
                    event_reserve_mb=settings.outbox.event_reserve_mb)
    boot = outbox.next_boot()
    if heartbeat is not None:
        heartbeat.register("uplink")
    uplink = Uplink(settings, outbox, boot, clock, protocol_v5=settings.mqtt.protocol == "5",
                    clock_state=clock_state,
                    on_progress=(lambda: heartbeat.beat("uplink")) if heartbeat else None,
                    commands=commands)
    recorder = Recorder(settings.id, settings.site, boot, outbox, clock, is_live=uplink.is_live,
                        clock_state=clock_state or (lambda: ClockState.SYNCED))
    if grader is None:
        grader = RuleGrader()
        active = commands.models.active()
        if active is not None and settings.grader.kind == "tflite":
            settings = settings.model_copy(update={"grader": settings.grader.model_copy(
                update={"model": active})})  # a model the hub delivered earlier
        if settings.grader.kind == "tflite":  # a refused model leaves the rule grader in place
            from edge.tflite_grader import MODELS_DIR, load_grader

            grader = load_grader(settings.grader.model or MODELS_DIR / "grader-1.tflite", grader)
    shadow = ShadowGrader(grader)
    stations: dict[str, Station] = {}
    station_of_port: dict[str, str] = {}
    for s in settings.stations:
        probe = hardware.probe(s)
        port = getattr(getattr(probe, "board", None), "port", None)
        if port is not None:
            station_of_port.setdefault(port, s.id)  # a shared board's faults go to its first
        stations[s.id] = Station(s.id, hardware.tag_reader(s), probe, hardware.indicator(s),
                                 shadow, recorder, is_known=manifest.is_known,
                                 lookup=manifest.lookup, damaged=_pressed(hardware, s))
    pump = TelemetryPump(recorder, settings.telemetry, station_of_port)

    def on_model(path: Path) -> None:  # a refused file raises: the handler undoes the install
        from edge.tflite_grader import TfliteGrader

        shadow.offer(TfliteGrader(path))

    def on_verdict(verdict: ShadowVerdict) -> None:
        uplink.send_later(commands.model_decided(verdict.candidate, verdict.scans,
                                                 verdict.agreement, verdict.promoted))

    shadow.on_verdict = on_verdict
    commands.on_model = on_model

    def apply_settings(changed: GatewaySettings) -> None:
        uplink.apply_settings(changed)
        pump.settings = changed.telemetry

    commands.on_change = apply_settings
    commands.resync = uplink.resync
    logger.info("gateway %s boot %d with stations %s", settings.id, boot, sorted(stations))
    return Gateway(settings, hardware, outbox, uplink, recorder, pump, stations, boot, heartbeat,
                   manifest)


def _pressed(hardware: Hardware, station: StationSettings) -> Callable[[], bool] | None:
    """The station's damage button as a "pressed since the last scan?" callable, if any."""
    button = hardware.damage_button(station)
    return button.take if button is not None else None
