"""The fleet registry: gateways, stations and probes with their recent numbers (docs/fleet.md).

Read-only and clock-free: every number is computed from stored timestamps relative to the
``now`` passed in, over "recent" = the last ``FleetSettings.window_s`` seconds.

* **Gateways** are the ``gateways`` rows (their retained state) with the latest health report,
  the effective clock state and the reader error rate.
* **Stations** are derived from scans and reader faults (``component == "rfid"``) of the last
  ``forget_after_s``.
* **Probes** are derived from the telemetry windows of gateways' probes of the last
  ``forget_after_s``; with each probe's deviation from its gateway's probe median per window,
  which the probe-drift alarm reads.

Reader error rate = reader errors per 100 read attempts, ``100 * errors / (errors + scans)``.
A station's errors are its reader faults; a gateway's are the larger of its stations' reader
faults and the increase of its health reports' ``reader_errors`` counter (each reader fault also
bumps that counter, so adding them would count it twice).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from hub.command_models import GatewayHealth
from hub.models import FaultRecord, Gateway, Scan, TelemetryWindow
from hub.settings import FleetSettings
from hub.telemetry import WINDOW_S, WindowView
from protocols.messages import MessageId

READER_COMPONENT = "rfid"  # FaultEvent.component of a station's tag reader (edge/station.py)
MIN_DRIFT_PROBES = 3  # a median of fewer probes cannot tell which one is off
HEALTH_PROBE_PREFIX = "health/"  # gateway metrics sent as readings by older edge software
_DOWNSAMPLED = ("mean", "min", "max")  # edge.telemetry.per_minute: "<probe>/mean" etc.


@dataclass(frozen=True, slots=True)
class Health:
    """A gateway's latest health report (HealthReport fields as stored)."""

    message_id: str
    ts: datetime
    clock: str
    values: Mapping[str, Any]

    @property
    def boot(self) -> int:
        """The gateway boot that sent the report (from its message id)."""
        return MessageId.parse(self.message_id).boot

    def number(self, name: str) -> float | None:
        """A numeric field of the report, or None when the gateway could not tell."""
        value = self.values.get(name)
        return float(value) if isinstance(value, int | float) else None


@dataclass(frozen=True, slots=True)
class ReaderRate:
    """Successful scans and reader errors over the recent window."""

    scans: int
    errors: int

    @property
    def attempts(self) -> int:
        """Read attempts: scans plus errors."""
        return self.scans + self.errors

    @property
    def error_pct(self) -> float | None:
        """Reader errors per 100 read attempts; None without any attempt."""
        return 100.0 * self.errors / self.attempts if self.attempts else None


@dataclass(frozen=True, slots=True)
class GatewayView:
    """A gateway's state, latest health and recent reader numbers."""

    gateway: Gateway
    health: Health | None
    clock: str  # the effective clock state (see clock_source)
    clock_source: str  # "health": the latest report of the current boot; else "state"
    silent_s: float | None  # seconds since any message from the gateway; None: never seen
    reader: ReaderRate
    reader_faults: int  # reader faults of its stations in the window
    failed_reads: int | None  # increase of the health reader_errors counter; None: no reports


@dataclass(frozen=True, slots=True)
class StationView:
    """A scan station, known from its scans and reader faults."""

    gateway_id: str
    site: str
    station: str
    last_scan: datetime | None
    reader: ReaderRate  # errors: the station's reader faults in the window


@dataclass(frozen=True, slots=True)
class Deviation:
    """How far a probe's window mean was from the median of its gateway's probes."""

    start: float  # window start, epoch seconds
    deviation_c: float  # probe mean - median
    median_c: float  # median of the window means of every probe of the gateway with data
    probes: int  # how many probes had data in that window


