"""``coldloop edge``: run a gateway."""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

import click

from edge.settings import GatewaySettings, load_gateway_settings
from hub.console import data_dir, data_dir_overrides
from protocols.config import ConfigError


def load_settings(ctx: click.Context, config_path: str) -> GatewaySettings:
    """Load gateway settings or fail with the file, key and expectation."""
    try:
        return load_gateway_settings(config_path, data_dir(ctx), data_dir_overrides(ctx))
    except ConfigError as err:
        raise click.ClickException(str(err)) from None


def hardware_for(settings: GatewaySettings) -> Any:
    """Real drivers on real devices, or (every station "sim") the same drivers on firmware_sim."""
    simulated = [s.reader == "sim" and s.probe == "sim" for s in settings.stations]
    if all(simulated):
        from firmware_sim.devices import SimulatedHardware

        return SimulatedHardware(time.time, probe_rate_hz=1.0)
    if any(simulated) or any(s.reader == "sim" or s.probe == "sim" for s in settings.stations):
        raise click.ClickException(
            "either every station is simulated (reader = probe = \"sim\") or none is")
    from gpiozero.pins.lgpio import LGPIOFactory  # the RPi.GPIO mode is the reader's

    from edge.hardware import DeviceHardware

    return DeviceHardware(pin_factory=LGPIOFactory())


def wait_for_signal(stop: threading.Event | None = None) -> threading.Event:
    """Return an event set by SIGINT/SIGTERM."""
    stop = stop or threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


@click.group()
def edge() -> None:
    """Run a scan-station gateway."""


@edge.command("train-grader")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="edge/models",
              show_default=True)
@click.option("--version", default="grader-1", show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--size", type=click.IntRange(1000), default=40_000, show_default=True)
def train_grader(out_dir: str, version: str, seed: int, size: int) -> None:
    """Train the grader on generated data; write VERSION.tflite and its model card."""
    from pathlib import Path

    try:
        from edge.train_grader import train
        card = train(Path(out_dir), version, seed, size)
    except ImportError as err:
        raise click.ClickException(f"training needs TensorFlow ({err.name}): "
                                   "pip install 'coldloop[train]'") from None
    metrics = card["metrics_held_out"]
    click.echo(f"{version}: accuracy {metrics['accuracy']}, recall {metrics['recall']}, "
               f"sha256 {card['sha256']}")


@edge.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), required=True,
              help="Gateway settings (TOML).")
@click.pass_context
def run(ctx: click.Context, config_path: str) -> None:
    """Run the gateway until SIGINT/SIGTERM."""
    from edge.clocksync import ClockMonitor
    from edge.gateway import build_gateway
    from edge.watchdog import Heartbeat, SystemdNotifier, watchdog_interval_s

    settings = load_settings(ctx, config_path)
    notifier = SystemdNotifier.from_env()
    heartbeat = Heartbeat(notifier)
    monitor = ClockMonitor(marker=settings.data_dir / "gateways" / settings.id / "clock-synced")
    gateway = build_gateway(settings, hardware_for(settings), clock_state=monitor.state,
                            heartbeat=heartbeat)
    gateway.start()
    notifier.ready(status=f"gateway {settings.id} boot {gateway.boot}")
    click.echo(f"gateway {settings.id} (boot {gateway.boot}) linked to {settings.mqtt.url}")
    stop = wait_for_signal()
    interval = watchdog_interval_s()
    if interval:  # pet systemd only while every component shows progress
        threading.Thread(target=heartbeat.run, args=(stop, interval), name="watchdog",
                         daemon=True).start()
    stop.wait()
    notifier.stopping()
    gateway.stop()
    notifier.close()
