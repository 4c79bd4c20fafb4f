"""Hub ingest benchmark: telemetry readings and scan events stored per second, ack latency.

Run from the repository root: ``python -m bench.ingest [--quick] [--broker URL] [--pg URL]``.
Per database (a fresh SQLite file always; PostgreSQL too with ``--pg URL`` or
``COLDLOOP_TEST_PG``, in a fresh schema dropped afterwards), three measurements:

1. **Flood.** A publisher process (a few gateways of one site, real protocol messages, QoS 1)
   sends telemetry batches with scan events among them as fast as the broker takes them; an
   :class:`~hub.mqtt_consumer.IngestWorker`, subscribed first, stores them. The baseline,
   measured in the same run, is ``mosquitto_sub`` (paho if it is not on PATH) draining the
   same messages from the same publisher: ``ratio`` is hub readings/s over raw drain
   readings/s. A bare paho subscriber draining them too gives ``ratio_to_paho``: how close the
   hub comes to the Python MQTT client it is built on. ``hub_cpu_s`` and
   ``paho_drain_cpu_s`` are the CPU-seconds this process spent on a round of each: the hub's
   threads share one GIL, so its wall time cannot go below its CPU time. Raw drain, paho
   drain and hub flood take turns, three rounds of each; the figures are the medians (one
   drain alone swings by a third on a shared 2-core machine), with each round's ratio listed
   beside them.
2. **Paced.** Scan events at 500/s (with telemetry beside them) for a while; ``ack_p99_ms`` is
   the time from publishing a scan to its application ack arriving on the gateway's ack topic.
3. **Two workers.** One ``coldloop hub ingest --workers 2`` (a supervisor and two worker
   processes on one MQTT v5 shared subscription) stores a flood, three times; a round ends when
   every message's application ack has arrived (sent after commit), then the database is
   counted: messages lost and stored twice (summed over the rounds), and throughput (the
   median round, against the median raw drain).

Progress goes to stdout; the last line is one JSON object with the figures. Without
``--broker`` a private Mosquitto (the repository's config, a free port) is started and stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from bench.edge import NOW, RAW_WINDOW, Counter, bare_client, broker, percentile_ms, rate, say
from firmware_sim.services import REPO, fresh_postgres_schema
from protocols import topics
from protocols.messages import ScanEvent, TelemetryBatch
from protocols.topics import EventType, Kind

GATEWAYS = ("gw-1", "gw-2", "gw-3", "gw-4")
PROBES = 20
PACED_SCANS_PER_S = 500
PACED_BATCHES_PER_S = 10  # beside the scans: 5,000 readings/s, a busy site's probes
Figures = dict[str, Any]


@dataclass(frozen=True)
class Sizes:
    """How much work each measurement does."""

    mode: str
    batches: int  # telemetry batches, all gateways together
    readings: int  # readings per batch
    scans: int  # scan events, interleaved with the batches
    paced_s: int  # seconds of the paced (latency) measurement
    timeout_s: float
    rounds: int  # raw drain and hub flood, alternately, this many times each: medians reported


QUICK = Sizes("quick", batches=1_000, readings=500, scans=10_000, paced_s=8, timeout_s=120,
              rounds=3)
FULL = Sizes("full", batches=5_000, readings=500, scans=50_000, paced_s=60, timeout_s=900,
             rounds=3)
FLOOD_BOOT = 10  # flood round r uses boot FLOOD_BOOT + r: fresh message ids on a shared database
PAIR_BOOT = 20  # and the two-worker round r boot PAIR_BOOT + r


@dataclass(frozen=True)
class Message:
    """One gateway publication: which gateway, its kind, payload, and scan id if a scan."""

    gateway: str
    kind: Kind
    payload: bytes
    scan_id: str | None = None

    def topic(self, site: str) -> str:
        """The topic this message goes to on ``site``."""
        if self.kind is Kind.TELEMETRY:
            return topics.telemetry(site, self.gateway)
        return topics.event(site, self.gateway, EventType.SCAN)


def make_messages(batches: int, readings: int, scans: int, boot: int = 1) -> list[Message]:
    """Telemetry batches with scan events spread evenly among them, round-robin gateways.

    ``boot`` keeps message ids of different measurements apart in one database.
    """
    seqs = dict.fromkeys(GATEWAYS, 0)
    base = NOW.timestamp()

    def next_id(gateway: str) -> str:
        seqs[gateway] += 1
        return f"{gateway}:{boot}:{seqs[gateway]}"

    messages: list[Message] = []
    scans_done = 0
    for b in range(batches):
        gateway = GATEWAYS[b % len(GATEWAYS)]
        first = b * readings
        values: list[tuple[str, float, float | None]] = [
            (f"board{(n % PROBES) // 8}-{n % 8 + 1}", base + (first + n) / PROBES,
             2.0 + (n % 50) / 100) for n in range(readings)]
        batch = TelemetryBatch(id=next_id(gateway), ts=NOW, readings=values)
        messages.append(Message(gateway, Kind.TELEMETRY, batch.encode()))
        due = (b + 1) * scans // batches
        while scans_done < due:
            n = scans_done
            gateway = GATEWAYS[n % len(GATEWAYS)]
            scan = ScanEvent(id=next_id(gateway), ts=NOW, station="st-1",
                             item_id=f"IT-{n:06d}-1", tag_uid=f"{0xA0000000 + n:08x}",
                             lot="L261101-1", gtin="06901234000115", core_temp_c=2.5,
                             probe="st-1-core")
            messages.append(Message(gateway, Kind.EVENT, scan.encode(), scan.id))
            scans_done += 1
    return messages


def paced_messages(sizes: Sizes, boot: int) -> list[Message]:
    """The paced measurement's messages: scans at 500/s with telemetry batches among them."""
    seconds = sizes.paced_s
    return make_messages(PACED_BATCHES_PER_S * seconds, sizes.readings,
                         PACED_SCANS_PER_S * seconds, boot)


