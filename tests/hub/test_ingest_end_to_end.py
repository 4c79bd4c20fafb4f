"""Ingest as the issue defines "done": a messy mix over a real broker, and a killed hub process.

1. Several gateways publish valid, duplicate, out-of-order, malformed and oversized messages;
   each valid message is stored once, each invalid one quarantined with its reason, and every
   ack the gateways got names something the database holds.
2. A ``coldloop hub ingest`` process is killed (SIGKILL) while storing a flood and started
   again: nothing is lost and nothing is stored twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from firmware_sim.services import REPO
from hub.db import make_engine, migrate, session_factory
from hub.models import GradeRecord, QuarantinedMessage, Scan, StoredMessage, TelemetryBatchRecord
from hub.mqtt_consumer import IngestWorker
from hub.settings import HubSettings, IngestSettings, MqttSettings
from protocols import topics
from protocols.messages import MAX_PAYLOAD_BYTES, Grade, GradeEvent, ScanEvent, TelemetryBatch
from protocols.topics import EventType
from tests.conftest import BrokerAddress
from tests.hub.test_mqtt_consumer import WAIT, FakeGateway, HubStateMonitor, _connect, _disconnect

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
GATEWAYS = ("gw-a", "gw-b", "gw-c")


def scan(gateway: str, seq: int, *, boot: int = 1, **changes: object) -> ScanEvent:
    values: dict[str, object] = {
        "id": f"{gateway}:{boot}:{seq}", "ts": T0 + timedelta(seconds=seq), "station": "st-1",
        "item_id": f"IT-{gateway.upper()}-{seq}", "tag_uid": "04a1b2c3", "lot": "L2611",
        "gtin": "06901234567892", "core_temp_c": 3.5}
    return ScanEvent(**{**values, **changes})  # type: ignore[arg-type]


def grade(gateway: str, seq: int, scan_seq: int, verdict: str, at: datetime) -> GradeEvent:
    return GradeEvent(id=f"{gateway}:1:{seq}", ts=at, station="st-1",
                      item_id=f"IT-{gateway.upper()}-{scan_seq}", scan_id=f"{gateway}:1:{scan_seq}",
                      grade=Grade(verdict), model_version="rule-1", scores={}, features={})


def telemetry(gateway: str, seq: int, readings: int = 40) -> TelemetryBatch:
    base = T0.timestamp() + seq
    return TelemetryBatch(id=f"{gateway}:1:{seq}", ts=T0, readings=[
        (f"p{n % 4}", base + n, 2.0 + n / 100) for n in range(readings)])


@pytest.fixture
def site() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def factory(hub_db: sessionmaker[Session]) -> sessionmaker[Session]:
    """The migrated, empty database (no seeded order)."""
    return hub_db


def count(factory: sessionmaker[Session], model: type[object], *where: object) -> int:
    with factory() as session:
        return int(session.scalar(select(func.count()).select_from(model)  # type: ignore[arg-type]
                                  .where(*where)) or 0)  # type: ignore[arg-type]


def test_a_messy_mix_from_several_gateways(broker: BrokerAddress, site: str,
                                           factory: sessionmaker[Session]) -> None:
    client_id = f"hub-mix-{uuid.uuid4().hex[:8]}"
    worker = IngestWorker(
        HubSettings(mqtt=MqttSettings(url=broker.url, client_id=client_id),
                    ingest=IngestSettings(batch_size=50, batch_wait_ms=10)),
        factory, protocol_v5=broker.speaks_v5, sites=[site])
    gateways = {g: FakeGateway(broker, site, g) for g in GATEWAYS}
    try:
        worker.start()
        assert worker.wait_ready(WAIT)
        valid: set[str] = set()
        invalid: dict[str, tuple[str, str]] = {}  # id -> (publisher, word its reason holds)
        published = 0

        def send(gateway: str, topic: str, payload: bytes) -> None:
            nonlocal published
            gateways[gateway].publish(topic, payload)
            published += 1

        for index, g in enumerate(GATEWAYS):
            event_topic = topics.event(site, g, EventType.SCAN)
            for seq in (5, 3, 4, 1, 2):  # out of order
                send(g, event_topic, scan(g, seq).encode())
                valid.add(f"{g}:1:{seq}")
            send(g, event_topic, scan(g, 3).encode())  # a duplicate
            send(g, topics.telemetry(site, g), telemetry(g, 6).encode())
            send(g, topics.telemetry(site, g), telemetry(g, 6).encode())  # duplicate batch
            valid.add(f"{g}:1:6")
            # grades out of order: the later grade arrives first and must keep the item
            grade_topic = topics.event(site, g, EventType.GRADE)
            send(g, grade_topic, grade(g, 8, 1, "scrap", T0 + timedelta(minutes=5)).encode())
            send(g, grade_topic, grade(g, 7, 1, "resell", T0 + timedelta(minutes=1)).encode())
            valid |= {f"{g}:1:7", f"{g}:1:8"}
            # malformed: cut short inside its id, so no id can be read (quarantined, not acked)
            send(g, event_topic, b'{"v": "1.0", "id": "' + f"{g}:1:2".encode())
            # cut short after its id: rejected, so that the gateway stops resending it
            send(g, event_topic, b'{"v": "1.0", "id": "' + f"{g}:1:20".encode() + b'", "ts": ')
            invalid[f"{g}:1:20"] = (g, "not valid JSON")
            # invalid, each with an id the gateway would retry until told
            bad_temp = json.loads(scan(g, 21).encode())
            bad_temp["core_temp_c"] = 900
            send(g, event_topic, json.dumps(bad_temp).encode())
            invalid[f"{g}:1:21"] = (g, "core_temp_c")
            future = json.loads(scan(g, 22).encode())
            future["v"] = "9.0"
            send(g, event_topic, json.dumps(future).encode())
            invalid[f"{g}:1:22"] = (g, "major version 9")
            other = GATEWAYS[(index + 1) % len(GATEWAYS)]  # another gateway's id on my topic
            send(g, event_topic, scan(other, 30 + index).encode())
            invalid[f"{other}:1:{30 + index}"] = (g, "gateway")
            huge = json.loads(scan(g, 24).encode())
            huge["note"] = "x" * MAX_PAYLOAD_BYTES  # over the protocol's limit, under the broker's
            send(g, event_topic, json.dumps(huge).encode())
            invalid[f"{g}:1:24"] = (g, "limit")

        assert worker.wait_idle(WAIT * 3, committed=published)
        for message_id in valid:
            gateways[message_id.split(":")[0]].wait_ack(message_id, "stored")
        for message_id, (publisher, _) in invalid.items():
            gateways[publisher].wait_ack(message_id, "rejected")

        # each valid message stored exactly once
        with factory() as session:
            stored = list(session.scalars(select(StoredMessage.message_id)))
            reasons = dict(session.execute(
                select(QuarantinedMessage.message_id, QuarantinedMessage.reason)).all())
            kept = {g: session.scalar(select(GradeRecord.grade).where(
                GradeRecord.message_id == f"{g}:1:8")) for g in GATEWAYS}
        assert sorted(stored) == sorted(valid)
        assert count(factory, Scan) == 5 * len(GATEWAYS)
        assert count(factory, TelemetryBatchRecord) == len(GATEWAYS)
        assert kept == dict.fromkeys(GATEWAYS, "scrap")
        # each invalid one quarantined, with its reason
        unreadable = reasons.pop(None)
        assert set(reasons) == set(invalid)
        for message_id, (_, word) in invalid.items():
            assert word in reasons[message_id], (message_id, reasons[message_id])
        assert "not valid JSON" in unreadable
        assert count(factory, QuarantinedMessage,
                     QuarantinedMessage.message_id.is_(None)) == len(GATEWAYS)
        # nothing acked that the database does not hold
        for fake in gateways.values():
            for message_id, status, _ in fake.acks:
                if status in ("stored", "duplicate"):
                    assert message_id in valid, (message_id, status)
                else:
                    assert message_id in reasons, (message_id, status)
        statuses = [s for fake in gateways.values() for _, s, _ in fake.acks]
        assert statuses.count("duplicate") == 2 * len(GATEWAYS)
        assert worker.counters.quarantined == len(invalid) + len(GATEWAYS)
    finally:
        worker.stop()
        for fake in gateways.values():
            fake.close()
        _disconnect(_connect(broker, client_id, v5=broker.speaks_v5))


# --- a hub process killed mid-batch ----------------------------------------------------------


def _start_hub(config: Path, data_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "hub.console", "--data-dir", str(data_dir), "hub", "ingest",
             "--config", str(config)], cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _wait(condition: object, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.02)  # polling a database count, with a deadline


def test_killing_the_hub_mid_batch_loses_and_duplicates_nothing(
        broker: BrokerAddress, site: str, database_url: str, tmp_path: Path) -> None:
    client_id = f"hub-kill-{uuid.uuid4().hex[:8]}"
    config = tmp_path / "hub.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n'
                      f'[mqtt]\nurl = "{broker.url}"\nclient_id = "{client_id}"\n'
                      f'protocol = "{"5" if broker.speaks_v5 else "3.1.1"}"\n'
                      '[ingest]\nbatch_size = 200\nbatch_wait_ms = 20\n')
    migrate(database_url)
    engine = make_engine(database_url)
    factory = session_factory(engine)
    log = tmp_path / "hub.log"
    monitor = HubStateMonitor(broker)
    gateways = {g: FakeGateway(broker, site, g) for g in GATEWAYS}
    hub = _start_hub(config, tmp_path, log)
    try:
        monitor.wait_for(lambda s: s.online and s.ts is not None)
        expected: set[str] = set()
        for seq in range(1, 601):  # 1,710 scans and 90 telemetry batches, QoS 1
            for g, fake in gateways.items():
                message = telemetry(g, seq, 200) if seq % 20 == 0 else scan(g, seq)
                topic = (topics.telemetry(site, g) if seq % 20 == 0
                         else topics.event(site, g, EventType.SCAN))
                fake._client.publish(topic, message.encode(), qos=1)
                expected.add(message.id)

        def stored() -> int:
            return count(factory, StoredMessage)

        _wait(lambda: stored() > 0, f"the hub stored nothing (log: {log.read_text()[-2000:]})")
        hub.send_signal(signal.SIGKILL)  # as a power cut would: no offline state, no flush
        hub.wait(WAIT)
        at_kill = stored()
        assert 0 < at_kill < len(expected), "the kill came too late to be mid-flood"

        hub = _start_hub(config, tmp_path, log)  # same client id: its session is redelivered
        _wait(lambda: stored() >= len(expected),
              f"stored {stored()} of {len(expected)} (log: {log.read_text()[-2000:]})")
        def acked() -> set[str]:  # "duplicate" if the kill came between commit and ack
            return {i for fake in gateways.values() for i, s, _ in list(fake.acks)
                    if s in ("stored", "duplicate")}

        _wait(lambda: expected <= acked(), "some messages were never acked")
        with factory() as session:
            ids = list(session.scalars(select(StoredMessage.message_id)))
            readings = session.scalar(select(func.sum(TelemetryBatchRecord.readings)))
        assert len(ids) == len(set(ids)) == len(expected) and set(ids) == expected
        assert count(factory, Scan) == 3 * 570
        assert readings == 90 * 200
        assert count(factory, QuarantinedMessage) == 0
    finally:
        hub.terminate()
        try:
            hub.wait(WAIT)
        except subprocess.TimeoutExpired:
            hub.kill()
        monitor.close()
        for fake in gateways.values():
            fake.close()
        _disconnect(_connect(broker, client_id, v5=broker.speaks_v5))
        engine.dispose()
