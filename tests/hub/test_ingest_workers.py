"""``coldloop hub ingest --workers N``: a supervisor keeps N worker processes on one shared
subscription running, over a real broker and real ``coldloop`` processes.

1. Two workers come up (two online hub states) and store each message once.
2. A worker SIGKILLed mid-flood is restarted by the supervisor: nothing lost or stored twice.
3. SIGTERM stops the supervisor and every worker (exit code 0); a killed supervisor's workers
   stop by themselves.
4. More than one worker without a shared subscription, or on an MQTT 3.1.1 broker: refused.
5. ``hub serve`` with ingest.workers = 2: its own worker plus one supervised process.

Waits are on conditions with deadlines (state messages, database counts, /proc), never sleeps.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from firmware_sim.services import REPO
from hub.ingest_supervisor import IngestSupervisor
from hub.models import QuarantinedMessage, Scan, StoredMessage, TelemetryBatchRecord
from hub.settings import MAX_INGEST_WORKERS, IngestSettings, load_hub_settings
from protocols import topics
from protocols.config import ConfigError
from protocols.errors import MessageError
from protocols.messages import HubState, decode_as
from protocols.topics import EventType
from tests.conftest import BrokerAddress
from tests.hub.test_ingest_end_to_end import GATEWAYS, _wait, count, scan, telemetry
from tests.hub.test_mqtt_consumer import WAIT, FakeGateway, _connect, _disconnect

START_S = 60.0  # a worker process imports the hub and connects: generous, never slept


def _config(path: Path, broker: BrokerAddress, database_url: str, client_id: str, *,
            share_group: str | None = "auto", protocol: str = "5", workers: int = 1,
            extra: str = "") -> Path:
    group = f"g{uuid.uuid4().hex[:8]}" if share_group == "auto" else share_group
    path.write_text(
        f'[database]\nurl = "{database_url}"\n'
        f'[mqtt]\nurl = "{broker.url}"\nclient_id = "{client_id}"\nprotocol = "{protocol}"\n'
        + (f'share_group = "{group}"\n' if group else "")
        + f"[ingest]\nbatch_size = 200\nbatch_wait_ms = 20\nworkers = {workers}\n" + extra)
    return path


def _coldloop(data_dir: Path, log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "hub.console", "--data-dir", str(data_dir), "-v", *args],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _processes() -> Iterator[tuple[int, int, list[str]]]:
    """(pid, parent pid, command line) of every live process, from /proc."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:  # it exited meanwhile
            continue
        state, ppid = stat[stat.rindex(")") + 2:].split()[:2]
        if state != "Z":
            yield int(entry.name), int(ppid), argv


def workers_of(supervisor: int) -> dict[int, int]:
    """The supervisor's running worker processes: worker index -> pid."""
    return {int(argv[argv.index("--worker-index") + 1]): pid
            for pid, ppid, argv in _processes() if ppid == supervisor and "--worker-index" in argv}


def running_with(config: Path) -> list[int]:
    """Every process started with this settings file (a supervisor and its workers)."""
    return [pid for pid, _, argv in _processes() if str(config) in argv]


class HubStates:
    """Counts fresh hub states: "online" once a worker subscribed, "offline" on a clean stop."""

    def __init__(self, broker: BrokerAddress) -> None:
        self.online = self.offline = 0
        self._cond = threading.Condition()
        self._client = _connect(broker, v5=False)
        subscribed = threading.Event()
        self._client.on_message = self._on_message
        self._client.on_subscribe = lambda *_: subscribed.set()
        self._client.subscribe(topics.HUB_STATE, qos=1)
        assert subscribed.wait(WAIT)

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        if message.retain:  # an earlier hub's
            return
        try:
            state = decode_as(HubState, bytes(message.payload))
        except MessageError:
            return
        with self._cond:
            if state.online:
                self.online += 1
            elif state.ts is not None:  # not the last will: a worker that stopped cleanly
                self.offline += 1
            self._cond.notify_all()

    def wait(self, *, online: int = 0, offline: int = 0, timeout: float = START_S) -> None:
        with self._cond:
            assert self._cond.wait_for(
                lambda: self.online >= online and self.offline >= offline, timeout), \
                (self.online, self.offline)

    def close(self) -> None:
        _disconnect(self._client)


