"""``coldloop sim`` (scenarios) and ``coldloop demo`` (the whole loop on real components)."""

from __future__ import annotations

import json
import shutil
import signal
import threading
from pathlib import Path

import click

from hub.console import data_dir, data_dir_overrides


@click.group()
def sim() -> None:
    """Simulated devices, scenarios and captures."""


@sim.command()
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--minutes", type=click.IntRange(1, 24 * 60), default=60, show_default=True)
def scenario(seed: int, minutes: int) -> None:
    """Print a seeded scenario (orders and complaints) as JSON Lines."""
    from firmware_sim.scenario import generate

    generated = generate(seed, minutes)
    for complaint in generated.complaints:
        record = {"at": complaint.at.isoformat(), "order": complaint.order.order_id,
                  "item": complaint.item.item_id, "product": complaint.item.product.name,
                  "channel": complaint.channel, "text": complaint.text,
                  "core_temp_c": complaint.core_temp_c}
        click.echo(json.dumps(record, ensure_ascii=False))


@sim.command()
@click.argument("capture_path", metavar="CAPTURE", type=click.Path(dir_okay=False, exists=True))
@click.option("--speed", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Pace events at this multiple of real time (0: as fast as possible).")
@click.option("--broker", default=None, metavar="mqtt://HOST:PORT",
              help="Use this MQTT broker instead of starting an embedded one.")
@click.option("--summary", "summary_path", type=click.Path(dir_okay=False), default=None,
              help="Write the result JSON here.")
@click.pass_context
def replay(ctx: click.Context, capture_path: str, speed: float, broker: str | None,
           summary_path: str | None) -> None:
    """Replay a capture into simulated devices under a real gateway and hub."""
    from rich.progress import Progress

    from firmware_sim.capture import CaptureError, load
    from firmware_sim.replay import ReplayError, replay_capture

    try:
        capture = load(Path(capture_path))
    except CaptureError as err:
        raise click.ClickException(str(err)) from None
    out_dir = Path(data_dir(ctx)) / "replays" / Path(capture_path).stem
    if out_dir.exists():
        shutil.rmtree(out_dir)  # a replay starts from an empty hub and gateway every time
    with Progress(transient=True) as progress:
        task = progress.add_task(f"replaying {Path(capture_path).name}",
                                 total=len(capture.events))
        try:
            result = replay_capture(capture, out_dir, broker=broker, speed=speed,
                                    progress=lambda n: progress.advance(task, n))
        except ReplayError as err:
            raise click.ClickException(str(err)) from None
    text = json.dumps({"capture": capture_path, **result.as_dict()}, indent=2)
    if summary_path:
        Path(summary_path).write_text(text + "\n")
    click.echo(text)
    if result.pin_mismatches:
        raise click.ClickException(f"{len(result.pin_mismatches)} output pins differ from the "
                                   "capture: see pin_mismatches")


@sim.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), required=True,
              help="The gateway's settings (TOML).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), required=True,
              help="Capture file to write (JSON Lines).")
@click.option("--minutes", type=click.FloatRange(min=0), default=0.0,
              help="Stop after this long (0: until Ctrl-C).")
@click.pass_context
def record(ctx: click.Context, config_path: str, out_path: str, minutes: float) -> None:
    """Run a gateway with its readers tapped and write what they did as a capture."""
    from firmware_sim.record_cli import record_gateway
    from protocols.config import ConfigError

    try:
        events = record_gateway(Path(config_path), Path(data_dir(ctx)), Path(out_path),
                                minutes, overrides=data_dir_overrides(ctx))
    except ConfigError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"wrote {events} events to {out_path}")


@sim.command("make-capture")
@click.argument("kind", type=click.Choice(["normal_shift", "outage", "faulty_probe"]))
@click.argument("out_path", metavar="OUT", type=click.Path(dir_okay=False))
@click.option("--seed", type=int, default=1, show_default=True)
def make_capture(kind: str, out_path: str, seed: int) -> None:
    """Record a scripted shift on simulated devices (how tests/captures/ are made)."""
    from firmware_sim.shifts import record_shift

    events = record_shift(kind, Path(out_path), seed)
    click.echo(f"wrote {events} events to {out_path}")


@click.command()
@click.option("--broker", default=None, metavar="mqtt://HOST:PORT",
              help="Use this MQTT broker instead of starting an embedded one.")
@click.option("--headless", is_flag=True, help="Run the scenario, write the summary, exit.")
@click.option("--minutes", type=click.IntRange(1, 24 * 60), default=10, show_default=True,
              help="Length of the simulated shift.")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--summary", "summary_path", type=click.Path(dir_okay=False), default=None,
              help="Write the summary JSON here.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="Web UI port (interactive mode).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Hub settings (TOML).")
@click.pass_context
def demo(ctx: click.Context, broker: str | None, headless: bool, minutes: int, seed: int,
         summary_path: str | None, port: int, config_path: str | None) -> None:
    """Run the whole loop: complaint, pickup, scan, grade, MQTT, hub, web UI."""
    from firmware_sim.demo import (
        DEMO_AGENT_PASSWORD,
        DEMO_AGENTS,
        DemoOptions,
        check_broker_url,
        run_demo,
    )
    from protocols.config import ConfigError

    if broker is not None:
        try:
            check_broker_url(broker)
        except ValueError as err:
            raise click.BadParameter(str(err), param_hint="--broker") from None
    try:
        where = Path(data_dir(ctx))
        if config_path:  # the hub and the gateway share the directory the settings give
            from hub.settings import load_hub_settings

            where = load_hub_settings(config_path, where, data_dir_overrides(ctx)).data_dir
        options = DemoOptions(where, broker, minutes, seed, headless, port,
                              Path(config_path) if config_path else None)
        summary, stack = run_demo(options)
    except ConfigError as err:
        raise click.ClickException(str(err)) from None
    try:
        text = json.dumps(summary, indent=2, ensure_ascii=False)
        if summary_path:
            Path(summary_path).write_text(text + "\n")
        click.echo(text)
        if not summary["consistent"]:
            raise click.ClickException("the summary is inconsistent: see the counts above")
        if not headless:
            click.echo(f"\ncoldloop is running at {summary['web_url']}  "
                       f"(admin login: {summary['admin_user']} / see hub settings "
                       f"web.admin_password, default 'coldloop-admin'; agents "
                       f"{', '.join(DEMO_AGENTS)} / {DEMO_AGENT_PASSWORD})\nCtrl-C to stop.")
            _wait_for_signal()
    finally:
        stack.stop()


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
