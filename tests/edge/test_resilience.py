"""The gateway and hub on a real broker through outages, restarts, kill -9 and a full disk.

Afterwards the hub must hold every recorded scan exactly once; the tests count them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import pytest
from sqlalchemy import func, select

from edge.gateway import Gateway, build_gateway
from edge.ports import Light
from edge.settings import GatewaySettings
from firmware_sim.clock import VirtualClock
from firmware_sim.devices import SimulatedHardware
from firmware_sim.services import REPO, mosquitto_binary, start_mosquitto
from firmware_sim.stack import Stack, start_stack
from hub.models import Scan, StoredMessage, TelemetryBatchRecord
from protocols.tag import TagRecord

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
GTIN = "06901234000115"
WAIT = 30.0


def _record(n: int) -> TagRecord:
    return TagRecord(f"IT-{n:06d}", "L1", GTIN, T0 - timedelta(hours=20))


class Rig:
    """A hub stack and one gateway with one simulated station, on a virtual clock."""

    def __init__(self, broker_url: str, tmp: Path, **mqtt: object) -> None:
        self.site = f"r{uuid.uuid4().hex[:10]}"
        self.stack: Stack = start_stack(tmp / "hub", sites=[self.site], broker=broker_url)
        self.clock = VirtualClock(T0)
        self.hardware = SimulatedHardware(self.clock, tmp / "tty")
        self.settings = GatewaySettings.model_validate({
            "id": "gw-r", "site": self.site, "data_dir": tmp / "gw",
            "mqtt": {**self.stack.gateway_mqtt(), "backoff_min_s": 0.1, "backoff_max_s": 0.5,
                     **mqtt},
            "stations": [{"id": "st-1"}]})
        self.gateway: Gateway = build_gateway(self.settings, self.hardware, clock=self.clock)
        self.gateway.start(poll_interval_s=None)
        self.devices = self.hardware.stations["st-1"]
        self.scanned = 0

    def scan(self, count: int) -> list[Light]:
        """Lay ``count`` new items on the pad one after another."""
        lights = []
        for _ in range(count):
            self.scanned += 1
            self.clock.advance(30)
            self.devices.set_core_temperature(3.0)
            self.devices.present_tag(f"{self.scanned:08x}", _record(self.scanned))
            lights += [o.light for o in self.gateway.poll_once()]
            self.devices.remove_tag()
            self.gateway.poll_once()
        return lights

    def hub_scans(self) -> list[tuple[str, bool]]:
        with self.stack.factory() as session:
            rows = session.execute(select(Scan.item_id, Scan.historical).order_by(Scan.item_id))
            return [(item, historical) for item, historical in rows]

    def hub_readings(self) -> int:
        prefix = f"{self.settings.id}:{self.gateway.boot}:%"
        with self.stack.factory() as session:
            return int(session.scalar(
                select(func.coalesce(func.sum(TelemetryBatchRecord.readings), 0))
                .where(TelemetryBatchRecord.batch_id.like(prefix))) or 0)

    def settle(self, readings: int = 0) -> None:
        """Flush, drain, and wait until the running ingest worker is idle having stored at
        least ``readings`` telemetry readings (telemetry leaves the outbox on the broker's
        PUBACK, so a drained outbox does not mean the hub has it yet)."""
        self.gateway.telemetry.flush()
        assert self.gateway.uplink.wait_drained(WAIT), "gateway did not drain its outbox"
        assert self.stack.ingest.wait_idle(WAIT, readings=readings)

    def close(self) -> None:
        self.gateway.stop()  # also closes the simulated devices' SPI scope
        self.stack.stop()


@pytest.fixture
def rig(broker, tmp_path: Path) -> Iterator[Rig]:  # type: ignore[no-untyped-def]
    made = Rig(broker.url, tmp_path)
    yield made
    made.close()


def test_hub_down_for_a_while(rig: Rig) -> None:
    assert rig.gateway.uplink.wait_live(True, WAIT)
    rig.scan(3)
    rig.stack.stop_ingest()
    stored_before = rig.hub_readings()  # the stopped worker stored these
    assert rig.gateway.uplink.wait_live(False, WAIT)
    assert rig.scan(4) == [Light.GREEN] * 4  # the station answers while the hub is away
    rig.stack.start_ingest()
    rig.gateway.telemetry.flush()
    rig.settle(readings=rig.gateway.telemetry.readings_committed - stored_before)
    scans = rig.hub_scans()
    assert [item for item, _ in scans] == [_record(n).item_id for n in range(1, 8)]
    assert sum(historical for _, historical in scans) == 4
    assert rig.hub_readings() == rig.gateway.telemetry.readings_committed > 0


def test_full_disk_refuses_scans_alarms_and_loses_nothing_recorded(rig: Rig) -> None:
    assert rig.gateway.uplink.wait_live(True, WAIT)
    rig.scan(2)
    rig.gateway.outbox.free_bytes = lambda: 10 * 2**20  # below the 50 MB event reserve
    assert rig.scan(3) == [Light.REFUSED] * 3
    assert rig.gateway.uplink.alarms == {"disk_full"}
    rig.gateway.outbox.free_bytes = lambda: 10 * 2**30
    rig.scan(2)
    assert rig.gateway.uplink.alarms == set()
    rig.settle()
    recorded = [_record(n).item_id for n in (1, 2, 6, 7)]
    assert [item for item, _ in rig.hub_scans()] == recorded


@pytest.fixture
def own_mosquitto(tmp_path: Path) -> Iterator[tuple[str, Callable[[], None]]]:
    """A Mosquitto of this test's own, with a restart() (on the same port) the test can call."""
    binary = mosquitto_binary()
    if binary is None:
        pytest.skip("needs the mosquitto binary to restart a broker")
    procs = []
    proc, url = start_mosquitto(binary, tmp_path)
    procs.append(proc)

    def restart() -> None:
        procs[-1].send_signal(signal.SIGKILL)
        procs[-1].wait(timeout=10)
        procs.append(start_mosquitto(binary, tmp_path, urlparse(url).port)[0])

    yield url, restart
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)


