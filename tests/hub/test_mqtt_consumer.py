"""The ingest worker against a real broker and real databases."""

from __future__ import annotations

import gc
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from hub.db import make_engine, migrate, session_factory, transaction
from hub.embedded_broker import EmbeddedBroker
from hub.models import (
    CustodyRecord,
    Gateway,
    QuarantinedMessage,
    Scan,
    StoredMessage,
    TelemetryBatchRecord,
)
from hub.mqtt_consumer import (
    GC_YOUNG_THRESHOLD,
    BrokerUnavailable,
    IngestWorker,
    broker_speaks_v5,
)
from hub.settings import HubSettings, IngestSettings, MqttSettings
from protocols import topics
from protocols.config import ConfigError
from protocols.errors import MessageError
from protocols.messages import (
    Ack,
    CustodyAction,
    CustodyEvent,
    GatewayState,
    HubState,
    ScanEvent,
    TelemetryBatch,
    decode_as,
)
from tests.conftest import BrokerAddress
from tests.hub.tcp_relay import TcpRelay

GW = "gw-1"
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
WAIT = 10.0  # seconds: generous upper bound, never a sleep


def scan(seq: int, gateway: str = GW) -> ScanEvent:
    return ScanEvent(id=f"{gateway}:1:{seq}", ts=T0 + timedelta(seconds=seq), station="st-1",
                     item_id=f"ITEM-{seq}", tag_uid="04a1b2c3d4", lot="L2603",
                     gtin="04012345678901", core_temp_c=4.5)


def _connect(broker: BrokerAddress, client_id: str = "", *, v5: bool,
             clean: bool = True) -> mqtt.Client:
    """Connect a paho client and return once the broker said yes."""
    connected = threading.Event()
    if v5:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=mqtt.MQTTv5)
    else:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                             clean_session=clean, protocol=mqtt.MQTTv311)
    client.on_connect = lambda *_: connected.set()
    if v5:
        client.connect(broker.host, broker.port, clean_start=clean)
    else:
        client.connect(broker.host, broker.port)
    client.loop_start()
    assert connected.wait(WAIT), "test client could not connect"
    return client


