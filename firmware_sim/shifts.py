"""Scripted shifts on simulated devices, recorded through the same taps as a real gateway.

They make the captures shipped under ``tests/captures/``: a normal shift, a shift with a hub
outage in the middle, and a shift with a faulty probe board. Regenerate them with
``coldloop sim make-capture KIND OUT``.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from edge.gateway import Gateway, build_gateway
from edge.settings import GatewaySettings
from firmware_sim import capture
from firmware_sim.clock import VirtualClock
from firmware_sim.devices import SimStation, SimulatedHardware
from firmware_sim.recording import TappedHardware
from firmware_sim.scenario import EPOCH, generate
from firmware_sim.stack import Stack, start_stack

KINDS = ("normal_shift", "outage", "faulty_probe")
SITE, GATEWAY, STATION = "capture-sc1", "gw-cap-01", "st-1"
SHIFT_S = 480  # an eight-minute slice of a shift
ITEM_EVERY_S = 40


def record_shift(kind: str, out: Path, seed: int = 1) -> int:
    """Run the scripted shift ``kind`` and write its capture to ``out``; return the events."""
    if kind not in KINDS:
        raise ValueError(f"unknown shift {kind!r}; choose one of {KINDS}")
    with tempfile.TemporaryDirectory(prefix="coldloop-shift-") as tmp:
        clock = VirtualClock(EPOCH)
        stack = start_stack(Path(tmp), sites=[SITE], clock=clock.now)
        try:
            return _record(kind, out, seed, stack, Path(tmp), clock)
        finally:
            stack.stop()


def _record(kind: str, out: Path, seed: int, stack: Stack, data_dir: Path,
            clock: VirtualClock) -> int:
    hardware = SimulatedHardware(clock, data_dir / "tty", probe_rate_hz=1.0)
    settings = GatewaySettings.model_validate({
        "id": GATEWAY, "site": SITE, "data_dir": data_dir,
        "mqtt": stack.gateway_mqtt(),
        "stations": [{"id": STATION}]})
    station_settings = settings.stations[0]
    devices = hardware.station(station_settings)
    with out.open("w", encoding="utf-8") as handle:
        writer = capture.CaptureWriter(handle, capture.header(
            GATEWAY, SITE, [STATION], clock.now(), note=f"{kind}, seed {seed}"), clock)
        tapped = TappedHardware(hardware, hardware.devices, writer,
                                lambda port: STATION)
        gateway = build_gateway(settings, tapped, clock=clock)
        stack.on_stop(gateway.stop)
        gateway.start(poll_interval_s=None)
        if not gateway.uplink.wait_live(True, 30):
            raise RuntimeError("the recording gateway never saw the hub online")
        script = _SCRIPTS[kind](devices, stack, gateway, random.Random(seed))
        items = iter(generate(seed, 60).complaints)
        for second in range(SHIFT_S + 1):
            clock.advance_to(EPOCH + timedelta(seconds=second))
            script(second)
            if second % ITEM_EVERY_S == 5:
                complaint = next(items)
                devices.set_core_temperature(complaint.core_temp_c)
                devices.present_tag(complaint.item.tag_uid, complaint.item.tag)
            elif second % ITEM_EVERY_S == 9:
                devices.remove_tag()
            _step(gateway, tapped)
        gateway.telemetry.flush()
        gateway.uplink.wait_drained(30)
    with out.open(encoding="utf-8") as handle:
        lines = sum(1 for _ in handle) - 1
    return lines


def _step(gateway: Gateway, tapped: TappedHardware) -> None:
    gateway.poll_once()
    tapped.note_link(gateway.uplink.is_live())


def _normal(devices: SimStation, stack: Stack, gateway: Gateway,
            rng: random.Random) -> Callable[[int], None]:
    return lambda second: None


def _outage(devices: SimStation, stack: Stack, gateway: Gateway,
            rng: random.Random) -> Callable[[int], None]:
    def step(second: int) -> None:
        if second in (150, 270):  # the hub goes away for two minutes
            stack.stop_ingest() if second == 150 else stack.start_ingest()
            if not gateway.uplink.wait_live(second == 270, 30):
                raise RuntimeError("the recording gateway did not notice the hub change")

    return step


def _faulty_probe(devices: SimStation, stack: Stack, gateway: Gateway,
                  rng: random.Random) -> Callable[[int], None]:
    board = devices.board

    def step(second: int) -> None:
        if second in (30, 31, 200):
            board.inject_noise(12, rng)
        elif second == 60:
            board.send_truncated()
        elif second == 90:
            board.send_corrupt()
        elif second == 120:
            board.unplug(1)
        elif second == 150:
            board.replug(1)
        elif second == 220:
            board.stick(1)
        elif second == 300:
            board.unstick(1)
        elif second == 330:
            board.disconnect()
        elif second == 350:
            board.reconnect()
        elif second == 400:
            board.sensor_error(1)
        elif second == 420:
            board.clear_error(1)

    return step


Script = Callable[[SimStation, Stack, Gateway, random.Random], Callable[[int], None]]
_SCRIPTS: dict[str, Script] = {
    "normal_shift": _normal, "outage": _outage, "faulty_probe": _faulty_probe}
