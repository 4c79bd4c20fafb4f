"""``coldloop hub``: migrate the database, run ingest and the web UI."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import click

from hub.console import data_dir, data_dir_overrides
from hub.settings import MAX_INGEST_WORKERS, HubSettings, load_hub_settings
from protocols.config import ConfigError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from hub.influx import InfluxSink
    from hub.ingest_supervisor import IngestSupervisor
    from hub.mqtt_consumer import IngestWorker

logger = logging.getLogger(__name__)

config_option = click.option("--config", "config_path", type=click.Path(dir_okay=False),
                             default=None, help="Hub settings (TOML); defaults if omitted.")


def _settings(ctx: click.Context, config_path: str | None,
              overrides: dict[str, object] | None = None) -> HubSettings:
    try:
        return load_hub_settings(config_path, data_dir(ctx),
                                 {**data_dir_overrides(ctx), **(overrides or {})})
    except ConfigError as err:
        raise click.ClickException(str(err)) from None


@click.group()
def hub() -> None:
    """Run and administer the hub."""


@hub.command()
@config_option
@click.option("--revision", default="head", show_default=True)
@click.pass_context
def migrate(ctx: click.Context, config_path: str | None, revision: str) -> None:
    """Create or upgrade the hub database."""
    from hub.db import migrate as run_migrations

    settings = _settings(ctx, config_path)
    run_migrations(settings.database_url, revision)
    click.echo(f"database at revision {revision}")


@hub.command()
@config_option
@click.option("--workers", type=click.IntRange(1, MAX_INGEST_WORKERS), default=None,
              help="Worker processes on one MQTT v5 shared subscription (mqtt.share_group), "
                   "kept running by this one [default: ingest.workers, 1].")
@click.option("--worker-index", type=click.IntRange(0, MAX_INGEST_WORKERS - 1), default=None,
              hidden=True, help="Internal: run as worker K of a supervisor "
                                "(hub.ingest_supervisor); stop when stdin closes.")
@click.pass_context
def ingest(ctx: click.Context, config_path: str | None, workers: int | None,
           worker_index: int | None) -> None:
    """Run ingest: one worker, or --workers N processes sharing the load over MQTT v5."""
    settings = _settings(ctx, config_path, {"ingest.workers": workers} if workers else None)
    stop = _stop_on_signal()
    died = _DeathWatch(stop)
    if worker_index is not None:  # a supervisor's child: one worker, stops with its parent
        _stop_when_stdin_closes(stop)
        running = _start_ingest(settings, worker_index=worker_index, on_death=died.set)
    else:
        running = _start_ingest(settings, children=_child_command(ctx, settings, config_path),
                                in_process=settings.ingest.workers == 1, on_death=died.set)
        count = settings.ingest.workers
        click.echo(f"ingesting from {settings.mqtt.url}"
                   f"{f' with {count} worker processes' if count > 1 else ''}; Ctrl-C to stop")
    stop.wait()
    _stop_ingest(running)
    died.exit_if_died()


@hub.command()
@config_option
@click.pass_context
def serve(ctx: click.Context, config_path: str | None) -> None:
    """Run ingest and the web UI / JSON API in one process (more workers: ingest.workers)."""
    from werkzeug.serving import make_server

    from hub.web import create_app

    settings = _settings(ctx, config_path)
    stop = _stop_on_signal()
    died = _DeathWatch(stop)
    running = _start_ingest(settings, children=_child_command(ctx, settings, config_path),
                            on_death=died.set)
    engine = running.engine
    from hub.db import session_factory
    from hub.fleet_watch import FleetWatch
    from hub.ledger_writer import LedgerWriter, signing_key

    app = create_app(settings, factory=session_factory(engine))
    watch = FleetWatch(session_factory(engine), settings.fleet)  # evaluates fleet alarms
    watch.start()
    key = signing_key(settings.ledger.key_path(settings.data_dir))
    ledger = LedgerWriter(session_factory(engine), settings.ledger, key)
    ledger.start()
    from hub.tickets.sla_watch import SlaWatch

    sla_watch = SlaWatch(session_factory(engine))  # SLA warnings/breaches, the ticket queue
    sla_watch.start()
    jobs: dict[str, SlaWatch | FleetWatch | LedgerWriter] = {
        "sla_watch": sla_watch, "fleet_watch": watch, "ledger_writer": ledger}
    app.config["COLDLOOP_HEALTH"] = lambda: {
        **({"ingest": running.worker.status()} if running.worker is not None else {}),
        **({"ingest_workers": running.supervisor.status()}
           if running.supervisor is not None else {}),
        **{name: job.status() for name, job in jobs.items()}}
    server = make_server(settings.web.host, settings.web.port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    click.echo(f"hub at http://{settings.web.host}:{server.server_port}; Ctrl-C to stop")
    stop.wait()
    server.shutdown()
    sla_watch.stop()
    ledger.stop()
    watch.stop()
    _stop_ingest(running)
    died.exit_if_died()


@dataclass
class _Ingest:
    """What runs ingest in this process: its worker (if any), and the supervised children."""

    engine: Engine
    worker: IngestWorker | None = None
    sinks: list[InfluxSink] = field(default_factory=list)
    supervisor: IngestSupervisor | None = None


def _start_ingest(settings: HubSettings, *, children: Callable[[int], list[str]] | None = None,
                  in_process: bool = True, worker_index: int | None = None,
                  on_death: Callable[[], None] | None = None) -> _Ingest:
    """Start ingest: a worker in this process (unless not ``in_process``) and, with
    ingest.workers = N > 1, the others as supervised ``children`` (their command lines).
    ``on_death`` is called if the in-process worker's storing thread dies.

    ``worker_index``: this process is that worker of a supervisor, which migrated the database.
    """
    from hub.db import make_engine, migrate, session_factory
    from hub.ingest_supervisor import IngestSupervisor, check_scale_out, worker_settings
    from hub.mqtt_consumer import IngestWorker

    workers = settings.ingest.workers if worker_index is None else 1
    try:
        check_scale_out(settings, workers)
    except ConfigError as err:
        raise click.ClickException(str(err)) from None
    if worker_index is None:
        migrate(settings.database_url)
    running = _Ingest(make_engine(settings.database_url))
    if workers > 1:
        if children is None:
            raise ValueError("several ingest workers need the children's command line")
        running.supervisor = IngestSupervisor(children, range(1 if in_process else 0, workers))
        worker_index = 0  # the in-process one, if any
    if in_process:
        if worker_index is not None:
            settings = worker_settings(settings, worker_index)
        if settings.influx is not None:
            from hub.influx import InfluxSink

            running.sinks.append(InfluxSink(settings.influx))
        running.worker = IngestWorker(settings, session_factory(running.engine),
                                      protocol_v5=settings.mqtt.protocol == "5",
                                      sinks=running.sinks, on_death=on_death)
        try:
            running.worker.start()
        except ConfigError as err:
            raise click.ClickException(str(err)) from None
    if running.supervisor is not None:
        running.supervisor.start()
    return running


def _stop_ingest(running: _Ingest) -> None:
    if running.supervisor is not None:
        running.supervisor.stop()  # SIGTERM: each child stores and acks what it holds
    if running.worker is not None:
        running.worker.stop()  # first: its last batches still reach the sinks
    for sink in running.sinks:
        sink.close()
    running.engine.dispose()


def _child_command(ctx: click.Context, settings: HubSettings,
                   config_path: str | None) -> Callable[[int], list[str]]:
    """The command line of supervised ingest worker ``k``: same data dir, settings, verbosity."""
    root = [sys.executable, "-m", "hub.console", "--data-dir", os.path.abspath(settings.data_dir)]
    verbose = int(ctx.find_root().params.get("verbose") or 0)
    if verbose:
        root.append("-" + "v" * verbose)
    config = ["--config", os.path.abspath(config_path)] if config_path else []
    return lambda k: [*root, "hub", "ingest", *config, "--worker-index", str(k)]


class _DeathWatch:
    """Ends the command when the ingest worker's storing thread dies: a process that stays up
    storing nothing would never be restarted. It stops like a Ctrl-C, then exits 1."""

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop
        self._died = threading.Event()

    def set(self) -> None:
        """Called by the worker's storing thread as it dies."""
        self._died.set()
        self._stop.set()

    def exit_if_died(self) -> None:
        """After the clean stop: exit 1 with the reason if the thread died."""
        if self._died.is_set():
            raise click.ClickException("the ingest worker's storing thread died (its error is "
                                       "logged above); exiting so that it is restarted")