def _disconnect(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()


class FakeGateway:
    """A gateway's MQTT side: publishes, and collects the acks it is sent.

    The broker may be shared with other hubs (a demo subscribed to every site acks our events
    too), so tests look for the ack they expect and check the hub under test by its counters.
    """

    def __init__(self, broker: BrokerAddress, site: str, gateway: str = GW) -> None:
        self.site, self.gateway = site, gateway
        self.acks: list[tuple[str, str, str | None]] = []  # (id, status, reason)
        self._cond = threading.Condition()
        self._retained: set[str] = set()
        self._client = _connect(broker, v5=broker.speaks_v5)
        subscribed = threading.Event()
        self._client.on_message = self._on_message
        self._client.on_subscribe = lambda *_: subscribed.set()
        self._client.subscribe(topics.ack(site, gateway), qos=1)
        assert subscribed.wait(WAIT)

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        ack = decode_as(Ack, bytes(message.payload))
        with self._cond:
            self.acks += [(e.id, e.status.value, e.reason) for e in ack.entries]
            self._cond.notify_all()

    def publish(self, topic: str, payload: bytes | Any, retain: bool = False) -> None:
        raw = payload if isinstance(payload, bytes) else payload.encode()
        self._client.publish(topic, raw, qos=1, retain=retain).wait_for_publish(WAIT)
        if retain:
            self._retained.add(topic)

    def event(self, message: Any) -> None:
        self.publish(topics.event(self.site, self.gateway, message.type), message)

    def wait_ack(self, message_id: str, status: str, timeout: float = WAIT) -> str | None:
        """Wait for an ack entry of ``message_id`` with ``status``; return its reason."""
        def found() -> list[str | None]:
            return [r for i, s, r in self.acks if (i, s) == (message_id, status)]

        with self._cond:
            assert self._cond.wait_for(found, timeout), (message_id, status, self.acks)
            return found()[0]

    def close(self) -> None:
        for topic in self._retained:  # an empty retained payload clears the retained message
            self._client.publish(topic, b"", qos=1, retain=True).wait_for_publish(WAIT)
        _disconnect(self._client)


class Recorder(logging.Handler):
    """Set an event when a log record containing ``text`` is emitted."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text, self.seen = text, threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.seen.set()


@dataclass
class DownDatabase:
    """A database with no schema yet: every commit fails until :meth:`restore`."""

    url: str
    engine: Engine
    failed: threading.Event  # set at the worker's first failed commit

    def sessions(self) -> sessionmaker[Session]:
        """A session factory on it."""
        return session_factory(self.engine)

    def restore(self) -> None:
        """Create the schema: the held batches go in on the worker's next retry."""
        migrate(self.url)


@pytest.fixture
def down_database(tmp_path: Any) -> Iterator[DownDatabase]:
    """A database that is down (no schema yet), watched for the worker's commit failures."""
    url = f"sqlite:///{tmp_path / 'later.db'}"
    engine = make_engine(url)
    recorder = Recorder("cannot commit")
    logging.getLogger("hub.mqtt_consumer").addHandler(recorder)
    try:
        yield DownDatabase(url, engine, recorder.seen)
    finally:
        logging.getLogger("hub.mqtt_consumer").removeHandler(recorder)
        engine.dispose()


@pytest.fixture
def site() -> str:
    """A site of its own, so tests never see each other's (retained) messages."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def factory(hub_db: sessionmaker[Session]) -> sessionmaker[Session]:
    """The migrated, empty database (no seeded order)."""
    return hub_db


@pytest.fixture
def gateway(broker: BrokerAddress, site: str) -> Iterator[FakeGateway]:
    fake = FakeGateway(broker, site)
    yield fake
    fake.close()


StartWorker = Callable[..., IngestWorker]


@pytest.fixture
def start_worker(broker: BrokerAddress, site: str,
                 factory: sessionmaker[Session]) -> Iterator[StartWorker]:
    """Start ingest workers for this test's site; stop them and drop their sessions after."""
    started: list[tuple[IngestWorker, str, bool]] = []

    def start(client_id: str | None = None, *, v5: bool | None = None,
              session_factory: sessionmaker[Session] | None = None, share_group: str | None = None,
              wait_ready: bool = True, sinks: Sequence[Any] = (),
              url: str | None = None,
              on_death: Callable[[], None] | None = None) -> IngestWorker:
        client_id = client_id or f"hub-test-{uuid.uuid4().hex[:8]}"
        settings = HubSettings(
            mqtt=MqttSettings(url=url or broker.url, client_id=client_id,
                              share_group=share_group),
            ingest=IngestSettings(batch_size=100, batch_wait_ms=20))
        speaks_v5 = broker.speaks_v5 if v5 is None else v5
        worker = IngestWorker(settings, session_factory or factory, protocol_v5=speaks_v5,
                              sites=[site], backoff_s=(0.05, 0.2), sinks=sinks,
                              on_death=on_death)
        worker.start()
        started.append((worker, client_id, speaks_v5))
        if wait_ready:
            assert worker.wait_ready(WAIT), "worker did not subscribe"
        return worker

    yield start
    for worker, _, _ in started:
        worker.stop(timeout=2)
    for _, client_id, speaks_v5 in started:  # a clean connect discards the persistent session
        _disconnect(_connect(broker, client_id, v5=speaks_v5))
    cleaner = _connect(broker, v5=False)
    cleaner.publish(topics.HUB_STATE, b"", qos=1, retain=True).wait_for_publish(WAIT)
    _disconnect(cleaner)


def count(factory: sessionmaker[Session], model: type[Any]) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


@pytest.fixture(params=[pytest.param(True, id="v5"), pytest.param(False, id="v3.1.1")])
def v5(request: pytest.FixtureRequest, broker: BrokerAddress) -> bool:
    """Each MQTT version the hub speaks (v5 skipped on a broker that speaks only 3.1.1)."""
    wanted: bool = request.param
    if wanted and not broker.speaks_v5:
        pytest.skip("broker speaks MQTT 3.1.1 only")
    return wanted


def test_events_are_stored_then_acked(broker: BrokerAddress, start_worker: StartWorker,
                                      gateway: FakeGateway, factory: sessionmaker[Session],
                                      v5: bool) -> None:
    worker = start_worker(v5=v5)
    gateway.event(scan(1))
    gateway.event(scan(2))
    gateway.publish(topics.telemetry(gateway.site, GW),
                    TelemetryBatch(id=f"{GW}:1:3", ts=T0, readings=[("p1", 1.0, 4.0),
                                                                     ("p1", 2.0, 4.1)]))
    gateway.publish(topics.state(gateway.site, GW),
                    GatewayState(online=True, boot=1, software="edge 1.4"), retain=True)

    assert worker.wait_idle(WAIT, committed=4)
    gateway.wait_ack(f"{GW}:1:1", "stored")
    gateway.wait_ack(f"{GW}:1:2", "stored")
    assert count(factory, Scan) == 2
    with factory() as session:
        assert session.get_one(TelemetryBatchRecord, f"{GW}:1:3").readings == 2
    with factory() as session:
        row = session.get_one(Gateway, GW)
    assert (row.site, row.online, row.software) == (gateway.site, True, "edge 1.4")
    counters = worker.counters
    assert (counters.received, counters.committed, counters.stored, counters.readings,
            counters.states) == (4, 4, 3, 2, 1)
    assert counters.acks_published >= 1  # one Ack per gateway and batch


def test_wait_idle_can_wait_for_telemetry_readings(start_worker: StartWorker,
                                                   gateway: FakeGateway) -> None:
    """A gateway that drops telemetry on the broker's PUBACK has drained before the hub has
    received it; waiting for the readings is what tells the batch is stored."""
    worker = start_worker()
    assert worker.wait_idle(WAIT)  # nothing received yet: idle, and no reading stored
    assert not worker.wait_idle(0.3, readings=1)
    gateway.publish(topics.telemetry(gateway.site, GW),
                    TelemetryBatch(id=f"{GW}:1:1", ts=T0, readings=[("p1", 1.0, 4.0),
                                                                     ("p1", 2.0, 4.1)]))
    assert worker.wait_idle(WAIT, readings=2)
    assert worker.counters.readings == 2


@pytest.mark.parametrize(("before", "after"), [
    ((700, 10, 10), (GC_YOUNG_THRESHOLD, 10, 10)),  # CPython's default: raised
    ((200_000, 5, 5), (200_000, 5, 5)),  # already higher: kept
    ((0, 10, 10), (0, 10, 10)),  # collection switched off: left off
])
def test_start_raises_the_young_gc_threshold_only(start_worker: StartWorker,
                                                  before: tuple[int, int, int],
                                                  after: tuple[int, int, int]) -> None:
    saved = gc.get_threshold()
    gc.set_threshold(*before)
    try:
        start_worker()
        assert gc.get_threshold() == after
    finally:
        gc.set_threshold(*saved)


def test_republished_event_is_acked_duplicate_and_stored_once(
        start_worker: StartWorker, gateway: FakeGateway, factory: sessionmaker[Session]) -> None:
    worker = start_worker()
    gateway.event(scan(1))
    assert worker.wait_idle(WAIT, committed=1)
    gateway.wait_ack(f"{GW}:1:1", "stored")

    gateway.event(scan(1))  # the gateway did not see the ack in time and sends it again
    assert worker.wait_idle(WAIT, committed=2)
    gateway.wait_ack(f"{GW}:1:1", "duplicate")
    assert count(factory, Scan) == 1
    assert count(factory, StoredMessage) == 1
    assert worker.counters.duplicates == 1


def test_poison_event_is_quarantined_and_rejected(
        start_worker: StartWorker, gateway: FakeGateway, factory: sessionmaker[Session]) -> None:
    worker = start_worker()
    poison = scan(5).model_dump(mode="json") | {"core_temp_c": "warm"}
    gateway.publish(topics.event(gateway.site, GW, "scan"), json.dumps(poison).encode())

    assert worker.wait_idle(WAIT, committed=1)
    reason = gateway.wait_ack(f"{GW}:1:5", "rejected")
    assert reason is not None and "core_temp_c" in reason
    assert worker.counters.quarantined == 1
    with factory() as session:
        kept = session.scalars(select(QuarantinedMessage)).one()
    assert (kept.message_id, kept.reason) == (f"{GW}:1:5", reason)
    assert count(factory, StoredMessage) == 0


def test_event_the_database_refuses_is_quarantined_not_retried_forever(
        start_worker: StartWorker, gateway: FakeGateway, factory: sessionmaker[Session]) -> None:
    clash = CustodyEvent(id=f"{GW}:1:7", ts=T0, station="st-1", item_id="ITEM-7",
                         action=CustodyAction.RECEIVED, actor="sorter", location="sc")
    with transaction(factory) as session:  # the same id, already recorded by another path
        session.add(CustodyRecord(message_id=clash.id, item_id="ITEM-7", action="picked_up",
                                  actor="driver-3", location="customer", ts=T0))
    worker = start_worker()
    gateway.event(clash)
    gateway.event(scan(8))

    assert worker.wait_idle(WAIT, committed=2)
    gateway.wait_ack(f"{GW}:1:8", "stored")
    assert "database refused it" in (gateway.wait_ack(clash.id, "rejected") or "")
    assert (worker.counters.stored, worker.counters.quarantined) == (1, 1)
    assert count(factory, QuarantinedMessage) == 1


class HubStateMonitor:
    """Collect what is published on the hub's state topic (other hubs' states included)."""

    def __init__(self, broker: BrokerAddress) -> None:
        self.states: list[HubState] = []
        self._cond = threading.Condition()
        self._client = _connect(broker, v5=False)
        subscribed = threading.Event()
        self._client.on_message = self._on_message
        self._client.on_subscribe = lambda *_: subscribed.set()
        self._client.subscribe(topics.HUB_STATE, qos=1)
        assert subscribed.wait(WAIT)

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        try:
            state = decode_as(HubState, bytes(message.payload))
        except MessageError:  # a cleared retained message, or another test's junk
            return
        with self._cond:
            self.states.append(state)
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[HubState], bool], after: int = 0) -> int:
        """Wait for a state matching ``predicate`` among those after index ``after``."""
        with self._cond:
            assert self._cond.wait_for(
                lambda: any(predicate(s) for s in self.states[after:]), WAIT), self.states
            return len(self.states)

    def close(self) -> None:
        _disconnect(self._client)