# --- the publisher: a separate process, so the hub under test has this one to itself ------


class Publisher:
    """A bare QoS 1 paho publisher (a gateway's uplink) with a bounded unconfirmed window."""

    def __init__(self, url: str, v5: bool) -> None:
        self.client = bare_client(url, v5, inflight=20)
        self.window = threading.BoundedSemaphore(RAW_WINDOW)
        self.client.on_publish = lambda *_: self.window.release()

    def publish(self, site: str, messages: Sequence[Message], timeout: float,
                per_s: float | None = None) -> dict[str, int]:
        """Publish in order (``per_s`` messages a second if given); return scans' send times."""
        sent_ns: dict[str, int] = {}
        start = time.perf_counter()
        for n, message in enumerate(messages):
            if per_s is not None:  # a load generator's schedule, not a synchronisation
                time.sleep(max(0.0, start + n / per_s - time.perf_counter()))
            if not self.window.acquire(timeout=timeout):
                raise RuntimeError("the broker stopped confirming publishes")
            if message.scan_id is not None:
                sent_ns[message.scan_id] = time.perf_counter_ns()
            self.client.publish(message.topic(site), message.payload, qos=1)
        for _ in range(RAW_WINDOW):  # every PUBACK back before disconnecting
            if not self.window.acquire(timeout=timeout):
                raise RuntimeError("the broker stopped confirming publishes")
        return sent_ns

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


def _publisher_main(url: str, v5: bool, site: str, messages: Sequence[Message],
                    timeout: float, per_s: float | None, results: Any) -> None:
    try:
        publisher = Publisher(url, v5)
        try:
            first_ns = time.perf_counter_ns()
            sent = publisher.publish(site, messages, timeout, per_s)
        finally:
            publisher.close()
        results.send((first_ns, sent, None))
    except Exception as err:  # reported to the parent, which raises it
        results.send((0, {}, f"{type(err).__name__}: {err}"))


