"""Gateway benchmarks: durable commits, scan-to-light latency, backlog drain, RSS after an outage.

Run from the repository root: ``python -m bench.edge [--quick] [--broker mqtt://host:port]``.
Machines are noisy, so every throughput comes with a baseline measured in the same run (raw
SQLite with the same pragmas, a bare paho publisher and subscriber on the same broker) and their
ratio. Progress goes to stdout as it happens; the last line is one JSON object with the figures.

Without ``--broker`` a private Mosquitto (the repository's config, a free port) is started and
stopped, else 127.0.0.1:1883 is used. Prefer the private one: the hub this benchmark starts
publishes the retained hub state that every gateway on a shared broker listens to.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import sqlite3
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from edge.grader import RuleGrader
from edge.outbox import Outbox
from edge.recorder import Recorder
from edge.settings import GatewaySettings, MqttSettings, StationSettings
from edge.station import Station
from edge.uplink import Uplink
from firmware_sim.clock import VirtualClock
from firmware_sim.devices import SimulatedHardware
from firmware_sim.services import mosquitto_binary, private_mosquitto
from protocols.messages import Grade, GradeEvent, ScanEvent
from protocols.tag import TagRecord

NOW = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
RECORD = TagRecord("IT-000001-1", "L261101-1", "06901234000115", NOW - timedelta(hours=30),
                   high_risk=True)
GATEWAY = "gw-bench"
PROBES = 20  # the outage: 20 probes read once a second
COMMIT_CHUNK = 500  # events per transaction while filling the backlog (setup, not measured)
# Publishes the bare client may have unconfirmed: paho numbers messages 1..65535 and a queued
# message whose number comes round again is overwritten, i.e. lost.
RAW_WINDOW = 10_000
Figures = dict[str, Any]


@dataclass(frozen=True)
class Sizes:
    """How much work each measurement does."""

    mode: str
    commits: int  # scan+grade transactions, per side (ours and raw SQLite)
    tags: int  # tags presented to the station
    events: int  # backlog events drained, and payloads in the raw publish baseline
    outage_hours: int  # simulated outage at PROBES probes x 1 Hz
    drain_timeout_s: float


QUICK = Sizes("quick", commits=3_000, tags=1_000, events=20_000, outage_hours=1,
              drain_timeout_s=120)
FULL = Sizes("full", commits=15_000, tags=3_000, events=100_000, outage_hours=24,
             drain_timeout_s=900)


def say(text: str) -> None:
    """Print one progress line now."""
    print(text, flush=True)


def rate(count: int, seconds: float) -> float:
    """``count`` per second, rounded for the report."""
    return round(count / seconds, 1)


def scan_pair(recorder: Recorder, n: int) -> list[ScanEvent | GradeEvent]:
    """A scan and its grade for item ``n``, built as a station builds them."""
    item = f"IT-{n:06d}-1"
    scan = ScanEvent(**recorder.common(), station="st-1", item_id=item, tag_uid=f"{n:08x}",
                     lot=RECORD.lot, gtin=RECORD.gtin, core_temp_c=2.5, probe="st-1-core")
    grade = GradeEvent(**recorder.common(), station="st-1", item_id=item, scan_id=scan.id,
                       grade=Grade.RESELL, model_version=RuleGrader.version,
                       scores={"resell": 1.0},
                       features={"core_temp_c": 2.5, "hours_since_packed": 30.0,
                                 "high_risk": 1.0})
    return [scan, grade]


def open_recorder(path: Path, clock: VirtualClock | None = None) -> Recorder:
    """A recorder on a fresh outbox at ``path``; the hub is offline (events are backlog)."""
    outbox = Outbox(path)
    return Recorder(GATEWAY, "bench", outbox.next_boot(), outbox, clock or VirtualClock(NOW),
                    is_live=lambda: False)


# --- 1. durable commits ------------------------------------------------------------------


def time_commits(recorder: Recorder, pairs: Sequence[list[ScanEvent | GradeEvent]]) -> float:
    """Seconds to commit each scan+grade pair through the recorder, one transaction each."""
    start = time.perf_counter()
    for pair in pairs:
        recorder.commit_events(pair)
    return time.perf_counter() - start


def time_raw_inserts(path: Path, payloads: Sequence[list[bytes]]) -> float:
    """Seconds to insert the same bytes with bare sqlite3: WAL, synchronous=FULL, one tx each."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE raw (seq INTEGER PRIMARY KEY, payload BLOB NOT NULL)")
        start = time.perf_counter()
        for pair in payloads:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT INTO raw(payload) VALUES (?)", [(p,) for p in pair])
            conn.execute("COMMIT")
        return time.perf_counter() - start
    finally:
        conn.close()