@pytest.fixture
def hub_states(broker: BrokerAddress) -> Iterator[HubStateMonitor]:
    monitor = HubStateMonitor(broker)
    yield monitor
    monitor.close()


def test_hub_state_is_retained_online_and_last_will_says_offline(
        broker: BrokerAddress, start_worker: StartWorker, hub_states: HubStateMonitor) -> None:
    since = datetime.now(UTC)
    worker = start_worker()
    retained_reader = HubStateMonitor(broker)  # subscribes after: gets the retained state
    try:
        retained_reader.wait_for(lambda s: s.online and s.ts is not None and s.ts >= since)
    finally:
        retained_reader.close()

    seen = len(hub_states.states)
    worker.kill()
    hub_states.wait_for(lambda s: not s.online and s.ts is None, after=seen)  # the last will


def test_clean_stop_announces_offline(start_worker: StartWorker,
                                      hub_states: HubStateMonitor) -> None:
    worker = start_worker()
    assert worker.status()["ok"] is True  # subscribed, storing thread alive (health check)
    since = datetime.now(UTC)
    worker.stop()
    hub_states.wait_for(lambda s: not s.online and s.ts is not None and s.ts >= since)
    status = worker.status()
    assert (status["ok"], status["connected"], status["storing"]) == (False, False, False)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the bug