@contextmanager
def publisher_process(url: str, v5: bool, site: str, messages: Sequence[Message],
                      timeout: float, per_s: float | None = None
                      ) -> Iterator[Any]:
    """Publish ``messages`` from a child process; yields a handle whose ``result()`` waits.

    ``result()`` returns (first publish in perf_counter ns, scan id -> send ns); the
    monotonic clock is the same in both processes.
    """
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_publisher_main, daemon=True,
                            args=(url, v5, site, list(messages), timeout, per_s, sender))
    child.start()

    class Handle:
        def result(self) -> tuple[int, dict[str, int]]:
            if not receiver.poll(timeout + 30):
                raise RuntimeError("the publisher process did not finish")
            first_ns, sent, error = receiver.recv()
            if error:
                raise RuntimeError(f"publisher process: {error}")
            return int(first_ns), dict(sent)

    try:
        yield Handle()
    finally:
        child.join(10)
        if child.is_alive():
            child.kill()


# --- baseline: a bare subscriber drains the same messages ---------------------------------


def time_raw_drain(url: str, v5: bool, messages: Sequence[Message], timeout: float) -> float:
    """Seconds from the first publish until a bare subscriber received every message:
    ``mosquitto_sub`` (C) if it is on PATH, else a bare paho client."""
    site = f"raw{uuid.uuid4().hex[:8]}"
    topic_filter = f"{topics.ROOT}/{site}/#"
    binary = shutil.which("mosquitto_sub")
    if binary:
        return _mosquitto_sub_drain(binary, url, v5, site, topic_filter, messages, timeout)
    return time_paho_drain(url, v5, messages, timeout)[0]


def time_paho_drain(url: str, v5: bool, messages: Sequence[Message],
                    timeout: float) -> tuple[float, float]:
    """The same with a bare paho subscriber (QoS 1, a counter as its only work): the floor of
    any subscriber built on paho, the hub's MQTT client. Returns seconds and CPU-seconds."""
    site = f"paho{uuid.uuid4().hex[:8]}"
    counter = Counter(len(messages))
    subscriber = bare_client(url, v5)
    subscriber.on_subscribe = counter.on_subscribe
    subscriber.on_message = counter.on_message
    try:
        subscriber.subscribe(f"{topics.ROOT}/{site}/#", qos=1)
        if not counter.subscribed.wait(10):
            raise RuntimeError(f"no SUBACK from {url}")
        cpu_start = time.process_time()
        with publisher_process(url, v5, site, messages, timeout) as publishing:
            if not counter.done.wait(timeout):
                raise RuntimeError(f"the bare subscriber got {counter.count} of "
                                   f"{len(messages)}")
            end = time.perf_counter_ns()
            cpu_s = time.process_time() - cpu_start
            first_ns, _ = publishing.result()
        return float(end - first_ns) / 1e9, cpu_s
    finally:
        subscriber.disconnect()
        subscriber.loop_stop()


def _mosquitto_sub_drain(binary: str, url: str, v5: bool, site: str, topic_filter: str,
                         messages: Sequence[Message], timeout: float) -> float:
    """The same with mosquitto_sub: a persistent QoS 1 session made first, so none is lost."""
    address = urlparse(url)
    common = [binary, "-h", address.hostname or "127.0.0.1", "-p", str(address.port or 1883),
              "-i", f"bench-raw-{site}", "-q", "1", "-t", topic_filter]
    subprocess.run([*common, "-c", "-E"], check=True, timeout=10)  # subscribed, then offline
    try:
        drain = subprocess.Popen([*common, "-c", "-C", str(len(messages))],
                                 stdout=subprocess.DEVNULL)
        with publisher_process(url, v5, site, messages, timeout) as publishing:
            try:
                code = drain.wait(timeout)
            except subprocess.TimeoutExpired:
                drain.kill()
                raise RuntimeError("mosquitto_sub did not receive every message") from None
            end = time.perf_counter_ns()
            first_ns, _ = publishing.result()
        if code != 0:
            raise RuntimeError(f"mosquitto_sub exited with {code}")
        return float(end - first_ns) / 1e9
    finally:
        subprocess.run([*common, "-E"], check=False, timeout=10)  # clean session: forget it


# --- the hub ------------------------------------------------------------------------------


