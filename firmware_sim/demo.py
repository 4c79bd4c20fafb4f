"""The walking skeleton, end to end on real components.

Broker (embedded amqtt, or the one given) -> hub (SQLite, ingest worker, web + API) -> one
simulated gateway. Complaints come in through the API, drivers collect with pickup codes,
returned items are scanned and graded at the station, events travel over MQTT, the hub
acknowledges after commit, and the summary checks every scanned item was stored exactly once.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from edge.gateway import Gateway, build_gateway
from edge.settings import GatewaySettings
from firmware_sim.apps import ApiClient, CustomerApp, DriverApp
from firmware_sim.clock import VirtualClock
from firmware_sim.devices import SimulatedHardware
from firmware_sim.scenario import EPOCH, Scenario, generate, shift_start
from hub import models
from hub.db import make_engine, migrate, session_factory, transaction
from hub.settings import HubSettings, load_hub_settings

logger = logging.getLogger(__name__)
TELEMETRY_EVERY_S = 10
DEMO_SITE = "demo-sc1"
DEMO_GATEWAY = "gw-demo-01"


@dataclass
class DemoOptions:
    """How to run the demo."""

    data_dir: Path
    broker: str | None = None  # mqtt://host:port; None: embedded amqtt
    minutes: int = 10
    seed: int = 1
    headless: bool = False
    port: int = 8080
    config: Path | None = None


@dataclass
class DemoRun:
    """The running pieces, so they can be stopped in order."""

    stoppers: list[Any] = field(default_factory=list)

    def stop(self) -> None:
        """Stop everything started, last first."""
        for stop in reversed(self.stoppers):
            try:
                stop()
            except (OSError, RuntimeError) as err:
                logger.warning("demo: error while stopping: %s", err)
        self.stoppers.clear()


def seed_hub(factory: sessionmaker[Session], scenario: Scenario) -> None:
    """Load the scenario's customers, orders and items into the hub (idempotent)."""
    with transaction(factory) as session:
        for order in scenario.orders:
            if session.get(models.Customer, order.customer_id) is None:
                session.add(models.Customer(id=order.customer_id, name=order.customer_name,
                                            tier=order.tier, region="shanghai"))
                session.flush()
            if session.get(models.Order, order.order_id) is not None:
                continue
            session.add(models.Order(id=order.order_id, customer_id=order.customer_id,
                                     placed_at=order.placed_at, delivered_at=order.delivered_at,
                                     status="delivered"))
            session.flush()
            for item in order.items:
                session.add(models.Item(
                    id=item.item_id, order_id=order.order_id, gtin=item.product.gtin,
                    lot=item.lot, product=item.product.name, family=item.product.family,
                    packed_at=item.packed_at, tag_uid=item.tag_uid,
                    price_cents=item.product.price_cents))


def _start_web(settings: HubSettings, factory: sessionmaker[Session], port: int,
               run: DemoRun, world: dict[str, Any]) -> str:
    from werkzeug.serving import make_server

    from hub.web import create_app

    app = create_app(settings, factory=factory, test_config=world)
    server = make_server(settings.web.host, port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="hub-web", daemon=True)
    thread.start()
    run.stoppers.append(server.shutdown)
    return f"http://{settings.web.host}:{server.server_port}"