@pytest.fixture
def site() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def v5_broker(broker: BrokerAddress) -> BrokerAddress:
    if not broker.speaks_v5:
        pytest.skip("several ingest workers need MQTT v5 shared subscriptions")
    if not Path("/proc/self/stat").exists():
        pytest.skip("finds the worker processes in /proc")
    return broker


@pytest.fixture
def factory(hub_db: sessionmaker[Session]) -> sessionmaker[Session]:
    """The migrated, empty database (no seeded order)."""
    return hub_db


@pytest.fixture
def hub_states(v5_broker: BrokerAddress) -> Iterator[HubStates]:
    states = HubStates(v5_broker)
    yield states
    states.close()
    cleaner = _connect(v5_broker, v5=False)  # no retained state of ours for later tests
    cleaner.publish(topics.HUB_STATE, b"", qos=1, retain=True).wait_for_publish(WAIT)
    _disconnect(cleaner)


@pytest.fixture
def gateways(v5_broker: BrokerAddress, site: str) -> Iterator[dict[str, FakeGateway]]:
    fakes = {g: FakeGateway(v5_broker, site, g) for g in GATEWAYS}
    yield fakes
    for fake in fakes.values():
        fake.close()


def _stop(hub: subprocess.Popen[bytes], broker: BrokerAddress, client_id: str,
          workers: int) -> int:
    """SIGTERM the supervisor, wait for it, drop the workers' sessions; its exit code."""
    hub.terminate()
    try:
        code = hub.wait(START_S)
    except subprocess.TimeoutExpired:
        hub.kill()
        code = hub.wait()
    for k in range(workers):  # a clean connect discards the persistent session
        _disconnect(_connect(broker, f"{client_id}-{k}" if k else client_id, v5=True))
    return code


def _flood(gateways: dict[str, FakeGateway], site: str, seqs: int) -> set[str]:
    """Scans from every gateway with a 200-reading telemetry batch every 20th; their ids."""
    expected: set[str] = set()
    for seq in range(1, seqs + 1):
        for g, fake in gateways.items():
            message = telemetry(g, seq, 200) if seq % 20 == 0 else scan(g, seq)
            topic = (topics.telemetry(site, g) if seq % 20 == 0
                     else topics.event(site, g, EventType.SCAN))
            fake._client.publish(topic, message.encode(), qos=1)
            expected.add(message.id)
    return expected


def _acked(gateways: dict[str, FakeGateway]) -> set[str]:
    return {i for fake in gateways.values() for i, s, _ in list(fake.acks)
            if s in ("stored", "duplicate")}