class AckListener:
    """A gateway side's ack subscriber: notes when each awaited id's application ack arrives."""

    def __init__(self, url: str, v5: bool, site: str, ids: set[str]) -> None:
        self.arrived_ns: dict[str, int] = {}
        self.statuses: dict[str, int] = {}
        self.pending = set(ids)
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.subscribed = threading.Event()
        self.client = bare_client(url, v5)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self.on_message
        self.client.subscribe(topics.gateway_filter(Kind.ACK, site=site), qos=1)
        if not self.subscribed.wait(10):
            raise RuntimeError("no SUBACK for the ack topics")
        if not self.pending:
            self.done.set()

    def on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        """Note the arrival of every scan acked in this message (paho's network thread)."""
        now = time.perf_counter_ns()
        entries = json.loads(message.payload)["entries"]
        with self.lock:
            for entry in entries:
                self.statuses[entry["status"]] = self.statuses.get(entry["status"], 0) + 1
                if entry["id"] in self.pending:
                    self.pending.discard(entry["id"])
                    self.arrived_ns[entry["id"]] = now
            if not self.pending:
                self.done.set()

    def last_ns(self) -> int:
        """When the last awaited ack arrived (perf_counter ns)."""
        with self.lock:
            return max(self.arrived_ns.values())

    def latencies(self, sent_ns: dict[str, int]) -> list[int]:
        """Send-to-ack nanoseconds of every acked scan."""
        with self.lock:
            return [self.arrived_ns[i] - sent_ns[i] for i in self.arrived_ns]

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