def test_broker_restarted(own_mosquitto, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url, restart = own_mosquitto
    rig = Rig(url, tmp_path)
    try:
        assert rig.gateway.uplink.wait_live(True, WAIT)
        rig.scan(3)
        restart()  # everything in the broker's memory is gone
        rig.scan(3)
        assert rig.gateway.uplink.wait_live(True, WAIT)
        rig.clock.advance(60)  # past the ack timeout: anything unacknowledged is due again
        rig.settle()
        assert [i for i, _ in rig.hub_scans()] == [_record(n).item_id for n in range(1, 7)]
        # Telemetry left on PUBACK: what the broker lost in the restart is gone, never doubled.
        assert 0 < rig.hub_readings() <= rig.gateway.telemetry.readings_committed
    finally:
        rig.close()


_CHILD = """
import os, signal, sys
from pathlib import Path
from edge.outbox import Outbox
from edge.recorder import Recorder
from edge.settings import GatewaySettings
from edge.uplink import Uplink
from protocols.messages import ScanEvent
settings = GatewaySettings.model_validate_json(sys.argv[1])
outbox = Outbox(settings.outbox_path)
boot = outbox.next_boot()
recorder = Recorder(settings.id, settings.site, boot, outbox, lambda: 1.8e9)
events = [ScanEvent(**recorder.common(), station="st-1", item_id=f"IT-{n:06d}",
                    tag_uid=f"{n:08x}", lot="L1", gtin="06901234000115", core_temp_c=3.0)
          for n in range(1, 201)]
for i in range(0, 200, 20):
    recorder.commit_events(events[i:i + 20])
remove, due = outbox.remove, outbox.due
first = {e.id for e in events[:20]}


def first_batch_only(*args, **kwargs):
    # a slow link: only the first 20 go out before the power goes, so the hub's first ack
    # cannot cover the whole backlog (it batches what it has stored)
    return [p for p in due(*args, **kwargs) if p.msg_id in first]


def remove_then_die(ids):
    removed = remove(ids)  # the first ack is applied and committed ...
    os.kill(os.getpid(), signal.SIGKILL)  # ... then the power goes, mid-backlog
    return removed


outbox.due = first_batch_only
outbox.remove = remove_then_die
uplink = Uplink(settings, outbox, boot, lambda: 1.8e9,
                protocol_v5=settings.mqtt.protocol == "5")
uplink.start()
uplink.wait_drained(60)
"""


def test_gateway_kill_9_mid_batch(broker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    site = f"k{uuid.uuid4().hex[:10]}"
    stack = start_stack(tmp_path / "hub", sites=[site], broker=broker.url)
    try:
        settings = GatewaySettings.model_validate({
            "id": "gw-k", "site": site, "data_dir": tmp_path / "gw",
            "mqtt": {**stack.gateway_mqtt(), "inflight": 10}, "stations": [{"id": "st-1"}]})
        child = subprocess.run([sys.executable, "-c", _CHILD, settings.model_dump_json()],
                               cwd=REPO, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
        assert child.returncode == -signal.SIGKILL
        from edge.outbox import Outbox
        from edge.uplink import Uplink

        outbox = Outbox(settings.outbox_path)
        left = outbox.depth()
        assert 180 <= left < 200  # the first ack removed some of the first 20, no more
        uplink = Uplink(settings, outbox, outbox.next_boot(), lambda: 1.8e9 + 3600,
                        protocol_v5=stack.protocol_v5)
        uplink.start()
        try:
            assert uplink.wait_drained(WAIT)
        finally:
            uplink.stop()
        assert stack.ingest.wait_idle(WAIT)
        with stack.factory() as session:
            items = session.scalars(select(Scan.item_id).order_by(Scan.item_id)).all()
            stored = session.scalar(select(func.count()).select_from(StoredMessage))
        assert items == [f"IT-{n:06d}" for n in range(1, 201)]  # every scan, exactly once
        assert stored == 200
    finally:
        stack.stop()


def test_state_alarms_travel_in_the_retained_state(rig: Rig) -> None:
    assert rig.gateway.uplink.wait_live(True, WAIT)
    assert rig.gateway.uplink.state_message().alarms == []
    rig.gateway.outbox.free_bytes = lambda: 100 * 2**20  # between the two reserves
    rig.gateway.poll_once()
    assert rig.gateway.uplink.state_message().alarms == ["disk_low"]


def test_manifest_sent_by_the_hub_command_reaches_the_stations(rig: Rig, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from firmware_sim.scenario import EPOCH
    from hub.console import main
    from hub.models import Customer, Item, Order, Pickup

    with rig.stack.factory.begin() as session:  # the hub expects item 1 back
        session.add(Customer(id="C1", name="c"))
        session.add(Order(id="O1", customer_id="C1", placed_at=EPOCH, delivered_at=EPOCH))
        session.flush()
        session.add(Item(id=_record(1).item_id, order_id="O1", gtin=GTIN, lot="L1",
                         product="Strawberries", family="berries", packed_at=EPOCH))
        session.flush()
        session.add(Pickup(item_id=_record(1).item_id, code="K7M4-QX2A", issued_at=EPOCH))
    assert rig.gateway.uplink.wait_live(True, WAIT)
    config = tmp_path / "hub.toml"
    config.write_text(f'[database]\nurl = "{rig.stack.settings.database_url}"\n'
                      f'[mqtt]\nurl = "{rig.stack.broker_url}"\n'
                      f'protocol = "{rig.stack.settings.mqtt.protocol}"\n')
    result = CliRunner().invoke(main, ["--data-dir", str(tmp_path), "hub", "send-manifest",
                                       "--config", str(config), rig.site, "gw-r"])
    assert result.exit_code == 0, result.output
    manifest = rig.gateway.manifest
    assert manifest is not None
    assert rig.gateway.uplink.wait_until(lambda: manifest.version > 0, WAIT)  # uplink applied it
    assert rig.scan(2) == [Light.GREEN, Light.UNKNOWN_TAG]  # item 2 is not expected back