@dataclass(frozen=True, slots=True)
class ProbeView:
    """A temperature probe of a gateway, known from its telemetry windows."""

    gateway_id: str
    site: str
    probe: str
    last_reading: datetime | None  # last_ts of its newest window holding a valid reading
    last_window: WindowView | None  # its newest window in the recent period
    readings: int  # valid readings in the windows overlapping the recent period
    missing: int  # readings without a value in those windows
    deviations: tuple[Deviation, ...] = ()  # newest first; windows with >= 3 probes only

    @property
    def missing_pct(self) -> float | None:
        """Share of readings without a value in the recent windows, in percent."""
        total = self.readings + self.missing
        return 100.0 * self.missing / total if total else None

    @property
    def deviation_c(self) -> float | None:
        """The deviation in the newest window that could be compared, if any."""
        return self.deviations[0].deviation_c if self.deviations else None


@dataclass(frozen=True, slots=True)
class FleetView:
    """The whole registry at ``now``."""

    now: datetime
    window_s: int
    gateways: Sequence[GatewayView]
    stations: Sequence[StationView]
    probes: Sequence[ProbeView]

    def probes_of(self, gateway_id: str) -> list[ProbeView]:
        """The probes of one gateway."""
        return [p for p in self.probes if p.gateway_id == gateway_id]

    def stations_of(self, gateway_id: str) -> list[StationView]:
        """The stations of one gateway."""
        return [s for s in self.stations if s.gateway_id == gateway_id]


def fleet_view(session: Session, now: datetime, settings: FleetSettings) -> FleetView:
    """Build the registry from the stored records, as of ``now`` (aware)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (use datetime.now(UTC))")
    now = now.astimezone(UTC)
    since = now - timedelta(seconds=settings.window_s)
    horizon = now - timedelta(seconds=settings.forget_after_s)
    gateways = session.scalars(select(Gateway).order_by(Gateway.site, Gateway.id)).all()
    sites = {g.id: g.site for g in gateways}
    stations = _stations(session, since, horizon, sites)
    latest = _latest_health(session)
    failed = _failed_reads(session, since)
    views = []
    for gateway in gateways:
        health = latest.get(gateway.id)
        clock, source = gateway.clock, "state"
        if health is not None and health.boot >= gateway.boot:
            clock, source = health.clock, "health"  # reported every minute; the state at connect
        faults = sum(s.reader.errors for s in stations if s.gateway_id == gateway.id)
        scans = sum(s.reader.scans for s in stations if s.gateway_id == gateway.id)
        counter = failed.get(gateway.id)
        views.append(GatewayView(
            gateway=gateway, health=health, clock=clock, clock_source=source,
            silent_s=None if gateway.last_seen is None
            else (now - gateway.last_seen).total_seconds(),
            reader=ReaderRate(scans, max(faults, counter or 0)), reader_faults=faults,
            failed_reads=counter))
    probes = _probes(session, now, settings, sites)
    return FleetView(now, settings.window_s, views, stations, probes)


# --- gateways' health ----------------------------------------------------------------------


def _latest_health(session: Session) -> dict[str, Health]:
    """Each gateway's newest health report by its timestamp (ties: the higher message id)."""
    newest = (select(GatewayHealth.gateway_id, func.max(GatewayHealth.ts).label("ts"))
              .group_by(GatewayHealth.gateway_id).subquery())
    rows = session.execute(
        select(GatewayHealth.gateway_id, GatewayHealth.message_id, GatewayHealth.ts,
               GatewayHealth.clock, GatewayHealth.values)
        .join(newest, and_(GatewayHealth.gateway_id == newest.c.gateway_id,
                           GatewayHealth.ts == newest.c.ts)))
    found: dict[str, Health] = {}
    for gateway_id, message_id, ts, clock, values in rows:
        health = Health(message_id, ts, clock, values or {})
        current = found.get(gateway_id)
        if current is None or _order(health.message_id) > _order(current.message_id):
            found[gateway_id] = health
    return found