def _assert_stored_once(factory: sessionmaker[Session], expected: set[str], seqs: int) -> None:
    with factory() as session:
        ids = list(session.scalars(select(StoredMessage.message_id)))
        readings = session.scalar(select(func.sum(TelemetryBatchRecord.readings)))
    assert len(ids) == len(set(ids)) == len(expected) and set(ids) == expected
    batches = len(GATEWAYS) * (seqs // 20)
    assert count(factory, Scan) == len(expected) - batches
    assert readings == batches * 200
    assert count(factory, QuarantinedMessage) == 0


def _start_workers(tmp_path: Path, broker: BrokerAddress, database_url: str, *,
                   setting: int | None = None) -> tuple[subprocess.Popen[bytes], str, Path]:
    """Start ``hub ingest`` with 2 workers by ``--workers`` (or ``setting`` workers by
    ingest.workers); return the process, the client id and the log file."""
    client_id = f"hub-workers-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "hub.toml"
    config = (_config(path, broker, database_url, client_id) if setting is None
              else _config(path, broker, database_url, client_id, workers=setting))
    log = tmp_path / "hub.log"
    flag = ["--workers", "2"] if setting is None else []
    return _coldloop(tmp_path, log, "hub", "ingest", "--config", str(config), *flag), \
        client_id, log


# --- 1. two workers --------------------------------------------------------------------------


def test_two_workers_come_up_and_store_each_message_once(
        v5_broker: BrokerAddress, site: str, database_url: str, factory: sessionmaker[Session],
        hub_states: HubStates, gateways: dict[str, FakeGateway], tmp_path: Path) -> None:
    hub, client_id, log = _start_workers(tmp_path, v5_broker, database_url)
    try:
        hub_states.wait(online=2)
        _wait(lambda: len(workers_of(hub.pid)) == 2, f"not 2 workers: {log.read_text()[-2000:]}")
        assert set(workers_of(hub.pid)) == {0, 1}

        expected = _flood(gateways, site, 200)
        _wait(lambda: count(factory, StoredMessage) >= len(expected),
              f"stored {count(factory, StoredMessage)} of {len(expected)} "
              f"(log: {log.read_text()[-2000:]})")
        _wait(lambda: expected <= _acked(gateways), "some messages were never acked")
        _assert_stored_once(factory, expected, 200)
        assert hub.poll() is None
    finally:
        code = _stop(hub, v5_broker, client_id, 2)
    assert code == 0, log.read_text()[-2000:]


# --- 2. a worker killed mid-flood ----------------------------------------------------------


def test_a_killed_worker_is_restarted_and_nothing_is_lost_or_stored_twice(
        v5_broker: BrokerAddress, site: str, database_url: str, factory: sessionmaker[Session],
        hub_states: HubStates, gateways: dict[str, FakeGateway], tmp_path: Path) -> None:
    hub, client_id, log = _start_workers(tmp_path, v5_broker, database_url)
    try:
        hub_states.wait(online=2)
        _wait(lambda: len(workers_of(hub.pid)) == 2, f"not 2 workers: {log.read_text()[-2000:]}")
        victim = workers_of(hub.pid)[1]

        def stored() -> int:
            return count(factory, StoredMessage)

        expected = _flood(gateways, site, 1500)  # 4,275 scans and 225 telemetry batches
        _wait(lambda: stored() > 0, f"nothing stored (log: {log.read_text()[-2000:]})")
        os.kill(victim, signal.SIGKILL)  # as a crash would: no offline state, no flush
        at_kill = stored()
        assert 0 < at_kill < len(expected), "the kill came too late to be mid-flood"

        hub_states.wait(online=3)  # the supervisor restarted it, and it subscribed again
        restarted = workers_of(hub.pid)
        assert set(restarted) == {0, 1} and restarted[1] != victim
        _wait(lambda: stored() >= len(expected),
              f"stored {stored()} of {len(expected)} (log: {log.read_text()[-2000:]})")
        _wait(lambda: expected <= _acked(gateways), "some messages were never acked")
        _assert_stored_once(factory, expected, 1500)
        assert hub.poll() is None
        text = log.read_text()
        assert "ingest worker 1 exited unexpectedly with exit code -9 (SIGKILL)" in text
        assert "session resumed" in text  # the same client id: its unacked messages came back
    finally:
        code = _stop(hub, v5_broker, client_id, 2)
    assert code == 0, log.read_text()[-2000:]


# --- 3. stopping ---------------------------------------------------------------------------


def test_sigterm_stops_every_worker_and_exits_0(
        v5_broker: BrokerAddress, database_url: str, hub_states: HubStates,
        tmp_path: Path) -> None:
    hub, client_id, log = _start_workers(tmp_path, v5_broker, database_url, setting=3)
    config = tmp_path / "hub.toml"
    try:
        hub_states.wait(online=3)
        _wait(lambda: len(workers_of(hub.pid)) == 3, f"not 3 workers: {log.read_text()[-2000:]}")
        workers = workers_of(hub.pid)
        assert set(workers) == {0, 1, 2}
        assert len(running_with(config)) == 4

        hub.send_signal(signal.SIGTERM)
        assert hub.wait(START_S) == 0, log.read_text()[-2000:]
        hub_states.wait(offline=3)  # each worker stopped cleanly, announcing it
        assert running_with(config) == []  # reaped by the supervisor before it exited
        assert not any(Path(f"/proc/{pid}").exists() for pid in workers.values())
        assert "exited unexpectedly" not in log.read_text()
    finally:
        _stop(hub, v5_broker, client_id, 3)


def test_workers_of_a_killed_supervisor_stop_by_themselves(
        v5_broker: BrokerAddress, database_url: str, hub_states: HubStates,
        tmp_path: Path) -> None:
    hub, client_id, log = _start_workers(tmp_path, v5_broker, database_url)
    config = tmp_path / "hub.toml"
    try:
        hub_states.wait(online=2)
        _wait(lambda: len(workers_of(hub.pid)) == 2, f"not 2 workers: {log.read_text()[-2000:]}")

        hub.kill()  # no chance to stop them: their stdin, a pipe from it, closes
        hub.wait(WAIT)
        hub_states.wait(offline=2)  # they stopped cleanly
        _wait(lambda: running_with(config) == [], "orphaned ingest workers", timeout=START_S)
    finally:
        for pid in running_with(config):
            os.kill(pid, signal.SIGKILL)
        _stop(hub, v5_broker, client_id, 2)


# --- the supervisor itself, with stand-in children -----------------------------------------


class Records(logging.Handler):
    """The supervisor's log messages, waited for by condition."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []
        self._cond = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self._cond:
            self.messages.append(record.getMessage())
            self._cond.notify_all()

    def wait(self, text: str, times: int = 1) -> list[str]:
        def found() -> list[str]:
            return [m for m in self.messages if text in m]

        with self._cond:
            assert self._cond.wait_for(lambda: len(found()) >= times, WAIT), self.messages
            return found()


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    log = logging.getLogger("hub.ingest_supervisor")
    log.addHandler(handler)
    level = log.level
    log.setLevel(logging.INFO)
    yield handler
    log.removeHandler(handler)
    log.setLevel(level)


def test_restarts_back_off_doubling_up_to_the_limit(records: Records) -> None:
    supervisor = IngestSupervisor(lambda k: [sys.executable, "-c", f"raise SystemExit({k})"],
                                  [3], backoff_s=(0.01, 0.04), stable_after_s=3600)
    supervisor.start()
    try:
        restarts = records.wait("exited unexpectedly", times=5)[:5]
    finally:
        supervisor.stop()
    assert all("ingest worker 3 exited unexpectedly with exit code 3 after" in m
               for m in restarts)
    assert [m.rsplit(" in ", 1)[1] for m in restarts] == [
        "0.01 s", "0.02 s", "0.04 s", "0.04 s", "0.04 s"]
    assert supervisor.pids == {}


def test_backoff_starts_over_after_a_child_ran_long_enough(records: Records) -> None:
    supervisor = IngestSupervisor(lambda k: [sys.executable, "-c", "raise SystemExit(1)"],
                                  [0], backoff_s=(0.01, 1.0), stable_after_s=0)
    supervisor.start()
    try:
        restarts = records.wait("exited unexpectedly", times=3)[:3]
    finally:
        supervisor.stop()
    assert [m.rsplit(" in ", 1)[1] for m in restarts] == ["0.01 s"] * 3


def test_a_child_ignoring_sigterm_is_killed_after_the_timeout(
        records: Records, tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    stubborn = ("import pathlib, signal, sys; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                f"pathlib.Path({str(ready)!r}).touch(); sys.stdin.read()")
    supervisor = IngestSupervisor(lambda k: [sys.executable, "-c", stubborn], [0],
                                  stop_timeout_s=0.2)
    supervisor.start()
    _wait(ready.exists, "the child did not start", timeout=WAIT)
    pid = supervisor.pids[0]
    supervisor.stop()
    assert records.wait("did not stop within 0.2 s; killing it")
    assert records.wait("stopped with exit code -9 (SIGKILL)")
    assert supervisor.pids == {} and not Path(f"/proc/{pid}").exists()
    assert not records.wait("started ingest worker 0", times=1)[1:]  # not restarted


# --- 4. refused ----------------------------------------------------------------------------


@pytest.mark.parametrize(("command", "share_group", "protocol", "workers", "says"), [
    pytest.param(["hub", "ingest", "--workers", "2"], None, "5", 1, "mqtt.share_group",
                 id="flag-without-share-group"),
    pytest.param(["hub", "ingest"], None, "5", 4, "mqtt.share_group",
                 id="setting-without-share-group"),
    pytest.param(["hub", "serve"], None, "5", 2, "mqtt.share_group", id="serve"),
    pytest.param(["hub", "ingest", "--workers", "2"], "hub", "3.1.1", 1, "mqtt.protocol",
                 id="mqtt-3.1.1"),
    pytest.param(["hub", "ingest", "--workers", "17"], "hub", "5", 1, "--workers",
                 id="too-many"),
])
def test_more_workers_than_the_settings_allow_are_refused(
        broker: BrokerAddress, tmp_path: Path, command: list[str], share_group: str | None,
        protocol: str, workers: int, says: str) -> None:
    config = _config(tmp_path / "hub.toml", broker, f"sqlite:///{tmp_path / 'hub.db'}",
                     "hub-refused", share_group=share_group, protocol=protocol,
                     workers=workers, extra="[web]\nport = 0\n")
    done = subprocess.run(
        [sys.executable, "-m", "hub.console", "--data-dir", str(tmp_path), *command,
         "--config", str(config)], cwd=REPO, capture_output=True, text=True, timeout=START_S)
    assert done.returncode != 0
    assert says in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "hub.db").exists()  # refused before doing anything


def test_several_workers_on_an_mqtt_3_1_1_broker_are_refused(tmp_path: Path) -> None:
    from hub.embedded_broker import EmbeddedBroker

    with EmbeddedBroker() as embedded:  # amqtt: no MQTT v5, so no shared subscriptions
        address = BrokerAddress(embedded.host, embedded.port, "amqtt")
        config = _config(tmp_path / "hub.toml", address, f"sqlite:///{tmp_path / 'hub.db'}",
                         "hub-amqtt", share_group="hub")
        done = subprocess.run(
            [sys.executable, "-m", "hub.console", "--data-dir", str(tmp_path), "hub",
             "ingest", "--config", str(config), "--workers", "2"],
            cwd=REPO, capture_output=True, text=True, timeout=START_S)
    assert done.returncode != 0
    assert "speaks 3.1.1 only" in done.stderr and "mqtt.url" in done.stderr, done.stderr


def test_workers_setting_is_validated(tmp_path: Path) -> None:
    assert IngestSettings().workers == 1
    assert IngestSettings(workers=MAX_INGEST_WORKERS).workers == MAX_INGEST_WORKERS
    for wrong in (0, -1, MAX_INGEST_WORKERS + 1):
        with pytest.raises(ValidationError):
            IngestSettings(workers=wrong)
    path = tmp_path / "hub.toml"
    path.write_text("[ingest]\nworkers = 17\n")
    with pytest.raises(ConfigError, match=r"key 'ingest\.workers'.*less than or equal to 16"):
        load_hub_settings(path, tmp_path)
    path.write_text('[ingest]\nworkers = "many"\n')
    with pytest.raises(ConfigError, match=r"key 'ingest\.workers'"):
        load_hub_settings(path, tmp_path)
    assert load_hub_settings(None, tmp_path, {"ingest.workers": 3}).ingest.workers == 3


# --- 5. hub serve --------------------------------------------------------------------------


def test_serve_runs_its_own_worker_and_supervises_the_others(
        v5_broker: BrokerAddress, site: str, database_url: str, factory: sessionmaker[Session],
        hub_states: HubStates, gateways: dict[str, FakeGateway], tmp_path: Path) -> None:
    client_id = f"hub-serve-{uuid.uuid4().hex[:8]}"
    config = _config(tmp_path / "hub.toml", v5_broker, database_url, client_id, workers=2,
                     extra="[web]\nport = 0\n")
    log = tmp_path / "hub.log"
    hub = _coldloop(tmp_path, log, "hub", "serve", "--config", str(config))
    try:
        hub_states.wait(online=2)  # its own worker 0 and the child, worker 1
        _wait(lambda: set(workers_of(hub.pid)) == {1}, f"no worker 1: {log.read_text()[-2000:]}")

        expected = _flood(gateways, site, 40)
        _wait(lambda: count(factory, StoredMessage) >= len(expected),
              f"stored {count(factory, StoredMessage)} of {len(expected)}")
        _assert_stored_once(factory, expected, 40)
        # its health check names its worker, the supervised one and the periodic jobs
        _wait(lambda: "hub at http://" in log.read_text(), "no web address in the log")
        url = re.search(r"hub at (http://\S+);", log.read_text())
        assert url is not None
        with urllib.request.urlopen(f"{url.group(1)}/api/v1/health", timeout=10) as response:
            health = json.loads(response.read())
        assert health["status"] == "ok"
        assert sorted(health["components"]) == ["fleet_watch", "ingest", "ingest_workers",
                                                 "ledger_writer", "sla_watch"]
        assert health["components"]["ingest_workers"]["running"] == [1]
        child = workers_of(hub.pid)[1]
        hub.send_signal(signal.SIGTERM)
        assert hub.wait(START_S) == 0, log.read_text()[-2000:]
        assert running_with(config) == [] and not Path(f"/proc/{child}").exists()
        hub_states.wait(offline=2)
    finally:
        _stop(hub, v5_broker, client_id, 2)
