"""The walking skeleton, end to end on real components.

Broker (embedded amqtt, or the one given) -> hub (SQLite, ingest worker, web + API) -> one
simulated gateway. Complaints come in through the API, drivers collect with pickup codes,
returned items are scanned and graded at the station, events travel over MQTT, the hub
acknowledges after commit, and the summary checks every scanned item was stored exactly once.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import logging
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from edge.gateway import Gateway, build_gateway
from edge.settings import GatewaySettings
from firmware_sim import epcis_docs
from firmware_sim.apps import (
    AgentDesk,
    ApiClient,
    CustomerApp,
    DriverApp,
    OrderSystem,
    PartnerSystem,
    order_body,
)
from firmware_sim.clock import VirtualClock
from firmware_sim.devices import SimStation, SimulatedHardware
from firmware_sim.scenario import EPOCH, Complaint, Scenario, generate, shift_start
from firmware_sim.stack import Stack, start_stack
from hub import models
from hub.db import transaction
from hub.tickets.models import SlaClock
from protocols.coldchain import FAMILIES

logger = logging.getLogger(__name__)
EVENT_KINDS = ("scan", "grade", "custody", "fault")
DEMO_SITE = "demo-sc1"
DEMO_GATEWAY = "gw-demo-01"
DEMO_AGENTS = {"agent-01": "Lin Wei", "agent-02": "Sam Carter"}  # on shift for the whole run
DEMO_AGENT_PASSWORD = "coldloop-agent"  # the interactive demo's agents sign in with it
SURVEY_SCORES = (5, 5, 4, 4, 4, 3, 2)
SURVEY_COMMENTS = {5: "退款很快，谢谢", 4: "Quick refund, thanks", 3: "还行", 2: "Took too long"}
SURVEY_RECOMMEND = {5: 10, 4: 8, 3: 6, 2: 3}  # "would you recommend us", 0-10, for the NPS


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


def seed_hub(factory: sessionmaker[Session], scenario: Scenario) -> None:
    """Put the scenario's customers, orders and items into the hub's database directly, as
    the order system's puts would (tests that need no web app; idempotent)."""
    from hub.orders import OrderRecord, put_order

    with transaction(factory) as session:
        for order in scenario.orders:
            put_order(session, order.order_id, OrderRecord.model_validate(order_body(order)),
                      FAMILIES)


def gateway_settings(data_dir: Path, mqtt: dict[str, Any]) -> GatewaySettings:
    """The demo gateway: one station at the demo sorting center."""
    return GatewaySettings.model_validate({
        "id": DEMO_GATEWAY, "site": DEMO_SITE, "data_dir": data_dir, "mqtt": mqtt,
        "stations": [{"id": "st-1"}]})


def run_demo(options: DemoOptions) -> tuple[dict[str, Any], Stack]:
    """Run the scenario on the full stack; return the summary and the still-running stack."""
    # One timeline for the scenario, the gateway, the web app and the hub's ingest.
    clock = VirtualClock(EPOCH)
    stack = start_stack(options.data_dir, sites=[DEMO_SITE], broker=options.broker,
                        config=options.config, clock=clock.now)
    try:
        summary = _run(options, stack, clock)
        if not options.headless:
            go_live(stack, clock)
        return summary, stack
    except BaseException:
        stack.stop()
        raise


def go_live(stack: Stack, clock: VirtualClock) -> None:
    """After the scenario, for a person trying the UI: the demo agents get a password
    (``DEMO_AGENT_PASSWORD``) unless they have one, time runs on from the scenario's end,
    and SLA clocks are evaluated and the ticket queue worked every minute, as `hub serve`
    does, so a complaint filed by hand is routed, warned and escalated. (The gateway is no
    longer polled, so the fleet's alarms are not evaluated: they would only say it is
    silent.)"""
    from hub.tickets.models import Agent
    from hub.tickets.sla_watch import SlaWatch
    from hub.web.accounts import set_password

    with stack.factory.begin() as session:  # so a person can try the UI as an agent too
        for agent_id in DEMO_AGENTS:
            agent = session.get(Agent, agent_id)
            if agent is not None and agent.password_hash is None:
                set_password(session, agent, DEMO_AGENT_PASSWORD, clock.now(), actor="demo")
    clock.go_live()
    watch = SlaWatch(stack.factory, clock=clock.now)
    watch.start()
    stack.on_stop(watch.stop)