def _failed_reads(session: Session, since: datetime) -> dict[str, int]:
    """Per gateway, how much its cumulative ``reader_errors`` counter rose since ``since``.

    The counter counts from the gateway's start, so per boot: the last report's value minus the
    first's within the window, plus the first's own value when that boot started inside the
    window (its ``uptime_s`` says so). Gateways without reports in the window are absent.
    """
    rows = session.execute(
        select(GatewayHealth.gateway_id, GatewayHealth.message_id, GatewayHealth.ts,
               GatewayHealth.values).where(GatewayHealth.ts >= since))
    boots: dict[tuple[str, int], list[tuple[int, datetime, dict[str, Any]]]] = {}
    for gateway_id, message_id, ts, values in rows:
        if not isinstance(values, dict) or not isinstance(values.get("reader_errors"), int):
            continue
        parsed = MessageId.parse(message_id)
        boots.setdefault((gateway_id, parsed.boot), []).append((parsed.seq, ts, values))
    failed: dict[str, int] = {}
    for (gateway_id, _boot), reports in boots.items():
        reports.sort(key=lambda r: r[0])
        _, first_ts, first = reports[0]
        rise = max(0, reports[-1][2]["reader_errors"] - first["reader_errors"])
        uptime = first.get("uptime_s")
        if isinstance(uptime, int | float) and uptime <= (first_ts - since).total_seconds():
            rise += first["reader_errors"]
        failed[gateway_id] = failed.get(gateway_id, 0) + rise
    return failed


def _order(message_id: str) -> tuple[int, int]:
    parsed = MessageId.parse(message_id)
    return parsed.boot, parsed.seq


# --- stations ------------------------------------------------------------------------------


def _stations(session: Session, since: datetime, horizon: datetime,
              sites: Mapping[str, str]) -> list[StationView]:
    """Stations with a scan or a reader fault since ``horizon``; counts since ``since``."""
    recent_scans = func.sum(case((Scan.ts >= since, 1), else_=0))
    scans = {(gw, st): (last, int(n or 0)) for gw, st, last, n in session.execute(
        select(Scan.gateway_id, Scan.station, func.max(Scan.ts), recent_scans)
        .where(Scan.ts >= horizon).group_by(Scan.gateway_id, Scan.station))}
    recent_faults = func.sum(case((FaultRecord.ts >= since, 1), else_=0))
    faults = {(gw, st): int(n or 0) for gw, st, n in session.execute(
        select(FaultRecord.gateway_id, FaultRecord.station, recent_faults)
        .where(FaultRecord.ts >= horizon, FaultRecord.component == READER_COMPONENT)
        .group_by(FaultRecord.gateway_id, FaultRecord.station))}
    keys = sorted(set(scans) | set(faults), key=lambda k: (sites.get(k[0], ""), k[0], k[1]))
    return [StationView(gateway_id=gw, site=sites.get(gw, ""), station=st,
                        last_scan=scans.get((gw, st), (None, 0))[0],
                        reader=ReaderRate(scans.get((gw, st), (None, 0))[1],
                                          faults.get((gw, st), 0)))
            for gw, st in keys]


# --- probes --------------------------------------------------------------------------------


def probe_name(stored: str) -> tuple[str, str] | None:
    """The probe a stored telemetry id belongs to and its role, or None if it is no probe.

    ``"<probe>/mean"``, ``/min`` and ``/max`` are a probe's per-minute aggregates sent while
    the gateway's disk is low (edge.telemetry.per_minute); ``health/...`` are gateway metrics.
    """
    if stored.startswith(HEALTH_PROBE_PREFIX):
        return None
    base, _, role = stored.rpartition("/")
    if base and role in _DOWNSAMPLED:
        return base, role
    return stored, "raw"


@dataclass(slots=True)
class _Window:
    """One probe's merged window while it is being built."""

    readings: int = 0
    missing: int = 0
    sum_c: float = 0.0
    min_c: float | None = None
    max_c: float | None = None
    first_ts: float = float("inf")
    last_ts: float = float("-inf")

    def add(self, role: str, row: TelemetryWindow) -> None:
        if role in ("raw", "mean"):
            self.readings += row.readings
            self.missing += row.missing
            self.sum_c += row.sum_c
        if role != "max" and row.min_c is not None:
            self.min_c = row.min_c if self.min_c is None else min(self.min_c, row.min_c)
        if role != "min" and row.max_c is not None:
            self.max_c = row.max_c if self.max_c is None else max(self.max_c, row.max_c)
        self.first_ts = min(self.first_ts, row.first_ts)
        self.last_ts = max(self.last_ts, row.last_ts)

    @property
    def mean_c(self) -> float | None:
        return self.sum_c / self.readings if self.readings else None