def test_a_storing_thread_that_dies_tells_its_owner_and_acks_nothing(
        start_worker: StartWorker, gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch,
        factory: sessionmaker[Session]) -> None:
    def a_bug(_session: Session, _batch: object) -> None:
        raise RuntimeError("a bug in the store")

    monkeypatch.setattr("hub.mqtt_consumer.store_batch", a_bug)
    died = threading.Event()
    worker = start_worker(on_death=died.set)
    gateway.event(scan(1))
    assert died.wait(WAIT)  # `hub ingest` and `hub serve` then stop and exit 1
    status = worker.status()
    assert (status["ok"], status["storing"], status["received"]) == (False, False, 1)
    assert count(factory, Scan) == 0 and gateway.acks == []


def holding_scan_1(start_worker: StartWorker, gateway: FakeGateway,
                   down_database: DownDatabase, client_id: str | None = None, *,
                   v5: bool | None = None) -> IngestWorker:
    """A worker on the down database that has scan 1 and holds it, unacked, after its first
    failed commit."""
    worker = start_worker(client_id, v5=v5, session_factory=down_database.sessions())
    gateway.event(scan(1))
    assert down_database.failed.wait(WAIT)
    return worker


def test_nothing_is_acked_while_the_database_is_down(
        start_worker: StartWorker, gateway: FakeGateway, down_database: DownDatabase,
        caplog: pytest.LogCaptureFixture) -> None:
    worker = holding_scan_1(start_worker, gateway, down_database)
    assert not worker.wait_idle(0.3)
    assert (worker.counters.committed, worker.counters.acks_published) == (0, 0)

    down_database.restore()  # the database is back: the held batch goes in on the next retry
    assert worker.wait_idle(WAIT, committed=1)
    gateway.wait_ack(f"{GW}:1:1", "stored")
    assert worker.counters.acks_published == 1
    assert worker.counters.commit_failures >= 1
    assert count(down_database.sessions(), Scan) == 1
    failures = [r for r in caplog.records if "cannot commit" in r.getMessage()]
    assert len(failures) == 1  # logged once, not per retry