def bench_commits(work: Path, commits: int, rounds: int = 3) -> Figures:
    """Scan+grade commits per second through the recorder vs raw SQLite, rounds interleaved."""
    ours = raw = 0.0
    per_round = commits // rounds
    for r in range(rounds):
        recorder = open_recorder(work / f"commits-{r}" / "outbox.db")
        pairs = [scan_pair(recorder, n) for n in range(per_round)]
        ours += time_commits(recorder, pairs)
        recorder.outbox.close()
        raw += time_raw_inserts(work / f"commits-{r}" / "raw.db",
                                [[e.encode() for e in pair] for pair in pairs])
    done = per_round * rounds
    figures = {"scan_commits_per_s": rate(done, ours), "raw_sqlite_inserts_per_s": rate(done, raw),
               "commit_ratio": round(raw / ours, 3)}
    say(f"commits: {figures}")
    return figures


# --- 2. scan to light ----------------------------------------------------------------------


def percentile_ms(samples_ns: Sequence[int], pct: float) -> float:
    """The ``pct`` percentile (nearest rank) of nanosecond samples, in milliseconds."""
    ordered = sorted(samples_ns)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered)) - 1))
    return round(ordered[rank] / 1e6, 3)


def timed_poll(station: Station) -> tuple[int, object]:
    """Poll the station once; return (nanoseconds, outcome)."""
    start = time.perf_counter_ns()
    outcome = station.poll()
    return time.perf_counter_ns() - start, outcome


def bench_scan_to_light(work: Path, tags: int) -> Figures:
    """Present/remove tags in turn on simulated hardware; time the poll that lights the lamp.

    The baseline is the next poll with the same tag still lying on the pad: the same RF
    exchange through the real driver and chip simulator, without grading, commit or light.
    """
    clock = VirtualClock(NOW)
    recorder = open_recorder(work / "station" / "outbox.db", clock=clock)
    settings = StationSettings(id="st-1")
    scans: list[int] = []
    lying: list[int] = []
    with SimulatedHardware(clock, work / "station") as hardware:
        station = Station("st-1", hardware.tag_reader(settings), hardware.probe(settings),
                          hardware.indicator(settings), RuleGrader(), recorder)
        devices = hardware.station(settings)
        devices.set_core_temperature(2.5)
        for n in range(tags):
            devices.present_tag(f"{0xA0000000 + n:08x}", RECORD)
            elapsed, outcome = timed_poll(station)
            if outcome is None or devices.lights is None or not devices.lights.lit():
                raise RuntimeError(f"tag {n} was presented but no light came on")
            scans.append(elapsed)
            elapsed, outcome = timed_poll(station)
            if outcome is not None:
                raise RuntimeError(f"tag {n} lying on the pad was scanned twice")
            lying.append(elapsed)
            devices.remove_tag()
            station.poll()
    recorder.outbox.close()
    figures = {"scan_to_light_p50_ms": percentile_ms(scans, 50),
               "scan_to_light_p99_ms": percentile_ms(scans, 99),
               "tag_read_p50_ms": percentile_ms(lying, 50),
               "scan_to_light_ratio": round(statistics.median(scans) / statistics.median(lying),
                                            3)}
    say(f"scan to light ({tags} tags): {figures}")
    return figures


# --- 3. backlog drain ----------------------------------------------------------------------