def _run(options: DemoOptions, stack: Stack, clock: VirtualClock) -> dict[str, Any]:
    # The web app runs on the scenario's clock with seeded pickup codes: tickets, pickups and
    # scans share one timeline and a run is reproducible. The codes are seeded once the day
    # is known (below), so a next day does not draw the codes of the days before.
    codes = random.Random()
    world = {"COLDLOOP_CLOCK": clock.now, "COLDLOOP_RNG": codes}
    web_url = stack.start_web(0 if options.headless else options.port, world)
    hardware = SimulatedHardware(clock)
    gateway = build_gateway(gateway_settings(options.data_dir, stack.gateway_mqtt()),
                            hardware, clock=clock)
    stack.on_stop(gateway.stop)
    # Each run on the same data dir is the next day of the same seeded world.
    day = min(gateway.boot, 99)
    codes.seed(f"pickup codes {options.seed} day {day}")
    scenario = generate(options.seed, options.minutes, day=day)
    clock.advance_to(shift_start(day))
    api = ApiClient(web_url, stack.settings.web.api_token)
    order_system = OrderSystem(api)
    for order in scenario.orders:
        order_system.put(order)
    gateway.start(poll_interval_s=None)  # the scenario polls the devices itself
    station = hardware.stations["st-1"]
    customer, driver = CustomerApp(api), DriverApp(api, "driver-07")
    partners = {name: PartnerSystem(api, name) for name in ("supplier", "warehouse", "carrier")}
    desks = [AgentDesk(api, agent) for agent in DEMO_AGENTS]
    for desk, name in zip(desks, DEMO_AGENTS.values(), strict=True):
        desk.sign_on(name, ["zh", "en"])

    shift = ReturnsShift(clock, stack, gateway, station, customer, driver, partners, desks,
                         random.Random(options.seed))
    shift.work(scenario)
    scanned, lights, truck_readings = shift.scanned, shift.lights, shift.truck_readings
    clock.advance_to(shift_start(day) + timedelta(minutes=options.minutes))
    gateway.poll_once()
    gateway.telemetry.flush()

    drained = gateway.uplink.wait_drained(timeout=60)
    idle = stack.ingest.wait_idle(timeout=60, readings=gateway.telemetry.readings_committed)
    housekeeping(stack, clock)
    summary = _summary(stack.factory, scenario, scanned, lights, gateway, drained and idle)
    summary["kpis"] = _kpis(api, shift_start(day), clock.now())
    summary.update(_trace_summary(stack, scenario))
    summary["consistent"] = summary["consistent"] and summary["ledger_verified"]
    summary.update({"truck_log_readings": truck_readings, "web_url": web_url,
                    "broker": stack.broker_url, "admin_user": stack.settings.web.admin_user})
    return summary


# When each step of a return follows its complaint: the agents contact the customer, the
# driver brings the item to the sorting center, the agent refunds once it is graded.
CONTACT_AFTER = timedelta(minutes=5)
SCAN_AFTER = timedelta(minutes=20)
RESOLVE_AFTER = timedelta(minutes=30)


