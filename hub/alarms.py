"""Fleet alarms: raised, refreshed and cleared from the registry's numbers (docs/fleet.md).

:func:`evaluate_alarms` compares the registry (hub.fleet_view) as of ``now`` with the
thresholds of ``FleetSettings`` and brings ``fleet_alarms`` in line: a condition without an
open alarm raises one, a condition with one refreshes it (``last_seen_at``, message, severity),
and an open alarm whose condition no longer holds is cleared. It reads stored timestamps only,
so running it again, or after a restart, changes nothing that has not changed.

Silence cannot be judged right after the hub starts listening: a gateway may have spoken while
the hub was down. Until the hub has listened for ``silent_after_s``, silence of something last
heard before it started is *unknown*: existing alarms about it are kept as they are, and none
is raised.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.errors import InvalidInput, NotFound
from hub.fleet_view import FleetView, GatewayView, ProbeView, fleet_view
from hub.models import FleetAlarm
from hub.settings import FleetSettings

logger = logging.getLogger(__name__)

GATEWAY_SILENT = "gateway_silent"
GATEWAY_OFFLINE = "gateway_offline"
PROBE_SILENT = "probe_silent"
PROBE_DRIFT = "probe_drift"
DISK_LOW = "disk_low"
CLOCK_UNSYNCED = "clock_unsynced"
READER_ERRORS = "reader_errors"
REPORTED_PREFIX = "gateway_reported:"  # + the code the gateway's state lists
REPORTED_SEVERITY = {"disk_full": "error"}  # other reported codes are warnings
MAX_ACK_BY = 64

Key = tuple[str, str]  # (kind, subject)


class _Silence(Enum):
    QUIET = "quiet"  # heard from within the limit
    SILENT = "silent"
    UNKNOWN = "unknown"  # the hub has not listened long enough to tell


@dataclass(frozen=True, slots=True)
class Condition:
    """Something wrong right now: what an open alarm says."""

    kind: str
    subject: str  # gateway id, or "<gateway>/<probe>"
    gateway_id: str
    site: str
    severity: str
    message: str

    @property
    def key(self) -> Key:
        """The alarm's identity: one open alarm per (kind, subject)."""
        return self.kind, self.subject


@dataclass(frozen=True, slots=True)
class Verdict:
    """The conditions found, and the alarms whose condition cannot be judged now."""

    conditions: Sequence[Condition]
    held: frozenset[Key]


@dataclass
class AlarmChanges:
    """What one evaluation did to ``fleet_alarms``."""

    raised: list[FleetAlarm] = field(default_factory=list)
    refreshed: list[FleetAlarm] = field(default_factory=list)
    cleared: list[FleetAlarm] = field(default_factory=list)
    held: list[FleetAlarm] = field(default_factory=list)  # open, condition unknown: untouched

    @property
    def changed(self) -> bool:
        """Whether an alarm was raised or cleared."""
        return bool(self.raised or self.cleared)


def evaluate_alarms(session: Session, now: datetime, settings: FleetSettings, *,
                    listening_since: datetime | None = None) -> AlarmChanges:
    """Raise, refresh and clear fleet alarms as of ``now`` in the caller's transaction.

    ``listening_since`` is when this hub started receiving messages (None: long enough ago);
    see the module docstring.
    """
    view = fleet_view(session, now, settings)
    verdict = conditions(view, settings, listening_since=listening_since)
    stamp = view.now
    open_alarms = {(a.kind, a.subject): a for a in session.scalars(
        select(FleetAlarm).where(FleetAlarm.cleared_at.is_(None)))}
    changes = AlarmChanges()
    for condition in verdict.conditions:
        alarm = open_alarms.pop(condition.key, None)
        if alarm is None:
            alarm = FleetAlarm(kind=condition.kind, subject=condition.subject,
                               gateway_id=condition.gateway_id, site=condition.site,
                               severity=condition.severity, message=condition.message,
                               raised_at=stamp, last_seen_at=stamp)
            session.add(alarm)
            changes.raised.append(alarm)
        else:
            alarm.last_seen_at = stamp
            alarm.severity, alarm.message = condition.severity, condition.message
            alarm.site = condition.site
            changes.refreshed.append(alarm)
    for key, alarm in open_alarms.items():
        if key in verdict.held:
            changes.held.append(alarm)
        else:
            alarm.cleared_at = stamp
            changes.cleared.append(alarm)
    session.flush()
    return changes