@pytest.mark.parametrize("leaving", ["kill", "stop-timing-out"])
def test_events_not_committed_are_never_acked_and_survive_the_hub_leaving(
        broker: BrokerAddress, start_worker: StartWorker, gateway: FakeGateway,
        down_database: DownDatabase, v5: bool, leaving: str) -> None:
    client_id = f"hub-test-unacked-{gateway.site}"
    first = holding_scan_1(start_worker, gateway, down_database, client_id, v5=v5)
    if leaving == "kill":
        first.kill()
    else:
        first.stop(timeout=0.5)  # the database is still down: gives up on the batch
    assert (first.counters.received, first.counters.committed,
            first.counters.acks_published) == (1, 0, 0)

    down_database.restore()
    second = start_worker(client_id, v5=v5, session_factory=down_database.sessions())
    assert second.wait_idle(WAIT, committed=1)  # redelivered: no PUBACK had been sent
    gateway.wait_ack(f"{GW}:1:1", "stored")
    assert count(down_database.sessions(), Scan) == 1


def test_stop_acks_everything_it_received(
        broker: BrokerAddress, start_worker: StartWorker, gateway: FakeGateway,
        factory: sessionmaker[Session], v5: bool) -> None:
    client_id = f"hub-test-stop-{gateway.site}"
    first = start_worker(client_id, v5=v5)
    for seq in range(1, 201):  # QoS 1, not waiting for each: a burst
        gateway._client.publish(topics.event(gateway.site, GW, "scan"), scan(seq).encode(), qos=1)
    gateway.event(scan(201))  # and the broker has them all
    first.stop()  # mid-burst: stores and acks what it queued; the broker keeps the rest
    committed = first.counters.committed
    assert committed > 0

    second = start_worker(client_id, v5=v5)
    gateway.event(scan(202))
    assert second.wait_idle(WAIT, committed=202 - committed)
    # exactly what the first one did not commit: it acked all it did, and nothing else
    assert second.counters.received == 202 - committed
    assert second.counters.duplicates == 0
    assert count(factory, Scan) == 202


