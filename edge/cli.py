"""``coldloop edge``: run a gateway."""

from __future__ import annotations

import signal
import threading

import click

from edge.settings import load_gateway_settings
from hub.console import data_dir
from protocols.config import ConfigError


@click.group()
def edge() -> None:
    """Run a scan-station gateway."""


@edge.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), required=True,
              help="Gateway settings (TOML).")
@click.pass_context
def run(ctx: click.Context, config_path: str) -> None:
    """Run the gateway until SIGINT/SIGTERM."""
    from edge.gateway import build_gateway

    try:
        settings = load_gateway_settings(config_path, data_dir(ctx))
    except ConfigError as err:
        raise click.ClickException(str(err)) from None
    unsupported = [f"{s.id}: reader={s.reader!r} probe={s.probe!r}" for s in settings.stations
                   if s.reader != "sim" or s.probe != "sim"]
    if unsupported:
        raise click.ClickException(
            "this build drives simulated stations only (reader = \"sim\", probe = \"sim\"); "
            "not supported: " + "; ".join(unsupported))
    from firmware_sim.devices import SimulatedHardware

    gateway = build_gateway(settings, SimulatedHardware())
    gateway.start()
    click.echo(f"gateway {settings.id} (boot {gateway.boot}) linked to {settings.mqtt.url}")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    gateway.stop()
