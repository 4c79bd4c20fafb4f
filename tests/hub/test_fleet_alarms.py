"""The fleet registry and its alarms over real databases, in virtual time (explicit ``now``)."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, func, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from firmware_sim.thermal import ColdRoom
from hub.alarms import AlarmChanges, acknowledge, evaluate_alarms, list_alarms
from hub.db import alembic_config, make_engine, migrate, session_factory, transaction
from hub.errors import InvalidInput, NotFound
from hub.fleet_view import FleetView, fleet_view, probe_name
from hub.fleet_watch import FleetWatch
from hub.ingest import Received, store_batch
from hub.models import FaultRecord, FleetAlarm, Gateway, Scan
from hub.settings import TELEMETRY_WINDOW_S, FleetSettings
from hub.telemetry import WINDOW_S, NewBatch, Reading, store_batches
from protocols import topics
from protocols.messages import FaultEvent, GatewayState, HealthReport, ScanEvent, TelemetryBatch
from tests.hub.conftest import T0

SITE = "sh-01"
NOW = T0 + timedelta(hours=1)  # 10:30 UTC: a window boundary, "recent" starts at T0
SETTINGS = FleetSettings()
Key = tuple[str, str]


# --- feeding the hub as ingest would ---------------------------------------------------------


def state(gateway: str, at: datetime, *, online: bool = True, boot: int = 1,
          site: str = SITE, **fields: Any) -> Received:
    """A gateway's retained state as received at ``at``."""
    message = GatewayState(online=online, boot=boot, **{"clock": "synced", **fields})
    return Received(topics.state(site, gateway), message.encode(), at)


def health(gateway: str, seq: int, at: datetime, *, boot: int = 1, site: str = SITE,
           **values: Any) -> Received:
    """A health report stamped and received at ``at``."""
    report = HealthReport(id=f"{gateway}:{boot}:{seq}", ts=at, **{"clock": "synced", **values})
    return Received(topics.health(site, gateway), report.encode(), at)


def ingest(factory: sessionmaker[Session], *messages: Received) -> None:
    """Store messages through hub.ingest in one transaction."""
    with transaction(factory) as session:
        store_batch(session, list(messages))


