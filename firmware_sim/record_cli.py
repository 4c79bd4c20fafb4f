"""``coldloop sim record``: run a gateway with tapped readers and write a capture."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from edge.gateway import build_gateway
from edge.settings import load_gateway_settings
from firmware_sim import capture
from firmware_sim.recording import TappedHardware

POLL_S = 0.05


def record_gateway(config: Path, data_dir: Path, out: Path, minutes: float,
                   stop: threading.Event | None = None,
                   overrides: dict[str, object] | None = None) -> int:
    """Run the configured gateway until ``minutes`` pass or ``stop`` is set; return events."""
    from datetime import UTC, datetime

    from edge.cli import hardware_for, wait_for_signal

    settings = load_gateway_settings(config, data_dir, overrides)
    hardware = hardware_for(settings)
    devices = getattr(hardware, "devices", hardware)  # SimulatedHardware wraps DeviceHardware
    stop = stop or wait_for_signal()
    ports = {str(devices.probe_port(s)): s.id for s in settings.stations}
    with out.open("w", encoding="utf-8") as handle:
        writer = capture.CaptureWriter(handle, capture.header(
            settings.id, settings.site, [s.id for s in settings.stations],
            datetime.now(UTC), note=f"recorded from {config.name}"), time.monotonic)
        tapped = TappedHardware(hardware, devices, writer, lambda port: ports.get(port, "?"))
        gateway = build_gateway(settings, tapped)
        gateway.start(poll_interval_s=None)
        deadline = time.monotonic() + minutes * 60 if minutes else None
        try:
            while not stop.wait(POLL_S):
                gateway.poll_once()
                tapped.note_link(gateway.uplink.is_live())
                if deadline is not None and time.monotonic() >= deadline:
                    break
        finally:
            gateway.stop()
    with out.open(encoding="utf-8") as handle:
        return sum(1 for _ in handle) - 1