def conditions(view: FleetView, settings: FleetSettings, *,
               listening_since: datetime | None = None) -> Verdict:
    """Every alarm condition that holds in ``view``, and the keys that cannot be judged."""
    found: dict[Key, Condition] = {}
    held: set[Key] = set()
    listened = None if listening_since is None else (
        view.now - listening_since.astimezone(UTC)).total_seconds()
    for gateway in view.gateways:
        g = gateway.gateway
        probes = view.probes_of(g.id)
        if not g.online:
            quiet = gateway.silent_s
            if quiet is None or quiet > settings.offline_after_s:
                _add(found, gateway, GATEWAY_OFFLINE, g.id, "error",
                     f"gateway {g.id} ({g.site}) is offline by its state (last will or "
                     f"shutdown) since {_when(g.last_seen)}, {_seconds(quiet)} ago "
                     f"(limit {_num(settings.offline_after_s)} s)")
            continue  # an offline gateway's other numbers are stale: only this alarm
        silence = _judge(gateway.silent_s, settings.silent_after_s, listened)
        if silence is _Silence.SILENT:
            _add(found, gateway, GATEWAY_SILENT, g.id, "error",
                 f"gateway {g.id} ({g.site}) is online by its state but has sent nothing for "
                 f"{_seconds(gateway.silent_s)} (limit {_num(settings.silent_after_s)} s); "
                 f"last seen {_when(g.last_seen)}")
        elif silence is _Silence.UNKNOWN:
            held.add((GATEWAY_SILENT, g.id))
        for code in g.alarms or ():
            _add(found, gateway, REPORTED_PREFIX + code, g.id,
                 REPORTED_SEVERITY.get(code, "warning"),
                 f"gateway {g.id} ({g.site}) reports alarm {code!r} in its state")
        _disk(found, gateway, view, settings)
        _clock(found, gateway)
        _reader(found, gateway, view, settings)
        if silence is _Silence.QUIET:
            _probes_silent(found, held, gateway, probes, view, settings, listened)
        else:  # the gateway itself is silent, or unknown: so are its probes
            held.update((PROBE_SILENT, _probe_subject(p)) for p in probes)
        _drift(found, gateway, probes, settings)
    return Verdict(list(found.values()), frozenset(held))


def _disk(found: dict[Key, Condition], gateway: GatewayView, view: FleetView,
          settings: FleetSettings) -> None:
    health = gateway.health
    if health is None or (view.now - health.ts).total_seconds() > view.window_s:
        return  # no recent report: nothing to judge by
    free, used = health.number("disk_free_mb"), health.number("disk_used_pct")
    low_free = free is not None and free < settings.disk_free_min_mb
    high_used = used is not None and used >= settings.disk_used_max_pct
    if low_free or high_used:
        g = gateway.gateway
        _add(found, gateway, DISK_LOW, g.id, "warning",
             f"gateway {g.id} ({g.site}) has {_num(free, ' MB')} free, {_num(used, ' %')} used "
             f"by its health report of {_when(health.ts)} (limits: "
             f"{_num(settings.disk_free_min_mb)} MB free, {_num(settings.disk_used_max_pct)} % "
             "used)")


def _clock(found: dict[Key, Condition], gateway: GatewayView) -> None:
    if gateway.clock == "synced":
        return
    g = gateway.gateway
    source = "latest health report" if gateway.clock_source == "health" else "state"
    severity = "info" if gateway.clock == "holdover" else "warning"
    _add(found, gateway, CLOCK_UNSYNCED, g.id, severity,
         f"gateway {g.id} ({g.site}) reports its clock {gateway.clock} (by its {source}): "
         "its event times may be off")


def _reader(found: dict[Key, Condition], gateway: GatewayView, view: FleetView,
            settings: FleetSettings) -> None:
    rate = gateway.reader
    pct = rate.error_pct
    if pct is None or rate.attempts < settings.reader_min_attempts or (
            pct <= settings.reader_error_pct):
        return
    g = gateway.gateway
    worst = max(view.stations_of(g.id), key=lambda s: (s.reader.error_pct or 0.0, s.station),
                default=None)
    detail = ""
    if worst is not None and worst.reader.errors:
        detail = (f"; worst station {worst.station}: {worst.reader.errors} reader faults in "
                  f"{worst.reader.attempts} reads ({worst.reader.error_pct:.1f} %)")
    _add(found, gateway, READER_ERRORS, g.id, "warning",
         f"gateway {g.id} ({g.site}): {rate.errors} reader errors in {rate.attempts} reads in "
         f"the last {_num(view.window_s)} s ({pct:.1f} %, limit "
         f"{_num(settings.reader_error_pct)} %){detail}")


def _probes_silent(found: dict[Key, Condition], held: set[Key], gateway: GatewayView,
                   probes: Sequence[ProbeView], view: FleetView, settings: FleetSettings,
                   listened: float | None) -> None:
    # Probe times are the gateway's clock: when it is not synced, a probe's silence is
    # measured against the newest reading of any probe of the gateway instead of the hub's now.
    newest = max((p.last_reading for p in probes if p.last_reading is not None), default=None)
    unsynced = gateway.clock == "unsynced"
    limit = settings.silent_after_s
    for probe in probes:
        subject = _probe_subject(probe)
        if probe.last_reading is None:
            _add(found, gateway, PROBE_SILENT, subject, "warning",
                 f"probe {probe.probe} on gateway {probe.gateway_id} sent no valid reading in "
                 f"the last {_num(settings.forget_after_s)} s")
            continue
        if unsynced:
            assert newest is not None
            quiet = (newest - probe.last_reading).total_seconds()
            silence = _Silence.SILENT if quiet > limit else _Silence.QUIET
            reference = "the gateway's newest reading"
        else:
            quiet = (view.now - probe.last_reading).total_seconds()
            silence = _judge(quiet, limit, listened)
            reference = "now"
        if silence is _Silence.UNKNOWN:
            held.add((PROBE_SILENT, subject))
        elif silence is _Silence.SILENT:
            _add(found, gateway, PROBE_SILENT, subject, "warning",
                 f"probe {probe.probe} on gateway {probe.gateway_id} sent no reading for "
                 f"{_seconds(quiet)} before {reference} (limit {_num(limit)} s); last reading "
                 f"{_when(probe.last_reading)}")


