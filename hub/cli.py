"""``coldloop hub``: migrate the database, run ingest and the web UI."""

from __future__ import annotations

import signal
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from hub.console import data_dir
from hub.settings import HubSettings, load_hub_settings
from protocols.config import ConfigError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from hub.influx import InfluxSink
    from hub.mqtt_consumer import IngestWorker

config_option = click.option("--config", "config_path", type=click.Path(dir_okay=False),
                             default=None, help="Hub settings (TOML); defaults if omitted.")


def _settings(ctx: click.Context, config_path: str | None) -> HubSettings:
    try:
        return load_hub_settings(config_path, data_dir(ctx))
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
@click.pass_context
def ingest(ctx: click.Context, config_path: str | None) -> None:
    """Run one ingest worker (several share the load over MQTT v5 shared subscriptions)."""
    settings = _settings(ctx, config_path)
    worker, engine, sinks = _start_ingest(settings)
    click.echo(f"ingesting from {settings.mqtt.url}; Ctrl-C to stop")
    _wait_for_signal()
    _stop_ingest(worker, engine, sinks)


@hub.command()
@config_option
@click.pass_context
def serve(ctx: click.Context, config_path: str | None) -> None:
    """Run ingest and the web UI / JSON API in one process."""
    from werkzeug.serving import make_server

    from hub.web import create_app

    settings = _settings(ctx, config_path)
    worker, engine, sinks = _start_ingest(settings)
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
    server = make_server(settings.web.host, settings.web.port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    click.echo(f"hub at http://{settings.web.host}:{server.server_port}; Ctrl-C to stop")
    _wait_for_signal()
    server.shutdown()
    sla_watch.stop()
    ledger.stop()
    watch.stop()
    _stop_ingest(worker, engine, sinks)


def _start_ingest(settings: HubSettings) -> tuple[IngestWorker, Engine, list[InfluxSink]]:
    from hub.db import make_engine, migrate, session_factory
    from hub.mqtt_consumer import IngestWorker

    migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    sinks: list[InfluxSink] = []
    if settings.influx is not None:
        from hub.influx import InfluxSink

        sinks.append(InfluxSink(settings.influx))
    worker = IngestWorker(settings, session_factory(engine),
                          protocol_v5=settings.mqtt.protocol == "5", sinks=sinks)
    worker.start()
    return worker, engine, sinks


def _stop_ingest(worker: IngestWorker, engine: Engine, sinks: list[InfluxSink]) -> None:
    worker.stop()  # first: its last batches still reach the sinks
    for sink in sinks:
        sink.close()
    engine.dispose()


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


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