def test_a_stop_mid_flood_ends_the_connection_without_a_reset(
        broker: BrokerAddress, start_worker: StartWorker, gateway: FakeGateway, v5: bool) -> None:
    """Closing with deliveries unread would reset the connection, and the broker could drop
    the last PUBACKs with it: the worker shuts its side down and reads to the end first."""
    with TcpRelay(broker.host, broker.port) as relay:
        worker = start_worker(v5=v5, url=relay.url)
        for seq in range(1, 30_001):  # queued in the gateway's client: a flood that goes on
            gateway._client.publish(topics.event(gateway.site, GW, "scan"), scan(seq).encode(),
                                    qos=1)
        gateway.wait_ack(f"{GW}:1:1", "stored")
        worker.stop()  # while deliveries keep arriving
        assert relay.wait_ended(WAIT) == "fin"
    assert worker.counters.committed > 0


def _take_over_session(broker: BrokerAddress, client_id: str, *, v5: bool) -> None:
    """Connect with a worker's client id, resuming its session, and leave acking nothing:
    the broker drops the worker's connection and keeps the session (and what is unacked)."""
    connected = threading.Event()
    if v5:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=mqtt.MQTTv5, manual_ack=True)
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = 600
        client.on_connect = lambda *_: connected.set()
        client.connect(broker.host, broker.port, clean_start=False, properties=properties)
    else:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                             clean_session=False, protocol=mqtt.MQTTv311, manual_ack=True)
        client.on_connect = lambda *_: connected.set()
        client.connect(broker.host, broker.port)
    client.loop_start()
    assert connected.wait(WAIT)
    _disconnect(client)


def test_a_lost_connection_is_resumed_and_what_it_held_is_acked_once(
        broker: BrokerAddress, start_worker: StartWorker, gateway: FakeGateway,
        hub_states: HubStateMonitor, down_database: DownDatabase, v5: bool) -> None:
    client_id = f"hub-test-resume-{gateway.site}"
    worker = holding_scan_1(start_worker, gateway, down_database, client_id, v5=v5)
    seen, since = len(hub_states.states), datetime.now(UTC)
    _take_over_session(broker, client_id, v5=v5)
    # reconnected (after a second's backoff) and subscribed again
    hub_states.wait_for(lambda s: s.online and s.ts is not None and s.ts >= since,
                        after=seen)
    assert worker.counters.received == 2  # the broker redelivered the unacked event

    down_database.restore()
    assert worker.wait_idle(WAIT, committed=2)
    gateway.wait_ack(f"{GW}:1:1", "stored")
    gateway.wait_ack(f"{GW}:1:1", "duplicate")
    assert (worker.counters.stored, worker.counters.duplicates) == (1, 1)
    worker.stop()

    again = start_worker(client_id, v5=v5, session_factory=down_database.sessions())
    gateway.event(scan(2))
    assert again.wait_idle(WAIT, committed=1)
    assert again.counters.received == 1  # the redelivered copy was acked: not sent again
    assert count(down_database.sessions(), Scan) == 2