def start_stack(options: DemoOptions, run: DemoRun,
                clock: VirtualClock) -> tuple[HubSettings, str, str, Any]:
    """Start broker, hub (migrated database, ingest, web); return settings, URLs and ingest.

    The hub's web app runs on the scenario's virtual clock and a seeded code generator, so
    tickets, pickups and scans share one timeline and a run is reproducible.
    """
    from hub.mqtt_consumer import IngestWorker, broker_speaks_v5

    broker_url = options.broker
    if broker_url is None:
        from hub.embedded_broker import EmbeddedBroker

        broker = EmbeddedBroker().start()
        run.stoppers.append(broker.stop)
        broker_url = broker.url
    settings = load_hub_settings(options.config, options.data_dir, {"mqtt.url": broker_url})
    embedded = options.broker is None  # amqtt speaks 3.1.1 only; ask any other broker
    protocol = "3.1.1" if embedded or not broker_speaks_v5(settings.mqtt) else "5"
    settings = settings.model_copy(update={
        "mqtt": settings.mqtt.model_copy(update={"protocol": protocol})})
    migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    run.stoppers.append(engine.dispose)
    factory = session_factory(engine)
    # On a shared broker, ingest only the demo's site: other sites are not this demo's world.
    ingest = IngestWorker(settings, factory, protocol_v5=protocol == "5", sites=[DEMO_SITE])
    ingest.start()
    run.stoppers.append(ingest.stop)
    world = {"COLDLOOP_CLOCK": clock.now, "COLDLOOP_RNG": random.Random(options.seed)}
    web_url = _start_web(settings, factory, 0 if options.headless else options.port, run, world)
    return settings, broker_url, web_url, (ingest, factory)


def gateway_settings(data_dir: Path, broker_url: str, protocol: str) -> GatewaySettings:
    """The demo gateway: one station at the demo sorting center."""
    return GatewaySettings.model_validate({
        "id": DEMO_GATEWAY, "site": DEMO_SITE, "data_dir": data_dir,
        "mqtt": {"url": broker_url, "protocol": protocol, "ack_timeout_s": 5},
        "stations": [{"id": "st-1"}]})


def run_demo(options: DemoOptions, run: DemoRun) -> dict[str, Any]:
    """Run the scenario on the full stack and return the summary; the caller stops ``run``."""
    clock = VirtualClock(EPOCH)
    settings, broker_url, web_url, (ingest, factory) = start_stack(options, run, clock)
    hardware = SimulatedHardware()
    protocol = settings.mqtt.protocol
    gateway = build_gateway(gateway_settings(options.data_dir, broker_url, protocol), hardware,
                            clock=clock)
    # Each run on the same data dir is the next day of the same seeded world.
    day = min(gateway.boot, 99)
    scenario = generate(options.seed, options.minutes, day=day)
    clock.advance_to(shift_start(day))
    seed_hub(factory, scenario)
    gateway.start(poll_interval_s=None)  # the scenario polls the pad itself
    run.stoppers.append(gateway.stop)
    station = hardware.stations["st-1"]
    api = ApiClient(web_url, settings.web.api_token)
    customer, driver = CustomerApp(api), DriverApp(api, "driver-07")

    scanned: list[str] = []
    lights: Counter[str] = Counter()
    readings = 0
    next_tlm = shift_start(day)
    for complaint in scenario.complaints:
        readings += _telemetry_until(gateway, station.probe.probe_id, next_tlm,
                                     complaint.at)
        next_tlm = max(next_tlm, complaint.at)
        clock.advance_to(complaint.at)
        ticket = customer.complain(complaint.order.order_id, complaint.item.item_id,
                                   complaint.channel, complaint.text)
        driver.collect(ticket["pickup_code"], "route-12")
        clock.advance(20 * 60)  # the driver brings it to the sorting center
        station.probe.set_temperature(complaint.core_temp_c)
        station.pad.present_tag(complaint.item.tag_uid, complaint.item.tag)
        outcomes = gateway.poll_once()
        gateway.poll_once()  # still on the pad: no second scan
        station.pad.remove_tag()
        gateway.poll_once()
        for outcome in outcomes:
            lights[outcome.light.value] += 1
            if outcome.scan is not None:
                scanned.append(outcome.scan.item_id)
    end = shift_start(day) + timedelta(minutes=options.minutes)
    readings += _telemetry_until(gateway, station.probe.probe_id, next_tlm, end)
    clock.advance_to(end)

    drained = gateway.uplink.wait_drained(timeout=60)
    idle = ingest.wait_idle(timeout=60)
    summary = _summary(factory, scenario, scanned, lights, readings, gateway, drained and idle)
    summary.update({"web_url": web_url, "broker": broker_url,
                    "admin_user": settings.web.admin_user})
    return summary