@dataclass
class ReturnsShift:
    """Everyone who works a shift's returns, and what they did, in time order.

    Each complaint starts a return whose steps come at fixed delays after it; the steps of
    all returns run in the order of their times (a complaint filed while an earlier return is
    on its way is filed at its own time), so tickets, scans and the KPIs keep the scenario's
    timeline whatever the number of complaints.
    """

    clock: VirtualClock
    stack: Stack
    gateway: Gateway
    station: SimStation  # its tag pad and core probe
    customer: CustomerApp
    driver: DriverApp
    partners: dict[str, PartnerSystem]
    desks: list[AgentDesk]
    satisfaction: random.Random  # the customers' survey answers
    scanned: list[str] = field(default_factory=list)
    lights: Counter[str] = field(default_factory=Counter)
    truck_readings: int = 0

    def work(self, scenario: Scenario) -> None:
        """Run every step of every complaint's return, in time order."""
        due: list[tuple[datetime, int, Callable[[], None]]] = []
        order = itertools.count()

        def at(when: datetime, step: Callable[[], None]) -> None:
            heapq.heappush(due, (when, next(order), step))

        for complaint in scenario.complaints:
            at(complaint.at, functools.partial(self._file, complaint, at))
        while due:
            when, _, step = heapq.heappop(due)
            self.clock.advance_to(when)
            step()

    def _file(self, complaint: Complaint, at: Callable[[datetime, Callable[[], None]], None]
              ) -> None:
        """The customer complains; the driver is given the pickup and uploads the truck's
        log; the partners send their documents."""
        self.gateway.poll_once()
        ticket = self.customer.complain(complaint.order.order_id, complaint.item.item_id,
                                        complaint.channel, complaint.text)
        self.driver.collect(ticket["pickup_code"], "route-12")
        truck = next(s for s in complaint.history.segments if s.custodian == "truck")
        self.truck_readings += self.driver.upload_truck_log(
            epcis_docs.truck_id(complaint), f"delivery-{complaint.order.order_id}",
            list(truck.readings))["readings"]
        for sender, document in epcis_docs.documents(complaint, self.clock.now()):
            self.partners[sender].send(document)
        now = self.clock.now()
        at(now + CONTACT_AFTER, self._contact)
        at(now + SCAN_AFTER, functools.partial(self._scan, complaint))
        at(now + RESOLVE_AFTER, self._resolve)

    def _contact(self) -> None:
        for desk in self.desks:  # the agents contact the customers of their new tickets
            desk.work()

    def _scan(self, complaint: Complaint) -> None:
        """The return reaches the station: one scan, graded, the light shown."""
        background_round(self.stack, self.clock)
        self.gateway.poll_once()
        self.station.set_core_temperature(complaint.core_temp_c)
        self.station.present_tag(complaint.item.tag_uid, complaint.item.tag)
        outcomes = self.gateway.poll_once()
        self.gateway.poll_once()  # still on the pad: no second scan
        self.station.remove_tag()
        self.gateway.poll_once()
        for outcome in outcomes:
            self.lights[outcome.light.value] += 1
            if outcome.scan is not None:
                self.scanned.append(outcome.scan.item_id)

    def _resolve(self) -> None:
        """The agents refund what the hub holds a grade for; the customers rate it."""
        self.gateway.uplink.wait_drained(timeout=60)
        self.stack.ingest.wait_idle(timeout=60)
        for desk in self.desks:
            for ticket_id in desk.resolve_graded():
                score = self.satisfaction.choice(SURVEY_SCORES)
                self.customer.answer_survey(ticket_id, score, SURVEY_COMMENTS[score],
                                            SURVEY_RECOMMEND[score])


def _kpis(api: ApiClient, since: datetime, until: datetime) -> dict[str, Any]:
    """The helpdesk KPIs of the run (its day), as the KPI page shows them."""
    found = api.get(f"/tickets/kpis?since={quote(since.isoformat())}"
                    f"&until={quote((until + timedelta(minutes=1)).isoformat())}")

    def share(rate: dict[str, Any]) -> str:
        return f"{rate['hits']}/{rate['total']}"

    return {"first_contact_in_time": share(found["first_contact"]),
            "first_response_median_min": found["first_response"]["median_min"],
            "time_to_resolution_median_min": found["time_to_resolution"]["median_min"],
            "sla": share(found["sla"]), "csat": share(found["csat"]),
            "survey_response": share(found["survey_response"]),
            "nps": found["nps"]["score"], "nps_answers": found["nps"]["answers"],
            "agents": {a["agent_id"]: a["resolved"] for a in found["agents"]}}


def background_round(stack: Stack, clock: VirtualClock) -> None:
    """One round of what `hub serve` runs periodically, on the scenario's clock: SLA clocks
    and the ticket queue, then the fleet's alarms."""
    from hub.fleet_watch import FleetWatch
    from hub.tickets.sla_watch import SlaWatch

    SlaWatch(stack.factory, clock=clock.now).evaluate_once()
    FleetWatch(stack.factory, stack.settings.fleet, clock=clock.now).evaluate_once()