def forget_session(url: str, client_id: str, v5: bool) -> None:
    """Connect once with a clean session as ``client_id``, so the broker drops its queue."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    connected = threading.Event()
    kwargs: dict[str, Any] = {} if v5 else {"clean_session": True}
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311, **kwargs)
    client.on_connect = lambda *_: connected.set()
    address = urlparse(url)
    if v5:
        client.connect(address.hostname or "127.0.0.1", address.port or 1883, clean_start=True)
    else:
        client.connect(address.hostname or "127.0.0.1", address.port or 1883)
    client.loop_start()
    connected.wait(10)
    client.disconnect()
    client.loop_stop()


def time_hub(work: Path, url: str, v5: bool, database_url: str | None,
             messages: Sequence[Message], timeout: float, per_s: float | None = None
             ) -> tuple[float, Figures]:
    """Seconds from the first publish until the hub committed every message; its figures."""
    from hub.db import make_engine, migrate, session_factory
    from hub.mqtt_consumer import IngestWorker
    from hub.settings import load_hub_settings

    site = f"bench{uuid.uuid4().hex[:8]}"
    client_id = f"coldloop-bench-{site}"
    overrides: dict[str, object] = {"mqtt.url": url, "mqtt.client_id": client_id,
                                    "mqtt.protocol": "5" if v5 else "3.1.1"}
    if database_url:
        overrides["database.url"] = database_url
    settings = load_hub_settings(None, work / "hub", overrides)
    migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    worker = IngestWorker(settings, session_factory(engine), protocol_v5=v5, sites=[site])
    scan_ids = {m.scan_id for m in messages if m.scan_id is not None}
    listener = AckListener(url, v5, site, scan_ids)
    try:
        cpu_start = time.process_time()  # the hub's threads (and the small ack listener)
        worker.start()
        if not worker.wait_ready(10):
            raise RuntimeError("the ingest worker did not subscribe")
        with publisher_process(url, v5, site, messages, timeout, per_s) as publishing:
            if not worker.wait_idle(timeout + len(messages) / (per_s or 1e9),
                                    committed=len(messages)):
                raise RuntimeError(f"the hub committed {worker.counters.committed} of "
                                   f"{len(messages)} in {timeout} s")
            end = time.perf_counter_ns()
            cpu_s = time.process_time() - cpu_start
            first_ns, sent_ns = publishing.result()
        if not listener.done.wait(30):
            raise RuntimeError(f"{len(listener.pending)} scan acks never arrived")
    finally:
        listener.close()
        worker.stop()
        engine.dispose()
        forget_session(url, client_id, v5)
    counters = worker.counters
    if counters.stored != len(messages) or counters.quarantined:
        raise RuntimeError(f"the hub stored {counters.stored} of {len(messages)} "
                           f"({counters.quarantined} quarantined)")
    samples = listener.latencies(sent_ns)
    return (end - first_ns) / 1e9, {
        "ack_p50_ms": percentile_ms(samples, 50), "ack_p99_ms": percentile_ms(samples, 99),
        "hub_batches": counters.batches, "commit_failures": counters.commit_failures,
        "hub_cpu_s": cpu_s}


# --- two ingest worker processes on one shared subscription -------------------------------


def time_two_workers(work: Path, url: str, database_url: str, messages: Sequence[Message],
                     timeout: float) -> Figures:
    """``coldloop hub ingest --workers 2`` shares a flood; count what the database holds."""
    from sqlalchemy import func, select

    from hub.db import make_engine, migrate
    from hub.models import Scan, StoredMessage, TelemetryBatchRecord

    site = f"pair{uuid.uuid4().hex[:8]}"
    group = f"bench{uuid.uuid4().hex[:6]}"
    migrate(database_url)
    scan_ids = {m.scan_id for m in messages if m.scan_id is not None}
    batches = {json.loads(m.payload)["id"]: len(json.loads(m.payload)["readings"])
               for m in messages if m.kind is Kind.TELEMETRY}
    expected = scan_ids | set(batches)
    boot = next(iter(expected)).split(":")[1]
    mine = f"gw-%:{boot}:%"  # every id of this measurement, and no other
    engine = make_engine(database_url)
    config = work / "workers.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n'
                      f'[mqtt]\nurl = "{url}"\nclient_id = "coldloop-{site}"\n'
                      f'share_group = "{group}"\n[ingest]\nworkers = 2\n')
    hub: subprocess.Popen[bytes] | None = None
    listener = AckListener(url, True, site, expected)  # every id: acked only after commit
    online = HubStateWatch(url)
    try:
        with (work / "workers.log").open("wb") as log:  # the supervisor's and its workers'
            hub = subprocess.Popen(
                [sys.executable, "-m", "hub.console", "--data-dir", str(work / "pair"),
                 "hub", "ingest", "--config", str(config), "--workers", "2"],
                cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        online.wait(2, timeout=60)
        with publisher_process(url, True, site, messages, timeout) as publishing:
            # The workers ack each message to its gateway after committing it: waiting for
            # those acks costs this process nothing while the workers run (polling the
            # database for a count would take CPU from them).
            deadline = time.monotonic() + timeout
            while not listener.done.wait(0.5):
                if time.monotonic() > deadline or hub.poll() is not None:
                    raise RuntimeError(f"two workers acked {len(expected) - len(listener.pending)}"
                                       f" of {len(expected)} (log: {work / 'workers.log'})")
            end = listener.last_ns()
            first_ns, _ = publishing.result()
        if "exited unexpectedly" in (work / "workers.log").read_text():
            raise RuntimeError(f"a worker died and was restarted (log: {work / 'workers.log'})")
        with engine.connect() as conn:
            ids = set(conn.scalars(select(StoredMessage.message_id)
                                   .where(StoredMessage.message_id.like(mine))))
            scan_rows = int(conn.scalar(select(func.count()).select_from(Scan)
                                        .where(Scan.message_id.like(mine))) or 0)
            batch_rows = dict(conn.execute(
                select(TelemetryBatchRecord.batch_id, TelemetryBatchRecord.readings)
                .where(TelemetryBatchRecord.batch_id.like(mine))).all())
    finally:
        if hub is not None:
            stop_supervised(hub, timeout=30)
        online.close()
        listener.close()
        engine.dispose()
        for n in (0, 1):
            forget_session(url, f"coldloop-{site}-{n}" if n else f"coldloop-{site}", True)
    seconds = (end - first_ns) / 1e9
    readings = sum(batch_rows.values())
    return {"readings_per_s": rate(readings, seconds),
            "scan_events_per_s": rate(scan_rows, seconds), "messages": len(expected),
            "lost": len(expected - ids), "unexpected": len(ids - expected),
            "stored_twice": scan_rows + len(batch_rows) - len(ids),
            "readings_stored": readings, "readings_sent": sum(batches.values()),
            "duplicate_acks": listener.statuses.get("duplicate", 0),
            "seconds": round(seconds, 2)}


def two_worker_figures(pairs: Sequence[Figures], raw_rate: float, paho_rate: float) -> Figures:
    """The median round's rates, with what was lost or stored twice summed over every round."""
    median = sorted(pairs, key=lambda f: f["readings_per_s"])[len(pairs) // 2]
    totals = {key: sum(f[key] for f in pairs)
              for key in ("messages", "lost", "unexpected", "stored_twice", "readings_stored",
                          "readings_sent", "duplicate_acks")}
    return {"readings_per_s": median["readings_per_s"],
            "scan_events_per_s": median["scan_events_per_s"], "seconds": median["seconds"],
            "ratio": round(median["readings_per_s"] / raw_rate, 3),
            "ratio_to_paho": round(median["readings_per_s"] / paho_rate, 3),
            "rounds": len(pairs),
            "ratio_per_round": [round(f["readings_per_s"] / raw_rate, 3) for f in pairs],
            **totals}


def stop_supervised(hub: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM an ingest supervisor and wait for it and its workers; kill what is left.

    The supervisor stops and reaps its workers itself; if it must be killed, its workers see
    their stdin close and stop on their own, and are waited for (Linux: pidfd) or killed.
    """
    workers = _children(hub.pid)
    hub.terminate()
    try:
        hub.wait(timeout)
    except subprocess.TimeoutExpired:
        hub.kill()
        hub.wait()
    for pid in workers:
        if not _wait_gone(pid, timeout):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (from /proc; none where there is no /proc)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _wait_gone(pid: int, timeout: float) -> bool:
    """Wait for a process that is not our child to end; False if it is still there."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    except (AttributeError, OSError):  # no pidfd here: do not wait, kill
        return False
    try:
        readable, _, _ = select.select([fd], [], [], timeout)
        return bool(readable)
    finally:
        os.close(fd)


class HubStateWatch:
    """Counts live "online" hub states: an ingest worker sends one once it has subscribed."""

    def __init__(self, url: str) -> None:
        self.online = 0
        self.cond = threading.Condition()
        self.client = bare_client(url, True)
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = self.on_message
        self.client.subscribe(topics.HUB_STATE, qos=1)
        if not subscribed.wait(10):
            raise RuntimeError("no SUBACK for the hub state topic")

    def on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        """Count a fresh online state; ignore the retained one (paho's network thread)."""
        if message.retain or not json.loads(message.payload or b"{}").get("online"):
            return
        with self.cond:
            self.online += 1
            self.cond.notify_all()

    def wait(self, count: int, timeout: float) -> None:
        """Wait until ``count`` workers said online."""
        with self.cond:
            if not self.cond.wait_for(lambda: self.online >= count, timeout):
                raise RuntimeError(f"only {self.online} of {count} ingest workers came up")

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


# --- per database and entry point ---------------------------------------------------------


def bench_database(work: Path, url: str, v5: bool, name: str, database_url: str | None,
                   sizes: Sizes) -> Figures:
    """Raw drain, hub flood, hub paced, and (v5) two workers on one database."""
    work.mkdir(parents=True, exist_ok=True)
    readings = sizes.batches * sizes.readings
    raws, pahos, hubs, cpus, paho_cpus = [], [], [], [], []
    flood: Figures = {}
    for round_ in range(sizes.rounds):  # alternated, so a slow spell of the machine hits both
        messages = make_messages(sizes.batches, sizes.readings, sizes.scans,
                                 boot=FLOOD_BOOT + round_)
        raws.append(time_raw_drain(url, v5, messages, sizes.timeout_s))
        paho_s, paho_cpu_s = time_paho_drain(url, v5, messages, sizes.timeout_s)
        pahos.append(paho_s)
        paho_cpus.append(paho_cpu_s)
        hub_s, flood = time_hub(work, url, v5, database_url, messages, sizes.timeout_s)
        hubs.append(hub_s)
        cpus.append(flood["hub_cpu_s"])
        say(f"{name}: round {round_ + 1}: raw drain {rate(readings, raws[-1])} readings/s, "
            f"bare paho {rate(readings, pahos[-1])}, hub {rate(readings, hub_s)}")
    raw, paho, hub = (statistics.median(times) for times in (raws, pahos, hubs))
    figures: Figures = {
        "readings_per_s": rate(readings, hub), "scan_events_per_s": rate(sizes.scans, hub),
        "messages_per_s": rate(sizes.batches + sizes.scans, hub),
        "raw_drain_readings_per_s": rate(readings, raw),
        "ratio": round(raw / hub, 3), "hub_s": round(hub, 2), "raw_s": round(raw, 2),
        "hub_cpu_s": round(statistics.median(cpus), 2),
        "paho_drain_readings_per_s": rate(readings, paho),
        "ratio_to_paho": round(paho / hub, 3),
        "paho_drain_cpu_s": round(statistics.median(paho_cpus), 2),
        "rounds": sizes.rounds,
        "ratio_per_round": [round(r / h, 3) for r, h in zip(raws, hubs, strict=True)],
        "flood_ack_p99_ms": flood["ack_p99_ms"], "hub_batches": flood["hub_batches"],
        "commit_failures": flood["commit_failures"]}
    say(f"{name}: flood {figures}; paced {PACED_SCANS_PER_S} scans/s…")
    paced = paced_messages(sizes, boot=2)
    _, latency = time_hub(work, url, v5, database_url, paced, sizes.timeout_s,
                          per_s=len(paced) / sizes.paced_s)
    figures |= {"ack_p50_ms": latency["ack_p50_ms"], "ack_p99_ms": latency["ack_p99_ms"],
                "paced_scans_per_s": PACED_SCANS_PER_S, "paced_s": sizes.paced_s}
    say(f"{name}: paced ack p50 {latency['ack_p50_ms']} ms, p99 {latency['ack_p99_ms']} ms")
    if v5:
        pair_url = database_url or f"sqlite:///{work / 'hub' / 'hub.db'}"
        pairs = [time_two_workers(work, url, pair_url,
                                  make_messages(sizes.batches, sizes.readings, sizes.scans,
                                                boot=PAIR_BOOT + round_), sizes.timeout_s)
                 for round_ in range(sizes.rounds)]
        pair = figures["two_workers"] = two_worker_figures(
            pairs, figures["raw_drain_readings_per_s"], figures["paho_drain_readings_per_s"])
        say(f"{name}: two workers {pair}")
    return figures


def run(sizes: Sizes, broker_url: str | None, pg_url: str | None) -> Figures:
    """Run the benchmark in a scratch directory; return the report."""
    from hub.mqtt_consumer import broker_speaks_v5
    from hub.settings import MqttSettings

    started = time.perf_counter()
    figures: Figures = {"mode": sizes.mode, "cpu_count": os.cpu_count(),
                        "gateways": len(GATEWAYS), "batches": sizes.batches,
                        "readings_per_batch": sizes.readings, "scan_events": sizes.scans,
                        "raw_subscriber": "mosquitto_sub" if shutil.which("mosquitto_sub")
                        else "paho"}
    with tempfile.TemporaryDirectory(prefix="coldloop-bench-ingest-") as tmp:
        work = Path(tmp)
        with broker(broker_url, work) as url:
            v5 = broker_speaks_v5(MqttSettings(url=url))
            say(f"broker: {url} (MQTT {'5' if v5 else '3.1.1'})")
            figures["broker_v5"] = v5
            figures["sqlite"] = bench_database(work / "sqlite", url, v5, "sqlite", None, sizes)
            if pg_url:
                with fresh_postgres_schema(pg_url, prefix="bench") as schema_url:
                    figures["postgresql"] = bench_database(work / "pg", url, v5, "postgresql",
                                                           schema_url, sizes)
    figures["elapsed_s"] = round(time.perf_counter() - started, 1)
    return figures


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line, run the benchmark, print the JSON line last."""
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="about a minute, smaller sizes")
    parser.add_argument("--broker", help="mqtt://host:port (default: a private Mosquitto)")
    parser.add_argument("--pg", default=os.environ.get("COLDLOOP_TEST_PG"),
                        help="PostgreSQL URL (default: $COLDLOOP_TEST_PG; unset: SQLite only)")
    args = parser.parse_args(argv)
    figures = run(QUICK if args.quick else FULL, args.broker, args.pg)
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