def _telemetry_until(gateway: Gateway, probe_id: str, start: datetime, end: datetime) -> int:
    """Commit one batch of probe readings every simulated minute between ``start`` and ``end``."""
    t, count = start.timestamp(), 0
    batch: list[tuple[str, float, float | None]] = []
    while t < end.timestamp():
        batch.append((probe_id, t, 2.0 + (int(t) // TELEMETRY_EVERY_S % 7) * 0.1))
        t += TELEMETRY_EVERY_S
        if len(batch) == 60 // TELEMETRY_EVERY_S:
            gateway.recorder.commit_telemetry(batch)
            count, batch = count + len(batch), []
    if batch:
        gateway.recorder.commit_telemetry(batch)
        count += len(batch)
    return count


def _summary(factory: sessionmaker[Session], scenario: Scenario, scanned: list[str],
             lights: Counter[str], readings: int, gateway: Gateway,
             settled: bool) -> dict[str, Any]:
    """Count what this run produced (earlier runs on the same data dir are left out)."""
    run_ids = f"{gateway.settings.id}:{gateway.boot}:%"
    order_ids = [c.order.order_id for c in scenario.complaints]
    item_ids = [c.item.item_id for c in scenario.complaints]
    with factory() as session:
        def count(model: Any, *where: Any) -> int:
            return int(session.scalar(select(func.count()).select_from(model).where(*where))
                       or 0)

        stored_scans = Counter(session.scalars(
            select(models.Scan.item_id).where(models.Scan.message_id.like(run_ids))))
        grades = Counter(session.scalars(
            select(models.GradeRecord.grade).where(models.GradeRecord.message_id.like(run_ids))))
        sample = session.scalar(
            select(models.Order.id).join(models.Item, models.Item.order_id == models.Order.id)
            .join(models.GradeRecord, models.GradeRecord.item_id == models.Item.id)
            .join(models.Pickup, models.Pickup.item_id == models.Item.id)
            .where(models.Pickup.status == "collected",
                   models.GradeRecord.message_id.like(run_ids))
            .order_by(models.Order.id).limit(1))
        summary = {
            "seed": scenario.seed,
            "orders": len(scenario.orders),
            "complaints": len(scenario.complaints),
            "tickets": count(models.Ticket, models.Ticket.order_id.in_(order_ids)),
            "pickups_collected": count(models.Pickup, models.Pickup.status == "collected",
                                       models.Pickup.item_id.in_(item_ids)),
            "items_scanned": len(scanned),
            "scans_stored": sum(stored_scans.values()),
            "grades_stored": sum(grades.values()),
            "grades": dict(sorted(grades.items())),
            "lights": dict(sorted(lights.items())),
            "events_stored": count(models.StoredMessage, models.StoredMessage.kind != "tlm",
                                   models.StoredMessage.message_id.like(run_ids)),
            "acks": gateway.uplink.counters.acked,
            "telemetry_readings_sent": readings,
            "telemetry_readings_stored": count(models.TelemetryReading,
                                               models.TelemetryReading.batch_id.like(run_ids)),
            "quarantined": count(models.QuarantinedMessage,
                                 models.QuarantinedMessage.message_id.like(run_ids)),
            "outbox_depth": gateway.outbox.depth(),
            "dead_letters": len(gateway.outbox.dead_letters()),
            "sample_order": sample,
        }
    once = Counter(scanned) == stored_scans
    summary["consistent"] = bool(
        settled and once and summary["scans_stored"] == summary["grades_stored"]
        and summary["events_stored"] == summary["acks"]
        and summary["telemetry_readings_stored"] == readings
        and summary["pickups_collected"] == len(set(item_ids))
        and summary["outbox_depth"] == 0 and summary["quarantined"] == 0
        and summary["sample_order"] is not None)
    return summary


def check_broker_url(url: str) -> str:
    """Validate an mqtt:// URL given on the command line."""
    parsed = urlparse(url)
    if parsed.scheme != "mqtt" or not parsed.hostname:
        raise ValueError(f"--broker must look like mqtt://host:port, got {url!r}")
    return url