def housekeeping(stack: Stack, clock: VirtualClock) -> None:
    """At the end: a last background round, and the ledger takes the hub's records and signs
    a head."""
    from hub.ledger_writer import LedgerWriter, signing_key

    background_round(stack, clock)
    settings = stack.settings
    key = signing_key(settings.ledger.key_path(settings.data_dir))
    LedgerWriter(stack.factory, settings.ledger.model_copy(update={"sign_every": 1}), key,
                 clock=clock.now).run_once()


FAULT_OWNERS = {"supplier_warm": "supplier", "warehouse_door": "warehouse",
                "truck_reefer": "delivery", "customer_doorstep": "customer"}


def _trace_summary(stack: Stack, scenario: Scenario) -> dict[str, Any]:
    """Who the hub holds responsible for each complained-of item, and whether its ledger
    verifies against the signed heads."""
    from hub.ledger import latest_head, ledger_size, load_public_key, public_key_path, verify_log
    from hub.trace import item_trace

    settings = stack.settings
    public = load_public_key(public_key_path(settings.ledger.key_path(settings.data_dir)))
    verdicts: dict[str, str] = {}
    found = caused = 0
    with stack.factory() as session:
        for complaint in scenario.complaints:
            attribution = item_trace(session, complaint.item.item_id).attribution
            party = attribution.party if attribution else "undetermined"
            verdicts[complaint.item.item_id] = party
            owner = FAULT_OWNERS.get(complaint.history.fault)
            if owner:
                caused += 1
                found += party == owner
        report = verify_log(session, public)
        head = latest_head(session)
        size = ledger_size(session)
    return {"attributions": verdicts, "faults_attributed": f"{found}/{caused}",
            "ledger_events": size, "ledger_head_size": head.tree_size if head else 0,
            "ledger_verified": report.ok}


def _summary(factory: sessionmaker[Session], scenario: Scenario, scanned: list[str],
             lights: Counter[str], gateway: Gateway, settled: bool) -> dict[str, Any]:
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
            "events_stored": count(models.StoredMessage,
                                   models.StoredMessage.kind.in_(EVENT_KINDS),
                                   models.StoredMessage.message_id.like(run_ids)),
            "acks": gateway.uplink.counters.acked,
            "telemetry_readings_sent": gateway.telemetry.readings_committed,
            "telemetry_readings_stored": int(session.scalar(
                select(func.coalesce(func.sum(models.TelemetryBatchRecord.readings), 0))
                .where(models.TelemetryBatchRecord.batch_id.like(run_ids))) or 0),
            "quarantined": count(models.QuarantinedMessage,
                                 models.QuarantinedMessage.message_id.like(run_ids)),
            "outbox_depth": gateway.outbox.depth(),
            "dead_letters": len(gateway.outbox.dead_letters()),
            "sample_order": sample,
            "tickets_by_status": dict(sorted(Counter(session.scalars(
                select(models.Ticket.status)
                .where(models.Ticket.order_id.in_(order_ids)))).items())),
            "tickets_by_agent": dict(sorted(Counter(session.scalars(
                select(models.Ticket.assignee_id)
                .where(models.Ticket.order_id.in_(order_ids)))).items(), key=str)),
            "first_contact": dict(sorted(Counter(session.scalars(
                select(SlaClock.state).join(models.Ticket, models.Ticket.id == SlaClock.ticket_id)
                .where(models.Ticket.order_id.in_(order_ids),
                       SlaClock.target == "FIRST_CONTACT"))).items())),
        }
    once = Counter(scanned) == stored_scans
    summary["consistent"] = bool(
        settled and once and summary["scans_stored"] == summary["grades_stored"]
        and summary["events_stored"] == gateway.recorder.events_committed
        and summary["telemetry_readings_stored"] == summary["telemetry_readings_sent"]
        and summary["pickups_collected"] == len(set(item_ids))
        and summary["outbox_depth"] == 0 and summary["quarantined"] == 0
        and summary["sample_order"] is not None
        and summary["first_contact"] == {"MET": summary["tickets"]}
        and summary["tickets_by_status"] == {"followed_up": summary["tickets"]})
    return summary


def check_broker_url(url: str) -> str:
    """Validate an mqtt:// URL given on the command line."""
    parsed = urlparse(url)
    if parsed.scheme != "mqtt" or not parsed.hostname:
        raise ValueError(f"--broker must look like mqtt://host:port, got {url!r}")
    return url