@dataclass(slots=True)
class _Probe:
    last_reading: float | None = None
    windows: dict[int, _Window] = field(default_factory=dict)


def _probes(session: Session, now: datetime, settings: FleetSettings,
            sites: Mapping[str, str]) -> list[ProbeView]:
    """Probes of known gateways heard of since ``forget_after_s``, with recent windows."""
    if not sites:
        return []
    w = TelemetryWindow
    ids = sorted(sites)
    horizon = _window_floor(now.timestamp() - settings.forget_after_s)
    recent = _window_floor(now.timestamp() - settings.window_s)  # windows overlapping it
    probes: dict[tuple[str, str], _Probe] = {}
    valid_last = func.max(case((w.readings > 0, w.last_ts), else_=None))
    for source, stored, any_valid in session.execute(
            select(w.source, w.probe, valid_last)
            .where(w.source.in_(ids), w.window_start >= horizon).group_by(w.source, w.probe)):
        named = probe_name(stored)
        if named is None:
            continue
        probe = probes.setdefault((source, named[0]), _Probe())
        if any_valid is not None and (probe.last_reading is None
                                      or any_valid > probe.last_reading):
            probe.last_reading = float(any_valid)
    for row in session.scalars(select(w).where(w.source.in_(ids), w.window_start >= recent)):
        named = probe_name(row.probe)
        if named is None:
            continue
        probe = probes.setdefault((row.source, named[0]), _Probe())
        probe.windows.setdefault(row.window_start, _Window()).add(named[1], row)
    deviations = _deviations(probes)
    views = []
    for (source, name), probe in probes.items():
        newest = max(probe.windows, default=None)
        last_window = None
        if newest is not None:
            acc = probe.windows[newest]
            last_window = WindowView(source, name, float(newest), acc.readings, acc.missing,
                                     acc.min_c, acc.max_c, acc.mean_c, acc.first_ts,
                                     acc.last_ts)
        views.append(ProbeView(
            gateway_id=source, site=sites.get(source, ""), probe=name,
            last_reading=None if probe.last_reading is None
            else datetime.fromtimestamp(probe.last_reading, UTC),
            last_window=last_window,
            readings=sum(a.readings for a in probe.windows.values()),
            missing=sum(a.missing for a in probe.windows.values()),
            deviations=tuple(deviations.get((source, name), ()))))
    views.sort(key=lambda p: (p.site, p.gateway_id, p.probe))
    return views


def _deviations(probes: Mapping[tuple[str, str], _Probe]
                ) -> dict[tuple[str, str], list[Deviation]]:
    """Per probe, newest first: its window mean minus the median of its gateway's means.

    The median is taken over every probe of the gateway with data in that window, the probe
    itself included: with three probes and one far off, the median is one of the other two,
    whereas the median of "the others" would be their average and move half-way towards the
    odd one. Windows where fewer than :data:`MIN_DRIFT_PROBES` probes have data are skipped.
    """
    means: dict[tuple[str, int], dict[str, float]] = {}
    for (source, name), probe in probes.items():
        for start, acc in probe.windows.items():
            mean = acc.mean_c
            if mean is not None:
                means.setdefault((source, start), {})[name] = mean
    found: dict[tuple[str, str], list[Deviation]] = {}
    for (source, start), by_probe in sorted(means.items(), key=lambda kv: -kv[0][1]):
        if len(by_probe) < MIN_DRIFT_PROBES:
            continue
        median = statistics.median(by_probe.values())
        for name, mean in by_probe.items():
            found.setdefault((source, name), []).append(
                Deviation(float(start), mean - median, median, len(by_probe)))
    return found


def _window_floor(epoch: float) -> int:
    return int(epoch // WINDOW_S) * WINDOW_S