def feed_probes(factory: sessionmaker[Session], gateway: str, readings: Sequence[Reading],
                received_at: datetime, *, every_s: float = 60.0) -> None:
    """Store ``readings`` as the gateway's telemetry batches, one per ``every_s`` of readings."""
    batches: dict[int, list[Reading]] = {}
    for reading in readings:
        batches.setdefault(int(reading[1] // every_s), []).append(reading)
    with transaction(factory) as session:
        store_batches(session, [
            NewBatch(batch_id=f"{gateway}:1:{bucket}", source=gateway, site=SITE,
                     readings=batch, document=b"{}", received_at=received_at)
            for bucket, batch in sorted(batches.items())])


def sample(models: dict[str, Any], start: datetime, end: datetime,
           every_s: float = 10.0) -> list[Reading]:
    """Readings of each probe in ``models`` (probe -> function of epoch s) in [start, end)."""
    readings: list[Reading] = []
    t = start.timestamp()
    while t < end.timestamp():
        readings += [(probe, t, round(model(t), 2)) for probe, model in models.items()]
        t += every_s
    return readings


def evaluate(factory: sessionmaker[Session], now: datetime,
             settings: FleetSettings = SETTINGS, **kwargs: Any) -> AlarmChanges:
    """One evaluation in its own transaction, as the background evaluator runs it."""
    with transaction(factory) as session:
        return evaluate_alarms(session, now, settings, **kwargs)


def open_alarms(factory: sessionmaker[Session]) -> dict[Key, FleetAlarm]:
    """The open alarms by (kind, subject)."""
    with factory() as session:
        return {(a.kind, a.subject): a for a in list_alarms(session, open_only=True, limit=1000)}


def keys(alarms: Iterable[FleetAlarm]) -> set[Key]:
    return {(a.kind, a.subject) for a in alarms}


def view(factory: sessionmaker[Session], now: datetime = NOW,
         settings: FleetSettings = SETTINGS) -> FleetView:
    with factory() as session:
        return fleet_view(session, now, settings)


def add_scans(session: Session, gateway: str, station: str, times: Iterable[datetime],
              prefix: str) -> None:
    session.add_all(Scan(message_id=f"{gateway}:{prefix}:{n}", gateway_id=gateway,
                         station=station, item_id=f"IT-{n}", tag_uid="04a1b2c3d4",
                         lot="L2611", gtin="06901234567892", core_temp_c=4.0, ts=ts,
                         clock="synced") for n, ts in enumerate(times))


def add_faults(session: Session, gateway: str, station: str, times: Iterable[datetime],
               prefix: str, component: str = "rfid") -> None:
    session.add_all(FaultRecord(message_id=f"{gateway}:{prefix}:{n}", gateway_id=gateway,
                                station=station, component=component, code="reader_error",
                                severity="warning", ts=ts) for n, ts in enumerate(times))


def fleet_scenario(factory: sessionmaker[Session]) -> None:
    """Three gateways as of NOW; docstrings of the tests below say what each one shows.

    gw-1: online, reports disk_low in its state, a low disk in its health, 9 failed reads in
    the last hour, stations pad-1 (38 scans, 2 reader faults) and pad-2 (10 scans, 4 reader
    faults); probes b1-1 (2.0 °C), b1-2 (2.5 °C, a fifth of readings missing) and b1-3 (6.0 °C).
    gw-2: offline by its last will for two hours. gw-3: online, but silent for ten minutes.
    """
    minute = timedelta(minutes=1)
    ingest(factory,
           state("gw-1", NOW - minute, boot=2, software="edge 1.6", model_version="grader-3",
                 backlog=4, alarms=["disk_low"]),
           state("gw-2", NOW - timedelta(hours=3), boot=7),
           state("gw-3", NOW - 10 * minute, site="sz-02", clock="holdover"))
    ingest(factory, state("gw-2", NOW - timedelta(hours=2), online=False, boot=7))
    ingest(factory,
           health("gw-1", 5, NOW - 50 * minute, boot=2, reader_errors=10, uptime_s=4200.0,
                  disk_free_mb=900.0, disk_used_pct=70.0),
           health("gw-1", 90, NOW - 30 * timedelta(seconds=1), boot=2, reader_errors=19,
                  uptime_s=7170.0, disk_free_mb=150.0, disk_used_pct=96.5, outbox_depth=4,
                  dead_letters=1, cpu_temp_c=51.2))
    with transaction(factory) as session:
        add_scans(session, "gw-1", "pad-1", [NOW - timedelta(hours=2)], "old")
        add_scans(session, "gw-1", "pad-1", [NOW - n * minute for n in range(2, 40)], "p1")
        add_scans(session, "gw-1", "pad-2", [NOW - n * minute for n in range(5, 15)], "p2")
        add_faults(session, "gw-1", "pad-1", [NOW - 3 * minute, NOW - 70 * minute], "f1")
        add_faults(session, "gw-1", "pad-1", [NOW - 4 * minute], "f1b")
        add_faults(session, "gw-1", "pad-2", [NOW - n * minute for n in (6, 7, 8, 9)], "f2")
        add_faults(session, "gw-1", "pad-2", [NOW - 6 * minute], "f2p", component="probe:b1")
    readings: list[Reading] = []
    for n in range(20):  # one reading a minute, at :30, from 10:10 to 10:29
        t = (NOW - timedelta(minutes=20)).timestamp() + 60 * n + 30
        readings += [("b1-1", t, 2.0), ("b1-2", t, None if n % 5 == 0 else 2.5),
                     ("b1-3", t, 6.0), ("health/cpu_temp_c", t, 51.0)]
    feed_probes(factory, "gw-1", readings, NOW - timedelta(seconds=20))


# --- the registry ---------------------------------------------------------------------------


def test_registry_of_gateways_stations_and_probes(hub_db: sessionmaker[Session]) -> None:
    fleet_scenario(hub_db)
    fleet = view(hub_db)

    gw1, gw2, gw3 = fleet.gateways
    assert [g.gateway.id for g in fleet.gateways] == ["gw-1", "gw-2", "gw-3"]
    assert (gw1.gateway.online, gw1.gateway.boot, gw1.gateway.backlog, gw1.gateway.software,
            gw1.gateway.model_version, gw1.gateway.alarms) == (
        True, 2, 4, "edge 1.6", "grader-3", ["disk_low"])
    assert gw1.gateway.last_seen == NOW - timedelta(seconds=30)  # its health, not its state
    assert gw1.silent_s == 30.0
    assert gw1.health is not None and gw1.health.message_id == "gw-1:2:90"
    assert (gw1.health.number("disk_free_mb"), gw1.health.number("dead_letters"),
            gw1.health.number("outbox_depth")) == (150.0, 1.0, 4.0)
    assert (gw1.clock, gw1.clock_source) == ("synced", "health")
    # 2 + 4 reader faults in the hour (one of pad-1's is older), 19 - 10 failed reads counted
    # by the health reports: the larger, 9, against 38 + 10 scans.
    assert (gw1.reader_faults, gw1.failed_reads) == (6, 9)
    assert (gw1.reader.scans, gw1.reader.errors, gw1.reader.attempts) == (48, 9, 57)
    assert gw1.reader.error_pct == pytest.approx(100 * 9 / 57)
    assert (gw2.gateway.online, gw2.silent_s, gw2.health, gw2.failed_reads) == (
        False, 7200.0, None, None)
    assert (gw3.gateway.site, gw3.clock, gw3.clock_source, gw3.silent_s) == (
        "sz-02", "holdover", "state", 600.0)

    pad1, pad2 = fleet.stations
    assert (pad1.gateway_id, pad1.station, pad1.last_scan) == (
        "gw-1", "pad-1", NOW - timedelta(minutes=2))
    assert (pad1.reader.scans, pad1.reader.errors, pad1.reader.error_pct) == (38, 2, 5.0)
    assert (pad2.station, pad2.reader.scans, pad2.reader.errors) == ("pad-2", 10, 4)
    assert pad2.reader.error_pct == pytest.approx(100 * 4 / 14)

    b1, b2, b3 = fleet.probes
    assert [p.probe for p in fleet.probes] == ["b1-1", "b1-2", "b1-3"]  # no health/ metrics
    assert b2.last_reading == NOW - timedelta(seconds=30)
    assert b2.last_window is not None
    assert (b2.last_window.start, b2.last_window.readings, b2.last_window.missing,
            b2.last_window.mean_c, b2.last_window.min_c, b2.last_window.max_c) == (
        (NOW - timedelta(minutes=5)).timestamp(), 4, 1, 2.5, 2.5, 2.5)
    assert (b2.readings, b2.missing, b2.missing_pct) == (16, 4, 20.0)
    assert (b1.missing_pct, b3.missing_pct) == (0.0, 0.0)
    # The median of 2.0, 2.5 and 6.0 is 2.5 in each of the four windows.
    assert [(d.deviation_c, d.median_c, d.probes) for d in b3.deviations] == [(3.5, 2.5, 3)] * 4
    assert [d.start for d in b3.deviations] == [
        (NOW - timedelta(minutes=m)).timestamp() for m in (5, 10, 15, 20)]
    assert (b1.deviation_c, b2.deviation_c) == (-0.5, 0.0)


def test_every_alarm_of_the_scenario(hub_db: sessionmaker[Session]) -> None:
    fleet_scenario(hub_db)
    changes = evaluate(hub_db, NOW)

    assert keys(changes.raised) == {
        ("gateway_reported:disk_low", "gw-1"), ("disk_low", "gw-1"), ("reader_errors", "gw-1"),
        ("probe_drift", "gw-1/b1-3"), ("gateway_offline", "gw-2"),
        ("gateway_silent", "gw-3"), ("clock_unsynced", "gw-3")}
    alarms = open_alarms(hub_db)
    assert alarms[("reader_errors", "gw-1")].message == (
        "gateway gw-1 (sh-01): 9 reader errors in 57 reads in the last 3600 s (15.8 %, limit "
        "5 %); worst station pad-2: 4 reader faults in 14 reads (28.6 %)")
    assert alarms[("disk_low", "gw-1")].message == (
        "gateway gw-1 (sh-01) has 150 MB free, 96.5 % used by its health report of "
        "2026-11-20 10:29:30 UTC (limits: 500 MB free, 90 % used)")
    assert alarms[("probe_drift", "gw-1/b1-3")].message == (
        "probe b1-3 on gateway gw-1 is off the median of the gateway's 3 probes by +3.5, +3.5, "
        "+3.5 °C in its last 3 windows (limit ±2 °C); newest window mean 6.0 °C vs median "
        "2.5 °C")
    assert alarms[("gateway_offline", "gw-2")].message == (
        "gateway gw-2 (sh-01) is offline by its state (last will or shutdown) since "
        "2026-11-20 08:30:00 UTC, 7200 s ago (limit 60 s)")
    assert alarms[("gateway_silent", "gw-3")].message == (
        "gateway gw-3 (sz-02) is online by its state but has sent nothing for 600 s "
        "(limit 180 s); last seen 2026-11-20 10:20:00 UTC")
    assert (alarms[("clock_unsynced", "gw-3")].severity,
            alarms[("gateway_silent", "gw-3")].severity,
            alarms[("gateway_reported:disk_low", "gw-1")].severity) == ("info", "error", "warning")
    assert all((a.site, a.raised_at, a.last_seen_at, a.cleared_at) == (
        "sz-02" if a.gateway_id == "gw-3" else "sh-01", NOW, NOW, None) for a in alarms.values())


# --- gateways --------------------------------------------------------------------------------


def test_silent_gateway_is_raised_after_the_threshold_and_cleared_when_it_speaks(
        hub_db: sessionmaker[Session]) -> None:
    ingest(hub_db, state("gw-1", T0))

    assert keys(evaluate(hub_db, T0 + timedelta(seconds=180)).raised) == set()
    raised = evaluate(hub_db, T0 + timedelta(seconds=180.4)).raised
    assert keys(raised) == {("gateway_silent", "gw-1")}
    assert "has sent nothing for 181 s (limit 180 s)" in raised[0].message  # rounded up

    # Any message counts, not only a state: here a fault event 200 s after the state.
    fault = FaultEvent(id="gw-1:1:1", ts=T0, station="pad-1", component="rfid",
                       code="reader_error")
    ingest(hub_db, Received(topics.event(SITE, "gw-1", "fault"), fault.encode(),
                            T0 + timedelta(seconds=200)))
    changes = evaluate(hub_db, T0 + timedelta(seconds=210))
    assert keys(changes.cleared) == {("gateway_silent", "gw-1")}
    assert changes.cleared[0].cleared_at == T0 + timedelta(seconds=210)
    assert open_alarms(hub_db) == {}


def test_offline_gateway_is_its_own_alarm(hub_db: sessionmaker[Session]) -> None:
    ingest(hub_db, state("gw-1", T0, clock="unsynced", alarms=["disk_full"]))
    ingest(hub_db, state("gw-1", T0 + timedelta(seconds=5), online=False))  # its last will

    assert keys(evaluate(hub_db, T0 + timedelta(seconds=65)).raised) == set()
    changes = evaluate(hub_db, T0 + timedelta(seconds=66))
    # Only the offline alarm: the will's clock and the silence say nothing more.
    assert keys(changes.raised) == {("gateway_offline", "gw-1")}
    assert evaluate(hub_db, T0 + timedelta(hours=3)).raised == []

    ingest(hub_db, state("gw-1", T0 + timedelta(hours=3), boot=2))
    changes = evaluate(hub_db, T0 + timedelta(hours=3, seconds=10))
    assert keys(changes.cleared) == {("gateway_offline", "gw-1")}
    assert changes.raised == []


def test_gateway_reported_alarms_pass_through_and_clear(hub_db: sessionmaker[Session]) -> None:
    ingest(hub_db, state("gw-1", T0, alarms=["disk_low"]))
    raised = evaluate(hub_db, T0 + timedelta(seconds=10)).raised
    assert [(a.kind, a.subject, a.severity, a.message) for a in raised] == [
        ("gateway_reported:disk_low", "gw-1", "warning",
         "gateway gw-1 (sh-01) reports alarm 'disk_low' in its state")]

    ingest(hub_db, state("gw-1", T0 + timedelta(seconds=20), alarms=["disk_full", "disk_full"]))
    changes = evaluate(hub_db, T0 + timedelta(seconds=30))
    assert [(a.kind, a.severity) for a in changes.raised] == [
        ("gateway_reported:disk_full", "error")]
    assert keys(changes.cleared) == {("gateway_reported:disk_low", "gw-1")}
    with hub_db() as session:
        assert session.get_one(Gateway, "gw-1").alarms == ["disk_full"]

    ingest(hub_db, state("gw-1", T0 + timedelta(seconds=40)))
    assert keys(evaluate(hub_db, T0 + timedelta(seconds=50)).cleared) == {
        ("gateway_reported:disk_full", "gw-1")}
    assert open_alarms(hub_db) == {}


def test_clock_and_disk_follow_the_latest_health_report(hub_db: sessionmaker[Session]) -> None:
    ingest(hub_db, state("gw-1", T0, boot=3))  # synced at connect
    ingest(hub_db, health("gw-1", 7, T0 + timedelta(seconds=60), boot=3, clock="unsynced",
                          disk_free_mb=2000.0, disk_used_pct=91.0))
    changes = evaluate(hub_db, T0 + timedelta(seconds=70))
    assert keys(changes.raised) == {("clock_unsynced", "gw-1"), ("disk_low", "gw-1")}
    assert "reports its clock unsynced (by its latest health report)" in (
        open_alarms(hub_db)[("clock_unsynced", "gw-1")].message)

    ingest(hub_db, health("gw-1", 8, T0 + timedelta(seconds=120), boot=3,
                          disk_free_mb=2000.0, disk_used_pct=40.0))
    changes = evaluate(hub_db, T0 + timedelta(seconds=130))
    assert keys(changes.cleared) == {("clock_unsynced", "gw-1"), ("disk_low", "gw-1")}
    # A report of an older boot says nothing about the clock of the current one.
    ingest(hub_db, state("gw-1", T0 + timedelta(seconds=140), boot=4, clock="unsynced"))
    assert keys(evaluate(hub_db, T0 + timedelta(seconds=150)).raised) == {
        ("clock_unsynced", "gw-1")}


def test_reader_errors_need_enough_reads(hub_db: sessionmaker[Session]) -> None:
    ingest(hub_db, state("gw-1", NOW - timedelta(seconds=30)))
    minute = timedelta(minutes=1)
    with transaction(hub_db) as session:
        add_scans(session, "gw-1", "pad-1", [NOW - n * minute for n in range(1, 10)], "s")
        add_faults(session, "gw-1", "pad-1", [NOW - n * minute for n in range(1, 6)], "f")
    assert evaluate(hub_db, NOW).raised == []  # 5 errors in 14 reads: too few to judge

    with transaction(hub_db) as session:
        add_scans(session, "gw-1", "pad-1", [NOW - n * minute for n in range(10, 16)], "t")
    changes = evaluate(hub_db, NOW)
    assert keys(changes.raised) == {("reader_errors", "gw-1")}
    assert "5 reader errors in 20 reads in the last 3600 s (25.0 %, limit 5 %)" in (
        changes.raised[0].message)
    # An hour later the faults are out of the window: the rate is 0 of 0 reads.
    assert keys(evaluate(hub_db, NOW + timedelta(hours=1)).cleared) == {
        ("reader_errors", "gw-1")}


def test_failed_reads_of_a_boot_that_started_inside_the_window_count_from_zero(
        hub_db: sessionmaker[Session]) -> None:
    minute = timedelta(minutes=1)
    ingest(hub_db, state("gw-1", NOW, boot=4))
    ingest(hub_db,
           health("gw-1", 3, NOW - 55 * minute, boot=3, reader_errors=40, uptime_s=9000.0),
           health("gw-1", 9, NOW - 45 * minute, boot=3, reader_errors=52, uptime_s=9600.0),
           health("gw-1", 1, NOW - 30 * minute, boot=4, reader_errors=6, uptime_s=120.0),
           health("gw-1", 4, NOW - 10 * minute, boot=4, reader_errors=11, uptime_s=1320.0))
    (gw,) = view(hub_db).gateways
    assert gw.failed_reads == (52 - 40) + 11  # boot 3: its rise; boot 4: all since its start


# --- probes ---------------------------------------------------------------------------------


def room_probe(seed: int, offset_c: float = 0.0, **room: Any) -> Any:
    """A probe in the shared cold room: its compressor cycle, its own noise and calibration."""
    model = ColdRoom(seed=seed, setpoint_c=2.0 + offset_c, compressor_period_s=1200.0,
                     compressor_swing_c=3.0, compressor_phase_s=0.0, noise_sd_c=0.15, **room)
    return model.celsius


def test_probe_drift_is_raised_for_the_drifting_probe_only(
        hub_db: sessionmaker[Session]) -> None:
    start = NOW - timedelta(minutes=45)
    ingest(hub_db, state("gw-1", NOW - timedelta(seconds=5)), state("gw-2", NOW))
    # gw-1: four probes in one room whose compressor swings ±3 °C (window means move by
    # degrees), with small calibration offsets; probe b1-4 starts drifting upwards by 9 °C/h.
    probes = {"b1-1": room_probe(1), "b1-2": room_probe(2, 0.4), "b1-3": room_probe(3, -0.3),
              "b1-4": room_probe(4, warming_from=start.timestamp(), warming_c_per_h=9.0)}
    # gw-2: three probes sharing the same swing, nothing wrong.
    calm = {"b2-1": room_probe(5), "b2-2": room_probe(6, 0.2), "b2-3": room_probe(7)}
    middle = NOW - timedelta(minutes=30)
    feed_probes(hub_db, "gw-1", sample(probes, start, middle), middle)

    fleet = view(hub_db, middle)  # b1-4 is 1.9 °C up on average in the third window only
    assert [p.probe for p in fleet.probes if p.deviation_c is not None and
            p.deviation_c > 1.0] == ["b1-4"]
    assert max(abs(d.deviation_c) for p in fleet.probes for d in p.deviations) < 2.0
    assert evaluate(hub_db, middle).raised == []

    feed_probes(hub_db, "gw-1", sample(probes, middle, NOW), NOW)
    feed_probes(hub_db, "gw-2", sample(calm, start, NOW), NOW)
    fleet = view(hub_db)
    means = [p.deviation_c for p in fleet.probes_of("gw-2") if p.deviation_c is not None]
    windows = {d.start: d.median_c for p in fleet.probes_of("gw-2") for d in p.deviations}
    assert max(windows.values()) - min(windows.values()) > 2.0  # the swing moves the median
    assert len(means) == 3 and max(means) - min(means) < 1.0  # newest window: all alike
    raised = evaluate(hub_db, NOW).raised
    assert keys(raised) == {("probe_drift", "gw-1/b1-4")}
    assert "off the median of the gateway's 4 probes by +" in raised[0].message

    # Recalibrated: one normal window and the drift alarm clears.
    probes["b1-4"] = room_probe(4)
    feed_probes(hub_db, "gw-1", sample(probes, NOW, NOW + timedelta(minutes=5)),
                NOW + timedelta(minutes=5))
    assert keys(evaluate(hub_db, NOW + timedelta(minutes=5)).cleared) == {
        ("probe_drift", "gw-1/b1-4")}


def test_drift_needs_three_probes(hub_db: sessionmaker[Session]) -> None:
    ingest(hub_db, state("gw-1", NOW))
    feed_probes(hub_db, "gw-1", sample({"a": lambda t: 2.0, "b": lambda t: 9.0},
                                       NOW - timedelta(minutes=30), NOW), NOW)
    fleet = view(hub_db)
    assert [p.deviations for p in fleet.probes] == [(), ()]
    assert evaluate(hub_db, NOW).raised == []


def test_probe_silent_only_while_its_gateway_is_heard(hub_db: sessionmaker[Session]) -> None:
    ingest(hub_db, state("gw-1", NOW - timedelta(seconds=10)))
    steady = {"b1-1": lambda t: 2.0, "b1-2": lambda t: 2.1, "b1-3": lambda t: 1.9}
    feed_probes(hub_db, "gw-1", sample(steady, NOW - timedelta(minutes=20),
                                       NOW - timedelta(minutes=10)), NOW - timedelta(minutes=10))
    del steady["b1-3"]  # unplugged ten minutes ago
    feed_probes(hub_db, "gw-1", sample(steady, NOW - timedelta(minutes=10), NOW), NOW)

    raised = evaluate(hub_db, NOW).raised
    assert keys(raised) == {("probe_silent", "gw-1/b1-3")}
    assert raised[0].message == (
        "probe b1-3 on gateway gw-1 sent no reading for 610 s before now (limit 180 s); last "
        "reading 2026-11-20 10:19:50 UTC")

    # The gateway falls silent too: nothing new is said about its probes, nothing cleared.
    changes = evaluate(hub_db, NOW + timedelta(minutes=5))
    assert keys(changes.raised) == {("gateway_silent", "gw-1")}
    assert keys(changes.held) == {("probe_silent", "gw-1/b1-3")}
    assert changes.cleared == []


def test_probe_silence_of_an_unsynced_gateway_is_measured_on_its_own_clock(
        hub_db: sessionmaker[Session]) -> None:
    # The gateway's clock is hours behind: its readings look old, but only b1-3 stopped.
    ingest(hub_db, state("gw-1", NOW - timedelta(seconds=30), clock="unsynced"))
    behind = NOW - timedelta(hours=6)
    steady = {"b1-1": lambda t: 2.0, "b1-2": lambda t: 2.1, "b1-3": lambda t: 1.9}
    feed_probes(hub_db, "gw-1", sample(steady, behind - timedelta(minutes=10), behind), NOW)
    del steady["b1-3"]
    feed_probes(hub_db, "gw-1", sample(steady, behind, behind + timedelta(minutes=5)), NOW)

    assert keys(evaluate(hub_db, NOW).raised) == {
        ("clock_unsynced", "gw-1"), ("probe_silent", "gw-1/b1-3")}
    assert "before the gateway's newest reading" in open_alarms(hub_db)[
        ("probe_silent", "gw-1/b1-3")].message


def test_downsampled_readings_belong_to_their_probe() -> None:
    assert probe_name("b1-1") == ("b1-1", "raw")
    assert probe_name("b1-1/mean") == ("b1-1", "mean")
    assert probe_name("b1-1/max") == ("b1-1", "max")
    assert probe_name("b1-1/median") == ("b1-1/median", "raw")
    assert probe_name("health/cpu_temp_c") is None


def test_a_low_disk_gateway_sending_per_minute_aggregates_keeps_its_probes(
        hub_db: sessionmaker[Session]) -> None:
    ingest(hub_db, state("gw-1", NOW))
    t = (NOW - timedelta(minutes=4)).timestamp()
    feed_probes(hub_db, "gw-1", [
        ("b1-1", t - 60, 2.0), ("b1-1/min", t, 1.0), ("b1-1/max", t, 5.0),
        ("b1-1/mean", t, 3.0), ("b1-1/mean", t + 60, None)], NOW)
    (probe,) = view(hub_db).probes
    assert probe.last_window is not None
    assert (probe.probe, probe.readings, probe.missing, probe.last_window.mean_c,
            probe.last_window.min_c, probe.last_window.max_c) == ("b1-1", 2, 1, 2.5, 1.0, 5.0)
    assert probe.last_reading is not None
    assert probe.last_reading.timestamp() == t + 60


# --- evaluation ------------------------------------------------------------------------------


def test_re_evaluation_is_idempotent(hub_db: sessionmaker[Session]) -> None:
    fleet_scenario(hub_db)
    first = evaluate(hub_db, NOW)
    again = evaluate(hub_db, NOW)
    later = evaluate(hub_db, NOW + timedelta(seconds=30))

    assert (len(first.raised), again.raised, again.cleared, later.raised) == (7, [], [], [])
    assert keys(again.refreshed) == keys(first.raised)
    with hub_db() as session:
        assert session.scalar(select(func.count()).select_from(FleetAlarm)) == 7
    silent = open_alarms(hub_db)[("gateway_silent", "gw-3")]
    assert (silent.raised_at, silent.last_seen_at) == (NOW, NOW + timedelta(seconds=30))
    assert "sent nothing for 630 s" in silent.message  # the numbers follow


def test_the_database_keeps_one_open_alarm_per_kind_and_subject(
        hub_db: sessionmaker[Session]) -> None:
    def alarm(cleared: datetime | None) -> FleetAlarm:
        return FleetAlarm(kind="gateway_silent", subject="gw-1", gateway_id="gw-1",
                          site=SITE, severity="error", message="m", raised_at=T0,
                          last_seen_at=T0, cleared_at=cleared)

    with transaction(hub_db) as session:
        session.add_all([alarm(T0), alarm(T0), alarm(None)])  # cleared ones may repeat
    with pytest.raises(IntegrityError), transaction(hub_db) as session:
        session.add(alarm(None))


def test_silence_is_not_judged_before_the_hub_has_listened_long_enough(
        hub_db: sessionmaker[Session]) -> None:
    ingest(hub_db, state("gw-1", T0), state("gw-2", T0))
    assert keys(evaluate(hub_db, T0 + timedelta(minutes=5)).raised) == {
        ("gateway_silent", "gw-1"), ("gateway_silent", "gw-2")}
    ingest(hub_db, state("gw-3", T0))

    # The hub restarts at T0 + 1 h; gw-1 speaks a minute later.
    restart = T0 + timedelta(hours=1)
    ingest(hub_db, health("gw-1", 1, restart + timedelta(minutes=1)))
    changes = evaluate(hub_db, restart + timedelta(minutes=2), listening_since=restart)
    assert keys(changes.cleared) == {("gateway_silent", "gw-1")}
    assert keys(changes.held) == {("gateway_silent", "gw-2")}  # kept, not refreshed
    assert changes.raised == []  # gw-3 may have spoken while the hub was away
    assert open_alarms(hub_db)[("gateway_silent", "gw-2")].last_seen_at == (
        T0 + timedelta(minutes=5))

    later = evaluate(hub_db, restart + timedelta(minutes=4), listening_since=restart)
    assert keys(later.raised) == {("gateway_silent", "gw-3")}
    assert keys(later.refreshed) == {("gateway_silent", "gw-2")}


def test_acknowledging(hub_db: sessionmaker[Session]) -> None:
    ingest(hub_db, state("gw-1", T0))
    (raised,) = evaluate(hub_db, T0 + timedelta(minutes=5)).raised
    with transaction(hub_db) as session:
        acked = acknowledge(session, raised.id, " ops-1 ", T0 + timedelta(minutes=6))
        assert (acked.acknowledged_by, acked.acknowledged_at) == (
            "ops-1", T0 + timedelta(minutes=6))
        again = acknowledge(session, raised.id, "ops-2", T0 + timedelta(minutes=7))
        assert (again.acknowledged_by, again.acknowledged_at) == (
            "ops-1", T0 + timedelta(minutes=6))
        with pytest.raises(NotFound, match="fleet alarm 999 does not exist"):
            acknowledge(session, 999, "ops-1", T0)
        with pytest.raises(InvalidInput, match="'by' must name who acknowledges"):
            acknowledge(session, raised.id, "  ", T0)
    # An acknowledged alarm stays acknowledged while its condition lasts.
    evaluate(hub_db, T0 + timedelta(minutes=8))
    assert open_alarms(hub_db)[("gateway_silent", "gw-1")].acknowledged_by == "ops-1"


def test_background_evaluator_runs_a_round_at_once_and_stops(
        hub_db: sessionmaker[Session]) -> None:
    ingest(hub_db, state("gw-1", T0))
    asked = threading.Event()

    def clock() -> datetime:
        asked.set()
        return T0 + timedelta(minutes=10)

    watch = FleetWatch(hub_db, FleetSettings(evaluate_every_s=3600), clock=clock)
    watch.listening_since = T0 - timedelta(hours=1)
    direct = watch.evaluate_once()
    assert keys(direct.raised) == {("gateway_silent", "gw-1")}
    asked.clear()
    watch.start()
    try:
        assert asked.wait(10)
    finally:
        watch.stop()
    assert not watch.running  # joined
    assert watch.failures == 0
    assert len(open_alarms(hub_db)) == 1


# --- ingest keeps last_seen ------------------------------------------------------------------


def test_ingest_moves_last_seen_forward_for_any_message(hub_db: sessionmaker[Session]) -> None:
    ingest(hub_db, state("gw-1", T0))
    scan = ScanEvent(id="gw-1:1:1", ts=T0, station="pad-1", item_id="IT-1",
                     tag_uid="04a1b2c3d4", lot="L2611", gtin="06901234567892")
    readings: list[Reading] = [("b1-1", T0.timestamp(), 2.0)]
    telemetry = TelemetryBatch(id="gw-1:1:2", ts=T0, readings=readings)
    stranger = TelemetryBatch(id="gw-9:1:1", ts=T0, readings=readings)
    at = T0 + timedelta(minutes=1)
    ingest(hub_db,
           Received(topics.event(SITE, "gw-1", "scan"), scan.encode(), at),
           Received(topics.telemetry(SITE, "gw-1"), telemetry.encode(),
                    at + timedelta(seconds=5)),
           Received(topics.telemetry(SITE, "gw-9"), stranger.encode(), at))  # no state: no row

    def last_seen() -> datetime | None:
        with hub_db() as session:
            assert session.get(Gateway, "gw-9") is None
            return session.get_one(Gateway, "gw-1").last_seen

    assert last_seen() == at + timedelta(seconds=5)
    # A duplicate still shows the gateway is alive; an older receipt never moves it back.
    ingest(hub_db, Received(topics.event(SITE, "gw-1", "scan"), scan.encode(),
                            at + timedelta(minutes=1)))
    assert last_seen() == at + timedelta(minutes=1)
    ingest(hub_db, Received(topics.health(SITE, "gw-1"),
                            HealthReport(id="gw-1:1:3", ts=T0).encode(), T0))
    assert last_seen() == at + timedelta(minutes=1)
    # A rejected message is not taken as a sign of life.
    ingest(hub_db, Received(topics.event(SITE, "gw-1", "scan"), b"not json",
                            at + timedelta(minutes=5)))
    assert last_seen() == at + timedelta(minutes=1)


# --- migration -------------------------------------------------------------------------------


def test_migration_0005_up_and_down(database_url: str) -> None:
    migrate(database_url, "0004")
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO gateways (id, site, online, boot, backlog, clock) "
                              "VALUES ('gw-1', 'sh-01', true, 1, 0, 'synced')"))
        migrate(database_url, "0005")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT alarms FROM gateways")).scalar_one() in ([], "[]")
        with transaction(session_factory(engine)) as session:
            assert session.get_one(Gateway, "gw-1").alarms == []
            session.add(FleetAlarm(kind="gateway_silent", subject="gw-1", gateway_id="gw-1",
                                   site=SITE, severity="error", message="m", raised_at=T0,
                                   last_seen_at=T0))
        with engine.connect() as conn:
            only = MetaData()
            for name in ("gateways", "fleet_alarms"):
                Gateway.metadata.tables[name].to_metadata(only)
            context = MigrationContext.configure(conn, opts={
                "include_name": lambda name, kind, _p: kind != "table" or name in only.tables})
            assert compare_metadata(context, only) == []

        command.downgrade(alembic_config(database_url), "0004")
        tables = inspect(engine)
        assert "fleet_alarms" not in tables.get_table_names()
        assert "alarms" not in {c["name"] for c in tables.get_columns("gateways")}
        with engine.connect() as conn:
            assert conn.execute(text("SELECT id FROM gateways")).scalars().all() == ["gw-1"]
        migrate(database_url, "0005")  # and up again
        assert "fleet_alarms" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_fleet_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="drift_windows = 13 windows of 300 s do not fit"):
        FleetSettings(drift_windows=13)
    with pytest.raises(ValueError, match="silent_after_s"):
        FleetSettings(silent_after_s=1)
    assert math.isclose(FleetSettings().drift_c, 2.0)
    assert TELEMETRY_WINDOW_S == WINDOW_S