def test_acks_wait_for_the_brokers_receive_maximum(
        site: str, factory: sessionmaker[Session], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A broker taking few unacked publications at once (Mosquitto's default is 20) still gets
    every ack: the worker holds the others back until its PUBACKs free packet ids."""
    from firmware_sim import services

    binary = services.mosquitto_binary()
    if binary is None:
        pytest.skip("needs the mosquitto binary, for a broker of its own")
    conf = tmp_path / "small-window.conf"
    conf.write_text(services.BROKER_CONFIG.read_text().replace(
        "max_inflight_messages 0", "max_inflight_messages 3"))
    monkeypatch.setattr(services, "BROKER_CONFIG", conf)
    with services.private_mosquitto(binary, tmp_path) as url:
        address = BrokerAddress("127.0.0.1", urlparse(url).port or 1883, "mosquitto")
        worker = IngestWorker(
            HubSettings(mqtt=MqttSettings(url=url, client_id="hub-small-window"),
                        ingest=IngestSettings(batch_size=100, batch_wait_ms=50)),
            factory, protocol_v5=True, sites=[site])
        gateways = [FakeGateway(address, site, f"gw-{n}") for n in range(12)]
        worker.start()
        try:
            assert worker.wait_ready(WAIT)
            for fake in gateways:  # one batch: 12 acks to publish at once
                fake._client.publish(topics.event(site, fake.gateway, "scan"),
                                     scan(1, fake.gateway).encode(), qos=1)
            assert worker.wait_idle(WAIT, committed=len(gateways))
            for fake in gateways:
                fake.wait_ack(f"{fake.gateway}:1:1", "stored")
        finally:
            worker.stop()
            for fake in gateways:
                fake.close()


def test_shared_subscription_splits_the_load(
        broker: BrokerAddress, start_worker: StartWorker, gateway: FakeGateway,
        factory: sessionmaker[Session]) -> None:
    if not broker.speaks_v5:
        pytest.skip("shared subscriptions need MQTT v5")
    group = f"g{uuid.uuid4().hex[:8]}"
    workers = [start_worker(share_group=group), start_worker(share_group=group)]
    for seq in range(1, 21):
        gateway.event(scan(seq))

    for seq in range(1, 21):
        gateway.wait_ack(f"{GW}:1:{seq}", "stored")
    assert all(worker.wait_idle(WAIT) for worker in workers)
    assert count(factory, Scan) == 20
    assert sum(worker.counters.received for worker in workers) == 20


def test_share_group_needs_mqtt_v5(factory: sessionmaker[Session]) -> None:
    settings = HubSettings(mqtt=MqttSettings(url="mqtt://127.0.0.1:1", share_group="hub"))
    with pytest.raises(ConfigError, match="share_group needs MQTT v5"):
        IngestWorker(settings, factory, protocol_v5=False).start()


def test_amqtt_is_used_with_mqtt_3_1_1(site: str, factory: sessionmaker[Session]) -> None:
    with EmbeddedBroker() as embedded:
        address = BrokerAddress(embedded.host, embedded.port, "amqtt")
        settings = HubSettings(mqtt=MqttSettings(url=embedded.url, client_id="hub-amqtt"),
                               ingest=IngestSettings(batch_wait_ms=10))
        worker = IngestWorker(settings, factory, sites=[site])  # asks the broker
        worker.start()
        gateway = FakeGateway(address, site)
        try:
            assert worker.protocol_v5 is False
            assert worker.wait_ready(WAIT)
            gateway.event(scan(1))
            assert worker.wait_idle(WAIT, committed=1)
            gateway.wait_ack(f"{GW}:1:1", "stored")
        finally:
            gateway.close()
            worker.stop(timeout=2)
    assert count(factory, Scan) == 1


def test_probe_tells_mosquitto_from_amqtt(broker: BrokerAddress) -> None:
    if broker.kind == "mosquitto":
        assert broker_speaks_v5(MqttSettings(url=broker.url)) is True
    with EmbeddedBroker() as embedded:
        assert broker_speaks_v5(MqttSettings(url=embedded.url)) is False


def test_unreachable_broker_is_reported() -> None:
    from hub.embedded_broker import free_port

    url = f"mqtt://127.0.0.1:{free_port()}"
    with pytest.raises(BrokerUnavailable, match="does not answer"):
        broker_speaks_v5(MqttSettings(url=url))


def test_stored_telemetry_reaches_influxdb_once(
        start_worker: StartWorker, gateway: FakeGateway, victoria_metrics: str) -> None:
    from hub.influx import InfluxSink
    from tests.hub.test_influx import T0 as EPOCH
    from tests.hub.test_influx import exported
    from tests.hub.test_influx import settings as influx_settings

    sink = InfluxSink(influx_settings(victoria_metrics))
    try:
        worker = start_worker(sinks=[sink])
        batch = TelemetryBatch(id=f"{GW}:1:1", ts=T0, readings=[
            ("p1", EPOCH, 4.0), ("p1", EPOCH + 1, 4.5), ("p2", EPOCH, None)])
        gateway.publish(topics.telemetry(gateway.site, GW), batch)
        gateway.publish(topics.telemetry(gateway.site, GW), batch)  # a redelivery
        assert worker.wait_idle(WAIT, committed=2)
        assert sink.flush(WAIT)
    finally:
        sink.close()

    series, _ = exported(victoria_metrics, gateway.site)
    assert series == {(GW, "p1"): [(int(EPOCH * 1000), 4.0), (int(EPOCH * 1000) + 1000, 4.5)]}
    assert (sink.counters.submitted, sink.counters.written, sink.counters.skipped) == (3, 2, 1)
