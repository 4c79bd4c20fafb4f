"""Hub ingest benchmark: telemetry readings and scan events stored per second, ack latency.

Run from the repository root: ``python -m bench.ingest [--quick] [--broker URL] [--pg URL]``.
A few gateways of one site publish telemetry batches and scan events (real protocol messages)
over QoS 1; an :class:`~hub.mqtt_consumer.IngestWorker`, subscribed first, stores them in a
fresh database. The baseline, measured in the same run just before each hub run, is a bare
subscriber (``mosquitto_sub`` if on PATH, else paho) draining the same messages from the same
broker: ``ratio`` is hub readings/s over raw drain readings/s. ``ack_p99_ms`` is the time from
publishing a scan event to the hub's application ack arriving on the gateway's ack topic.

SQLite (a fresh file) is always measured; PostgreSQL too when ``--pg URL`` or
``COLDLOOP_TEST_PG`` is given (in a fresh schema, dropped afterwards). Progress goes to stdout;
the last line is one JSON object with the figures. Without ``--broker`` a private Mosquitto
(the repository's config, a free port) is started and stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from bench.edge import NOW, RAW_WINDOW, Counter, bare_client, broker, percentile_ms, rate, say
from firmware_sim.services import fresh_postgres_schema
from protocols import topics
from protocols.messages import ScanEvent, TelemetryBatch
from protocols.topics import EventType, Kind

GATEWAYS = ("gw-1", "gw-2", "gw-3", "gw-4")
PROBES = 20
Figures = dict[str, Any]


@dataclass(frozen=True)
class Sizes:
    """How much work each measurement does."""

    mode: str
    batches: int  # telemetry batches, all gateways together
    readings: int  # readings per batch
    scans: int  # scan events, interleaved with the batches
    timeout_s: float


QUICK = Sizes("quick", batches=1_000, readings=500, scans=10_000, timeout_s=120)
FULL = Sizes("full", batches=5_000, readings=500, scans=50_000, timeout_s=900)


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


def make_messages(sizes: Sizes) -> list[Message]:
    """Telemetry batches with scan events spread evenly among them, round-robin gateways."""
    seqs = dict.fromkeys(GATEWAYS, 0)
    base = NOW.timestamp()

    def next_id(gateway: str) -> str:
        seqs[gateway] += 1
        return f"{gateway}:1:{seqs[gateway]}"

    messages: list[Message] = []
    scans_done = 0
    for b in range(sizes.batches):
        gateway = GATEWAYS[b % len(GATEWAYS)]
        first = b * sizes.readings
        readings = [(f"board{(n % PROBES) // 8}-{n % 8 + 1}", base + (first + n) / PROBES,
                     2.0 + (n % 50) / 100) for n in range(sizes.readings)]
        batch = TelemetryBatch(id=next_id(gateway), ts=NOW, readings=readings)
        messages.append(Message(gateway, Kind.TELEMETRY, batch.encode()))
        due = (b + 1) * sizes.scans // sizes.batches
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


class Publisher:
    """A bare QoS 1 paho publisher (a gateway's uplink) with a bounded unconfirmed window."""

    def __init__(self, url: str, v5: bool) -> None:
        self.client = bare_client(url, v5, inflight=20)
        self.window = threading.BoundedSemaphore(RAW_WINDOW)
        self.client.on_publish = lambda *_: self.window.release()

    def publish(self, site: str, messages: Sequence[Message], timeout: float,
                sent_ns: dict[str, int] | None = None) -> None:
        """Publish every message in order; note scan ids' publish times in ``sent_ns``."""
        for message in messages:
            if not self.window.acquire(timeout=timeout):
                raise RuntimeError("the broker stopped confirming publishes")
            if sent_ns is not None and message.scan_id is not None:
                sent_ns[message.scan_id] = time.perf_counter_ns()
            self.client.publish(message.topic(site), message.payload, qos=1)

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


# --- baseline: a bare subscriber drains the same messages ---------------------------------


def time_raw_drain(url: str, v5: bool, messages: Sequence[Message], timeout: float) -> float:
    """Seconds from the first publish until a bare subscriber received every message."""
    site = f"raw{uuid.uuid4().hex[:8]}"
    topic_filter = f"{topics.ROOT}/{site}/#"
    binary = shutil.which("mosquitto_sub")
    if binary:
        return _mosquitto_sub_drain(binary, url, v5, site, topic_filter, messages, timeout)
    counter = Counter(len(messages))
    subscriber = bare_client(url, v5)
    subscriber.on_subscribe = counter.on_subscribe
    subscriber.on_message = counter.on_message
    publisher = Publisher(url, v5)
    try:
        subscriber.subscribe(topic_filter, qos=1)
        if not counter.subscribed.wait(10):
            raise RuntimeError(f"no SUBACK from {url}")
        start = time.perf_counter()
        publisher.publish(site, messages, timeout)
        if not counter.done.wait(timeout):
            raise RuntimeError(f"the bare subscriber got {counter.count} of {len(messages)}")
        return time.perf_counter() - start
    finally:
        publisher.close()
        subscriber.disconnect()
        subscriber.loop_stop()


def _mosquitto_sub_drain(binary: str, url: str, v5: bool, site: str, topic_filter: str,
                         messages: Sequence[Message], timeout: float) -> float:
    """The same with mosquitto_sub: a persistent QoS 1 session made first, so none is lost."""
    address = urlparse(url)
    common = [binary, "-h", address.hostname or "127.0.0.1", "-p", str(address.port or 1883),
              "-i", f"bench-raw-{site}", "-q", "1", "-t", topic_filter]
    subprocess.run([*common, "-c", "-E"], check=True, timeout=10)  # subscribed, then offline
    publisher = Publisher(url, v5)  # as in the hub run
    try:
        start = time.perf_counter()
        drain = subprocess.Popen([*common, "-c", "-C", str(len(messages))],
                                 stdout=subprocess.DEVNULL)
        publisher.publish(site, messages, timeout)
        try:
            code = drain.wait(timeout)
        except subprocess.TimeoutExpired:
            drain.kill()
            raise RuntimeError("mosquitto_sub did not receive every message") from None
        elapsed = time.perf_counter() - start
        if code != 0:
            raise RuntimeError(f"mosquitto_sub exited with {code}")
        return elapsed
    finally:
        publisher.close()
        subprocess.run([*common, "-E"], check=False, timeout=10)  # clean session: forget it


# --- the hub ------------------------------------------------------------------------------


class AckListener:
    """A gateway side's ack subscriber: notes when each scan's application ack arrives."""

    def __init__(self, url: str, v5: bool, site: str, scan_ids: set[str]) -> None:
        self.sent_ns: dict[str, int] = {}
        self.latency_ns: dict[str, int] = {}
        self.pending = set(scan_ids)
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.subscribed = threading.Event()
        self.client = bare_client(url, v5)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self.on_message
        self.client.subscribe(topics.gateway_filter(Kind.ACK, site=site), qos=1)
        if not self.subscribed.wait(10):
            raise RuntimeError("no SUBACK for the ack topics")

    def on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        """Note the arrival of every scan acked in this message (paho's network thread)."""
        now = time.perf_counter_ns()
        entries = json.loads(message.payload)["entries"]
        with self.lock:
            for entry in entries:
                if entry["id"] in self.pending:
                    self.pending.discard(entry["id"])
                    self.latency_ns[entry["id"]] = now - self.sent_ns[entry["id"]]
            if not self.pending:
                self.done.set()

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
    client.connect(address.hostname or "127.0.0.1", address.port or 1883,
                   **({"clean_start": True} if v5 else {}))
    client.loop_start()
    connected.wait(10)
    client.disconnect()
    client.loop_stop()


def time_hub(work: Path, url: str, v5: bool, database_url: str | None,
             messages: Sequence[Message], timeout: float) -> tuple[float, Figures]:
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
    settings = load_hub_settings(None, work / site, overrides)
    migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    worker = IngestWorker(settings, session_factory(engine), protocol_v5=v5, sites=[site])
    scan_ids = {m.scan_id for m in messages if m.scan_id is not None}
    listener = AckListener(url, v5, site, scan_ids)
    publisher = Publisher(url, v5)
    try:
        worker.start()
        if not worker.wait_ready(10):
            raise RuntimeError("the ingest worker did not subscribe")
        start = time.perf_counter()
        publisher.publish(site, messages, timeout, listener.sent_ns)
        if not worker.wait_idle(timeout, committed=len(messages)):
            raise RuntimeError(f"the hub committed {worker.counters.committed} of "
                               f"{len(messages)} in {timeout} s")
        elapsed = time.perf_counter() - start
        if not listener.done.wait(30):
            raise RuntimeError(f"{len(listener.pending)} scan acks never arrived")
    finally:
        publisher.close()
        listener.close()
        worker.stop()
        engine.dispose()
        forget_session(url, client_id, v5)
    counters = worker.counters
    if counters.stored != len(messages) or counters.quarantined:
        raise RuntimeError(f"the hub stored {counters.stored} of {len(messages)} "
                           f"({counters.quarantined} quarantined)")
    samples = list(listener.latency_ns.values())
    return elapsed, {"ack_p50_ms": percentile_ms(samples, 50),
                     "ack_p99_ms": percentile_ms(samples, 99),
                     "hub_batches": counters.batches, "commit_failures": counters.commit_failures,
                     "duplicates": counters.duplicates}


def bench_database(work: Path, url: str, v5: bool, name: str, database_url: str | None,
                   messages: Sequence[Message], sizes: Sizes) -> Figures:
    """Raw drain, then the hub on one database; the figures for that database."""
    readings = sizes.batches * sizes.readings
    raw = time_raw_drain(url, v5, messages, sizes.timeout_s)
    say(f"{name}: raw drain {rate(readings, raw)} readings/s; hub…")
    hub, extra = time_hub(work, url, v5, database_url, messages, sizes.timeout_s)
    figures = {"readings_per_s": rate(readings, hub), "scan_events_per_s": rate(sizes.scans, hub),
               "messages_per_s": rate(len(messages), hub),
               "raw_drain_readings_per_s": rate(readings, raw),
               "ratio": round(raw / hub, 3), "hub_s": round(hub, 2), "raw_s": round(raw, 2),
               **extra}
    say(f"{name}: {figures}")
    return figures


def run(sizes: Sizes, broker_url: str | None, pg_url: str | None) -> Figures:
    """Run the benchmark in a scratch directory; return the report."""
    from hub.mqtt_consumer import broker_speaks_v5
    from hub.settings import MqttSettings

    started = time.perf_counter()
    messages = make_messages(sizes)
    figures: Figures = {"mode": sizes.mode, "cpu_count": os.cpu_count(),
                        "gateways": len(GATEWAYS), "batches": sizes.batches,
                        "readings_per_batch": sizes.readings, "scan_events": sizes.scans,
                        "raw_subscriber": "mosquitto_sub" if shutil.which("mosquitto_sub")
                        else "paho"}
    say(f"{len(messages)} messages, {sizes.batches * sizes.readings} readings")
    with tempfile.TemporaryDirectory(prefix="coldloop-bench-ingest-") as tmp:
        work = Path(tmp)
        with broker(broker_url, work) as url:
            v5 = broker_speaks_v5(MqttSettings(url=url))
            say(f"broker: {url} (MQTT {'5' if v5 else '3.1.1'})")
            figures["broker_v5"] = v5
            figures["sqlite"] = bench_database(work, url, v5, "sqlite", None, messages, sizes)
            if pg_url:
                with fresh_postgres_schema(pg_url, prefix="bench") as schema_url:
                    figures["postgresql"] = bench_database(work, url, v5, "postgresql",
                                                           schema_url, messages, sizes)
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