def _drift(found: dict[Key, Condition], gateway: GatewayView, probes: Sequence[ProbeView],
           settings: FleetSettings) -> None:
    n = settings.drift_windows
    for probe in probes:
        recent = probe.deviations[:n]
        if len(recent) < n or not all(abs(d.deviation_c) > settings.drift_c for d in recent):
            continue
        offs = ", ".join(f"{d.deviation_c:+.1f}" for d in recent)
        _add(found, gateway, PROBE_DRIFT, _probe_subject(probe), "warning",
             f"probe {probe.probe} on gateway {probe.gateway_id} is off the median of the "
             f"gateway's {recent[0].probes} probes by {offs} °C in its last {n} windows "
             f"(limit ±{_num(settings.drift_c)} °C); newest window mean "
             f"{recent[0].median_c + recent[0].deviation_c:.1f} °C vs median "
             f"{recent[0].median_c:.1f} °C")


def _judge(quiet_s: float | None, limit: float, listened: float | None) -> _Silence:
    if quiet_s is not None and quiet_s <= limit:
        return _Silence.QUIET
    if listened is not None and listened <= limit:
        return _Silence.UNKNOWN  # last heard before the hub was listening, not long ago
    return _Silence.SILENT


def _add(found: dict[Key, Condition], gateway: GatewayView, kind: str, subject: str,
         severity: str, message: str) -> None:
    g = gateway.gateway
    found[(kind, subject)] = Condition(kind, subject, g.id, g.site, severity, message)


def _probe_subject(probe: ProbeView) -> str:
    return f"{probe.gateway_id}/{probe.probe}"


def _when(moment: datetime | None) -> str:
    return "never" if moment is None else moment.astimezone(UTC).strftime(
        "%Y-%m-%d %H:%M:%S UTC")


def _seconds(seconds: float | None) -> str:
    # Rounded up: 180.4 s of silence over a limit of 180 s must not read "180 s".
    return "an unknown time" if seconds is None else f"{math.ceil(seconds)} s"


def _num(value: float | None, unit: str = "") -> str:
    if value is None:
        return "unknown"
    return f"{value:g}{unit}"


# --- reading and acknowledging --------------------------------------------------------------


def list_alarms(session: Session, *, open_only: bool | None = None, limit: int = 50,
                gateway_id: str | None = None) -> Sequence[FleetAlarm]:
    """Alarms newest first: open ones (``open_only=True``), cleared ones (False) or both."""
    query = select(FleetAlarm)
    if open_only is True:
        query = query.where(FleetAlarm.cleared_at.is_(None))
    elif open_only is False:
        query = query.where(FleetAlarm.cleared_at.is_not(None))
    if gateway_id is not None:
        query = query.where(FleetAlarm.gateway_id == gateway_id)
    return session.scalars(query.order_by(FleetAlarm.raised_at.desc(), FleetAlarm.id.desc())
                           .limit(max(1, int(limit)))).all()


def open_counts(session: Session) -> dict[str, int]:
    """The number of open alarms per gateway id."""
    rows = session.execute(select(FleetAlarm.gateway_id, func.count())
                           .where(FleetAlarm.cleared_at.is_(None))
                           .group_by(FleetAlarm.gateway_id))
    return {gateway_id: count for gateway_id, count in rows}


def acknowledge(session: Session, alarm_id: int, by: str, now: datetime) -> FleetAlarm:
    """Record that ``by`` has seen the alarm; open or cleared. Acknowledging twice keeps the first.

    Raises NotFound for an unknown id and InvalidInput for an empty or too long ``by``.
    """
    name = by.strip()
    if not name or len(name) > MAX_ACK_BY:
        raise InvalidInput(f"'by' must name who acknowledges, 1-{MAX_ACK_BY} characters")
    alarm = session.get(FleetAlarm, alarm_id)
    if alarm is None:
        raise NotFound(f"fleet alarm {alarm_id} does not exist")
    if alarm.acknowledged_at is None:
        alarm.acknowledged_by, alarm.acknowledged_at = name, now.astimezone(UTC)
        session.flush()
        logger.info("fleet alarm %d (%s %s) acknowledged by %s", alarm.id, alarm.kind,
                    alarm.subject, name)
    return alarm


def describe(alarms: Iterable[FleetAlarm]) -> list[str]:
    """One line per alarm for logs: kind, subject and message."""
    return [f"{a.kind} {a.subject}: {a.message}" for a in alarms]