def _stop_on_signal() -> threading.Event:
    """An event set by SIGINT or SIGTERM (installed before anything starts)."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _stop_when_stdin_closes(stop: threading.Event) -> None:
    """Set ``stop`` when stdin, a pipe from the supervisor, closes: the supervisor is gone."""
    def watch() -> None:
        try:
            while os.read(0, 4096):  # the raw fd: no buffer lock held at interpreter exit
                pass
        except OSError:
            pass
        if not stop.is_set():
            logger.warning("the ingest supervisor is gone; stopping")
            stop.set()

    threading.Thread(target=watch, name="coldloop-supervisor-watch", daemon=True).start()


@hub.command("send-manifest")
@config_option
@click.argument("site")
@click.argument("gateway")
@click.option("--delta", is_flag=True, help="Send only what changed since the last manifest.")
@click.pass_context
def send_manifest_command(ctx: click.Context, config_path: str | None, site: str, gateway: str,
                          delta: bool) -> None:
    """Send a gateway the items its site expects back (the stations' unknown-tag check)."""
    from hub.commands import Outbound, send_manifest
    from hub.db import make_engine, session_factory, transaction
    from hub.errors import HubError
    from protocols.errors import ProtocolError

    settings = _settings(ctx, config_path)
    engine = make_engine(settings.database_url)
    outbound = Outbound()
    try:
        with transaction(session_factory(engine)) as session:
            sent = send_manifest(session, site, gateway, outbound, full=not delta)
    except (HubError, ProtocolError) as err:
        raise click.ClickException(str(err)) from None
    finally:
        engine.dispose()
    published = _publish_all(settings, outbound.messages)
    click.echo(f"manifest v{sent.version} for {site}/{gateway}: {sent.items} items, "
               f"{sent.removed} removed, {published} message(s) published")


@hub.command("influx-backfill")
@config_option
@click.option("--since", type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d"]), required=True,
              help="Start, e.g. 2026-11-20 (UTC) or 2026-11-20T08:00:00+08:00.")
@click.option("--until", type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d"]),
              default=None, help="End (default: now).")
@click.pass_context
def influx_backfill(ctx: click.Context, config_path: str | None, since: datetime,
                    until: datetime | None) -> None:
    """Re-send stored telemetry of a period to InfluxDB (after an outage or queue overflow)."""
    from hub.db import make_engine, session_factory
    from hub.influx import InfluxSink, InfluxWriteError
    from hub.telemetry import iter_batches

    settings = _settings(ctx, config_path)
    if settings.influx is None:
        raise click.ClickException("no [influx] section in the hub settings: nothing to send to")
    lo = since if since.tzinfo else since.replace(tzinfo=UTC)
    hi = (until if until.tzinfo else until.replace(tzinfo=UTC)) if until else datetime.now(UTC)
    if hi < lo:
        raise click.ClickException("--until is before --since")
    engine = make_engine(settings.database_url)
    try:
        with session_factory(engine)() as session, InfluxSink(settings.influx) as sink:
            rows = ((record.site, record.source,
                     [r for r in readings if lo.timestamp() <= r[1] <= hi.timestamp()])
                    for record, readings in iter_batches(session, since=lo.timestamp(),
                                                         until=hi.timestamp()))
            written = sink.backfill(rows)
    except InfluxWriteError as err:
        raise click.ClickException(f"{err} ({err.written} readings were written first)") \
            from None
    finally:
        engine.dispose()
    click.echo(f"{written} readings sent to {settings.influx.url} ({lo:%Y-%m-%d %H:%M} to "
               f"{hi:%Y-%m-%d %H:%M} UTC)")


@hub.command("import-orders")
@config_option
@click.argument("file", type=click.File("rb"))
@click.pass_context
def import_orders_command(ctx: click.Context, config_path: str | None, file: BinaryIO) -> None:
    """Put the shop's orders from FILE, JSON Lines ('-': stdin), as PUT /api/v1/orders does.

    Each line is an order with its "order_id"; a bad line is reported with its number and
    skipped, the others are stored. Exit code 1 if any line was refused.
    """
    from hub.coldchain_config import coldchain_config
    from hub.db import make_engine, session_factory
    from hub.order_import import import_orders

    settings = _settings(ctx, config_path)
    try:
        families = coldchain_config(settings.coldchain_file).families
    except ConfigError as err:
        raise click.ClickException(str(err)) from None
    engine = make_engine(settings.database_url)
    try:
        report = import_orders(file, session_factory(engine), families)
    finally:
        engine.dispose()
    for refused in report.refused:
        click.echo(str(refused), err=True)
    click.echo(report.summary())
    if report.refused:
        ctx.exit(1)


@hub.command("triage-corrections")
@config_option
@click.option("--out", "out_path", type=click.Path(dir_okay=False), required=True,
              help="CSV of training rows (id, category, review) to create or update, e.g. "
                   "hub/triage/data/train/corrections.csv.")
@click.option("--since", type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d"]), default=None,
              help="Only checks made since, e.g. 2026-11-01 (UTC).")
@click.pass_context
def triage_corrections(ctx: click.Context, config_path: str | None, out_path: str,
                       since: datetime | None) -> None:
    """Export people's triage checks as training rows for python -m hub.triage.train."""
    import csv

    from hub.db import make_engine, session_factory
    from hub.tickets.triage_review import corrections_since, training_rows
    from hub.triage.data import TRAINING_HEADER, evaluation_texts, read_training_file

    settings = _settings(ctx, config_path)
    out = Path(out_path)
    rows: dict[str, dict[str, str]] = {}
    if out.exists():
        try:
            rows = read_training_file(out)
        except ValueError as err:
            raise click.ClickException(f"not a training file, left as it was: {err}") from None
    engine = make_engine(settings.database_url)
    try:
        with session_factory(engine)() as session:
            checks = corrections_since(
                session, since if since is None or since.tzinfo else since.replace(tzinfo=UTC))
            exported = list(training_rows(checks, exclude_texts=evaluation_texts()))
    finally:
        engine.dispose()
    added = sum(1 for r in exported if r["id"] not in rows)
    changed = sum(1 for r in exported if r["id"] in rows and rows[r["id"]] != r)
    rows.update((r["id"], r) for r in exported)
    tickets = {c.ticket_id for c in checks}
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")  # written whole, then moved into place
    with partial.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=TRAINING_HEADER)
        writer.writeheader()
        writer.writerows(sorted(rows.values(), key=lambda r: r["id"]))
    partial.replace(out)
    click.echo(f"{out}: {len(rows)} rows ({added} new, {changed} changed) from {len(checks)} "
               f"checks of {len(tickets)} tickets; {len(tickets) - len(exported)} left out "
               "(an evaluation text, or empty)")


def _publish_all(settings: HubSettings, messages: list[tuple[str, bytes, bool]]) -> int:
    """Publish messages at QoS 1 and wait for the broker to take each one."""
    from urllib.parse import urlparse

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    url = urlparse(settings.mqtt.url)
    protocol = mqtt.MQTTv5 if settings.mqtt.protocol == "5" else mqtt.MQTTv311
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=protocol)
    if settings.mqtt.username:
        client.username_pw_set(settings.mqtt.username, settings.mqtt.password)
    try:
        client.connect(url.hostname or "127.0.0.1", url.port or 1883)
    except OSError as err:
        raise click.ClickException(f"MQTT broker at {settings.mqtt.url} does not answer "
                                   f"({err}); the manifest version was recorded, send again "
                                   "once it is up") from None
    client.loop_start()
    try:
        for topic, payload, retain in messages:
            client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(timeout=10)
    finally:
        client.disconnect()
        client.loop_stop()
    return len(messages)