class Counter:
    """A bare paho subscriber's tally: sets ``done`` once ``expected`` messages arrived."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.count = 0
        self.subscribed = threading.Event()
        self.done = threading.Event()

    def on_subscribe(self, *_: Any) -> None:
        """Note the broker's SUBACK (paho's network thread)."""
        self.subscribed.set()

    def on_message(self, _client: Any, _userdata: Any, _message: Any) -> None:
        """Count one message (paho's network thread)."""
        self.count += 1
        if self.count >= self.expected:
            self.done.set()


def bare_client(url: str, v5: bool, inflight: int = 20, timeout: float = 10.0) -> Any:
    """A paho client connected to ``url`` (CONNACK received), its network loop running."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    connected = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2,
                         client_id=f"bench-{uuid.uuid4().hex[:8]}",
                         protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311)
    client.max_inflight_messages_set(inflight)
    client.on_connect = lambda *_: connected.set()
    address = urlparse(url)
    client.connect(address.hostname or "127.0.0.1", address.port or 1883)
    client.loop_start()
    if not connected.wait(timeout):
        raise RuntimeError(f"no CONNACK from {url} within {timeout} s")
    return client


def time_raw_publish(url: str, v5: bool, payloads: Sequence[bytes], inflight: int,
                     timeout: float) -> float:
    """Seconds for a bare paho client to publish QoS 1 until a bare subscriber has them all."""
    topic = f"bench/{uuid.uuid4().hex[:8]}/raw"
    counter = Counter(len(payloads))
    subscriber = bare_client(url, v5)
    subscriber.on_subscribe = counter.on_subscribe
    subscriber.on_message = counter.on_message
    publisher = bare_client(url, v5, inflight)  # the gateway's publishing window
    window = threading.BoundedSemaphore(RAW_WINDOW)
    publisher.on_publish = lambda *_: window.release()
    try:
        subscriber.subscribe(topic, qos=1)
        if not counter.subscribed.wait(10):
            raise RuntimeError(f"no SUBACK from {url}")
        start = time.perf_counter()
        for payload in payloads:
            if not window.acquire(timeout=timeout):
                raise RuntimeError(f"the broker stopped confirming publishes ({url})")
            publisher.publish(topic, payload, qos=1)
        if not counter.done.wait(timeout):
            raise RuntimeError(f"the bare subscriber got {counter.count} of {len(payloads)}")
        return time.perf_counter() - start
    finally:
        for client in (publisher, subscriber):
            client.disconnect()
            client.loop_stop()


def fill_backlog(recorder: Recorder, events: int) -> list[bytes]:
    """Commit ``events`` scan/grade events while the hub is offline; return their payloads."""
    payloads: list[bytes] = []
    chunk: list[ScanEvent | GradeEvent] = []
    for n in range(events // 2):
        chunk.extend(scan_pair(recorder, n))
        if len(chunk) >= COMMIT_CHUNK:
            recorder.commit_events(chunk)
            payloads.extend(e.encode() for e in chunk)
            chunk = []
    if chunk:
        recorder.commit_events(chunk)
        payloads.extend(e.encode() for e in chunk)
    return payloads


def wait_connected(uplink: Uplink, timeout: float = 10.0) -> None:
    """Wait until the uplink reached the broker; refuse a broker where a hub is already up."""
    deadline = time.monotonic() + timeout
    while uplink.counters.connects == 0:
        if time.monotonic() > deadline:
            raise RuntimeError("the gateway could not connect to the broker")
        time.sleep(0.02)
    if uplink.wait_live(True, 0.5):
        raise RuntimeError("a hub already says online on this broker: the backlog would go "
                           "to it; run without --broker to use a private Mosquitto")


def time_drain(work: Path, url: str, site: str, uplink: Uplink,
               timeout: float) -> tuple[float, float]:
    """Start a hub for ``site``; return seconds to start it and until the outbox is empty."""
    from firmware_sim.stack import start_stack  # the hub side (SQLAlchemy) loads only here

    started = time.perf_counter()
    stack = start_stack(work / "hub", sites=[site], broker=url)
    try:
        start = time.perf_counter()
        if not uplink.wait_drained(timeout):
            raise RuntimeError(f"outbox not drained in {timeout} s: "
                               f"{uplink.outbox.depth()} left")
        return start - started, time.perf_counter() - start
    finally:
        stack.stop()


def bench_drain(work: Path, url: str, sizes: Sizes) -> Figures:
    """Drain a backlog of events to a hub that comes up after them vs a bare paho pair."""
    from hub.mqtt_consumer import broker_speaks_v5
    from hub.settings import MqttSettings as HubMqttSettings

    v5 = broker_speaks_v5(HubMqttSettings(url=url))
    site = f"bench{uuid.uuid4().hex[:8]}"
    settings = GatewaySettings(id=GATEWAY, site=site, data_dir=work / "drain",
                               mqtt=MqttSettings(url=url, protocol="5" if v5 else "3.1.1"),
                               stations=[StationSettings(id="st-1")])
    outbox = Outbox(settings.outbox_path)
    uplink = Uplink(settings, outbox, outbox.next_boot(), protocol_v5=v5)
    recorder = Recorder(GATEWAY, site, uplink.boot, outbox, time.time, is_live=uplink.is_live)
    uplink.start()
    try:
        wait_connected(uplink)
        payloads = fill_backlog(recorder, sizes.events)
        say(f"drain: {len(payloads)} events committed with the hub offline; raw publish…")
        raw = time_raw_publish(url, v5, payloads, settings.mqtt.inflight, sizes.drain_timeout_s)
        say(f"drain: raw publish {rate(len(payloads), raw)}/s; starting the hub…")
        hub_start, drain = time_drain(work, url, site, uplink, sizes.drain_timeout_s)
    finally:
        uplink.stop()
        outbox.close()
    figures = {"drain_events_per_s": rate(len(payloads), drain),
               "raw_publish_per_s": rate(len(payloads), raw),
               "drain_ratio": round(raw / drain, 3), "drain_s": round(drain, 2),
               "drain_resent": uplink.counters.published - len(payloads),
               "hub_start_s": round(hub_start, 2), "broker_v5": v5}
    say(f"drain: {figures}")
    return figures


# --- 4. memory after an outage -----------------------------------------------------------


def rss_mb() -> float:
    """This process's resident set size in MB (VmRSS)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmRSS in /proc/self/status")


def file_mb(*paths: Path) -> float:
    """Total size of the files that exist among ``paths``, in MB."""
    return round(sum(p.stat().st_size for p in paths if p.exists()) / 2**20, 1)


def run_outage(path: Path, hours: int) -> Figures:
    """Commit PROBES readings per simulated second for ``hours``; report RSS and outbox size."""
    clock = VirtualClock(NOW)
    recorder = open_recorder(path, clock=clock)
    before = rss_mb()
    start = time.perf_counter()
    for second in range(hours * 3600):
        clock.advance(1)
        now = clock()
        recorder.commit_telemetry([(f"board{p // 8}-{p % 8 + 1}", now, 2.0 + (second % 50) / 100)
                                   for p in range(PROBES)])
    elapsed = time.perf_counter() - start
    figures = {"rss_mb_after_outage": rss_mb(), "rss_mb_before_outage": before,
               "outbox_rows": recorder.outbox.depth(),
               "outbox_mb": file_mb(path, path.with_name(path.name + "-wal")),
               "outage_hours": hours, "telemetry_commits_per_s": rate(hours * 3600, elapsed)}
    recorder.outbox.close()
    return figures


def bench_outage(work: Path, hours: int) -> Figures:
    """Run the outage in a fresh process, so its RSS is a gateway's, not this benchmark's."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        figures: Figures = pool.apply(run_outage, (work / "outage" / "outbox.db", hours))
    say(f"outage ({hours} h, {PROBES} probes at 1 Hz): {figures}")
    return figures


# --- broker and entry point --------------------------------------------------------------


@contextlib.contextmanager
def broker(explicit: str | None, work: Path) -> Iterator[str]:
    """Yield the broker URL: ``explicit``, else a private Mosquitto, else 127.0.0.1:1883."""
    binary = mosquitto_binary()
    if explicit or not binary:
        yield explicit or "mqtt://127.0.0.1:1883"
        return
    with private_mosquitto(binary, work) as url:
        yield url


def run(sizes: Sizes, broker_url: str | None) -> Figures:
    """Run every measurement in a scratch directory; return the report."""
    started = time.perf_counter()
    figures: Figures = {"mode": sizes.mode, "events": sizes.events, "tags": sizes.tags,
                        "cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="coldloop-bench-") as tmp:
        work = Path(tmp)
        figures |= bench_outage(work, sizes.outage_hours)
        figures |= bench_commits(work, sizes.commits)
        figures |= bench_scan_to_light(work, sizes.tags)
        with broker(broker_url, work) as url:
            say(f"broker: {url}")
            figures |= bench_drain(work, url, sizes)
    figures["elapsed_s"] = round(time.perf_counter() - started, 1)
    return figures


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line, run the benchmarks, print the JSON line last."""
    parser = argparse.ArgumentParser(prog="python -m bench.edge", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="about a minute, smaller sizes")
    parser.add_argument("--broker", help="mqtt://host:port (default: a private Mosquitto)")
    args = parser.parse_args(argv)
    figures = run(QUICK if args.quick else FULL, args.broker)
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
