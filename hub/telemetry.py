"""Cold-chain telemetry in the hub database: batches kept whole, probe windows aggregated.

A gateway's telemetry batch (hundreds of readings) is stored as one row holding the message as
received, compressed, plus per-probe aggregates over fixed windows (:data:`WINDOW_S`). Range
queries read raw readings back out of the batches that overlap the range, or the windows for a
coarse view; neither needs one row per reading. Trucks' uploaded logs are stored the same way.
See docs/telemetry.md.
"""

from __future__ import annotations

import json
import math
import zlib
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from operator import itemgetter
from typing import Any, Protocol, cast

from sqlalchemy import Table, func, insert, select
from sqlalchemy.orm import Session

from hub.errors import InvalidInput
from hub.models import TelemetryBatchRecord, TelemetryWindow

WINDOW_S = 300  # seconds per aggregate window, aligned to the epoch
MAX_RANGE_READINGS = 200_000  # raw readings one query may return
MAX_WINDOWS = 500  # (probe, window) pairs one telemetry batch may cover
_COMPRESSION = 1  # zlib level: ~5x smaller for ~0.1 ms per 500-reading batch

Reading = tuple[str, float, float | None]  # probe id, epoch seconds, °C (None: missing)
_TIME = itemgetter(1)


class TelemetrySink(Protocol):
    """Somewhere else telemetry goes after the hub committed it (InfluxDB: hub.influx)."""

    def submit(self, site: str, gateway: str, readings: Sequence[Reading]) -> None:
        """Take a stored batch's readings; must not block the ingest thread."""


@dataclass(frozen=True, slots=True)
class NewBatch:
    """A telemetry batch about to be stored: where it came from and its readings."""

    batch_id: str
    source: str  # gateway id, or "truck:<id>"
    site: str
    readings: Sequence[Reading]
    document: bytes  # the JSON document kept (a gateway's message exactly as received)
    received_at: datetime
    historical: bool = False


@dataclass(frozen=True, slots=True)
class ProbeReading:
    """One reading read back out of the store."""

    ts: float
    temp_c: float | None
    source: str
    batch_id: str


@dataclass(frozen=True, slots=True)
class WindowView:
    """One probe's aggregate over one window."""

    source: str
    probe: str
    start: float  # epoch seconds
    readings: int
    missing: int
    min_c: float | None
    max_c: float | None
    mean_c: float | None
    first_ts: float
    last_ts: float


def batch_rows(batches: Sequence[NewBatch]) -> list[dict[str, Any]]:
    """The ``telemetry_batches`` rows of ``batches``."""
    return aggregate(batches)[0]


def window_rows(batches: Sequence[NewBatch]) -> list[dict[str, Any]]:
    """Aggregate ``batches`` per (source, probe, window), sorted by key.

    The sort keeps the row-lock order identical in every transaction, so two ingest workers
    upserting overlapping windows on PostgreSQL wait for each other instead of deadlocking.
    """
    return aggregate(batches)[1]


def too_spread(readings: Sequence[Reading]) -> str | None:
    """Why a batch's readings are refused, or None: they may fall in at most ``MAX_WINDOWS``
    (probe, window) pairs. A gateway commits a batch at least hourly (13 windows per probe);
    10,000 readings each in a window of its own cost the hub about 14 MB to aggregate."""
    times = [r[1] for r in readings]
    probes = len({r[0] for r in readings})
    if probes * ((max(times) - min(times)) // WINDOW_S + 2) <= MAX_WINDOWS:  # a bound, cheap
        return None
    windows = len({(r[0], int(r[1] // WINDOW_S)) for r in readings})
    if windows <= MAX_WINDOWS:
        return None
    return (f"readings fall in {windows} (probe, {WINDOW_S} s window) pairs, more than the "
            f"{MAX_WINDOWS} one batch may cover; send them in batches of shorter spans")


def aggregate(batches: Sequence[NewBatch]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The batch rows and the window rows of ``batches``.

    Built for speed on the ingest path, where a transaction holds tens of batches from a few
    gateways: a batch's own figures come from two column lists, its readings are grouped per
    (gateway, probe) across every batch in one dict pass, and each group is then sorted by time
    and cut at window boundaries by bisection, with sums and extremes taken in C. Window rows
    come sorted by (source, probe, window start), the lock order :func:`window_rows` promises.
    """
    rows = []
    groups: dict[str, dict[str, list[Reading]]] = {}  # source -> probe -> readings
    sites: dict[str, str] = {}
    for batch in batches:
        readings = batch.readings
        if not readings:  # protocols and the truck upload refuse these before they get here
            raise ValueError(f"telemetry batch {batch.batch_id!r} has no readings")
        times = [r[1] for r in readings]
        rows.append({
            "batch_id": batch.batch_id, "source": batch.source, "site": batch.site,
            "ts_first": min(times), "ts_last": max(times), "readings": len(readings),
            "missing": [r[2] for r in readings].count(None), "historical": batch.historical,
            "received_at": batch.received_at.astimezone(UTC),
            "data": zlib.compress(batch.document, _COMPRESSION)})
        sites.setdefault(batch.source, batch.site)
        per_probe = groups.setdefault(batch.source, {})
        for reading in readings:
            try:
                per_probe[reading[0]].append(reading)
            except KeyError:
                per_probe[reading[0]] = [reading]
    windows = []
    for source in sorted(groups):
        per_probe = groups[source]
        for probe in sorted(per_probe):
            for start, window in _windows(per_probe[probe]):
                windows.append({"source": source, "probe": probe, "window_start": start,
                                "site": sites[source], **window})
    return rows, windows


def _windows(readings: list[Reading]) -> Iterator[tuple[int, dict[str, Any]]]:
    """One probe's readings aggregated per window, in window order (sorts ``readings``)."""
    readings.sort(key=_TIME)  # near-linear: a gateway sends a probe's readings in time order
    _, times, temps = zip(*readings, strict=True)
    count, lo = len(times), 0
    while lo < count:
        start = int(times[lo] // WINDOW_S) * WINDOW_S
        hi = count if times[-1] < start + WINDOW_S else bisect_left(times, start + WINDOW_S, lo)
        part = temps[lo:hi] if lo or hi < count else temps
        missing = part.count(None)
        known = [t for t in part if t is not None] if missing else part
        yield start, {"readings": len(known), "missing": missing, "sum_c": float(sum(known)),
                      "min_c": min(known, default=None), "max_c": max(known, default=None),
                      "first_ts": times[lo], "last_ts": times[hi - 1]}
        lo = hi


@dataclass(frozen=True, slots=True)
class PreparedBatches:
    """Batches turned into rows, ready to write: see :func:`prepare` and :func:`write`."""

    batch_rows: list[dict[str, Any]]
    window_rows: list[dict[str, Any]]
    readings: int


def prepare(batches: Sequence[NewBatch]) -> PreparedBatches:
    """Do the CPU work of storing ``batches`` (aggregates, compression) before any write.

    Ingest prepares first and writes last, so its transaction holds the database's write lock
    (SQLite) or row locks (PostgreSQL) only for the statements themselves.
    """
    rows, windows = aggregate(batches)
    return PreparedBatches(rows, windows, sum(len(b.readings) for b in batches))


def write(session: Session, prepared: PreparedBatches) -> int:
    """Insert prepared batches and fold their windows in; return readings stored."""
    if prepared.batch_rows:
        session.execute(insert(cast(Table, TelemetryBatchRecord.__table__)),
                        prepared.batch_rows)
    if prepared.window_rows:
        session.execute(_window_upsert(session.get_bind().dialect.name), prepared.window_rows)
    return prepared.readings


def store_batches(session: Session, batches: Sequence[NewBatch]) -> int:
    """Insert batches and fold their readings into the windows; return readings stored.

    The caller has made sure each batch id is new (ingest is idempotent on message ids).
    """
    if not batches:
        return 0
    return write(session, prepare(batches))


@cache
def _window_upsert(dialect: str) -> Any:
    """One statement adding rows to existing windows (readings summed, extremes widened).

    Built once per dialect: constructing it took a fifth of the upsert's time on ingest.
    """
    table = cast(Table, TelemetryWindow.__table__)
    least: Callable[[Any, Any], Any]
    greatest: Callable[[Any, Any], Any]
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert

        least, greatest = func.least, func.greatest  # both skip NULLs
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert  # type: ignore[assignment]

        least, greatest = _sqlite_least, _sqlite_greatest
    else:
        raise NotImplementedError(f"telemetry windows need PostgreSQL or SQLite, not {dialect}")
    statement = dialect_insert(table)
    new, old = statement.excluded, table.c
    return statement.on_conflict_do_update(
        index_elements=[old.source, old.probe, old.window_start],
        set_={"readings": old.readings + new.readings, "missing": old.missing + new.missing,
              "sum_c": old.sum_c + new.sum_c,
              "min_c": least(old.min_c, new.min_c), "max_c": greatest(old.max_c, new.max_c),
              "first_ts": least(old.first_ts, new.first_ts),
              "last_ts": greatest(old.last_ts, new.last_ts)})


def _sqlite_least(a: Any, b: Any) -> Any:
    # SQLite's two-argument min() is NULL if either is; coalesce keeps the known one.
    return func.min(func.coalesce(a, b), func.coalesce(b, a))


def _sqlite_greatest(a: Any, b: Any) -> Any:
    return func.max(func.coalesce(a, b), func.coalesce(b, a))


# --- reading back -------------------------------------------------------------------------


def decode_document(data: bytes) -> list[Reading]:
    """The readings of a stored batch document."""
    document = json.loads(zlib.decompress(data))
    return [(str(p), float(ts), None if t is None else float(t))
            for p, ts, t in document["readings"]]


def iter_batches(session: Session, *, since: float | None = None, until: float | None = None,
                 sources: Sequence[str] | None = None, chunk: int = 200
                 ) -> Iterator[tuple[TelemetryBatchRecord, list[Reading]]]:
    """Stored batches overlapping [since, until] (epoch seconds), oldest first, decoded."""
    query = select(TelemetryBatchRecord).order_by(TelemetryBatchRecord.ts_first,
                                                  TelemetryBatchRecord.batch_id)
    if since is not None:
        query = query.where(TelemetryBatchRecord.ts_last >= since)
    if until is not None:
        query = query.where(TelemetryBatchRecord.ts_first <= until)
    if sources is not None:
        query = query.where(TelemetryBatchRecord.source.in_(list(sources)))
    for record in session.scalars(query.execution_options(yield_per=chunk)):
        yield record, decode_document(record.data)


def probe_sources(session: Session, probe: str, since: float, until: float) -> list[str]:
    """The gateways/trucks that reported ``probe`` within [since, until]."""
    start = int(since // WINDOW_S) * WINDOW_S
    return list(session.scalars(
        select(TelemetryWindow.source).distinct()
        .where(TelemetryWindow.probe == probe, TelemetryWindow.window_start >= start,
               TelemetryWindow.window_start <= until)))


def probe_readings(session: Session, probe: str, since: datetime, until: datetime, *,
                   source: str | None = None, limit: int = MAX_RANGE_READINGS
                   ) -> list[ProbeReading]:
    """Raw readings of ``probe`` in [since, until], oldest first; refuse a range too large."""
    lo, hi = _range(since, until)
    sources = [source] if source else probe_sources(session, probe, lo, hi)
    if not sources:
        return []
    found: list[ProbeReading] = []
    for record, readings in iter_batches(session, since=lo, until=hi, sources=sources):
        for name, ts, temp in readings:
            if name == probe and lo <= ts <= hi:
                found.append(ProbeReading(ts, temp, record.source, record.batch_id))
        if len(found) > limit:
            raise InvalidInput(f"more than {limit} readings of probe {probe!r} in that range; "
                               "ask for a shorter range or for windows")
    found.sort(key=lambda r: (r.ts, r.batch_id))
    return found


def probe_windows(session: Session, probe: str, since: datetime, until: datetime, *,
                  source: str | None = None) -> list[WindowView]:
    """The windows of ``probe`` that start within [since, until], oldest first."""
    lo, hi = _range(since, until)
    query = (select(TelemetryWindow)
             .where(TelemetryWindow.probe == probe,
                    TelemetryWindow.window_start >= int(lo // WINDOW_S) * WINDOW_S,
                    TelemetryWindow.window_start <= hi)
             .order_by(TelemetryWindow.window_start, TelemetryWindow.source))
    if source:
        query = query.where(TelemetryWindow.source == source)
    return [WindowView(w.source, w.probe, float(w.window_start), w.readings, w.missing,
                       w.min_c, w.max_c, w.sum_c / w.readings if w.readings else None,
                       w.first_ts, w.last_ts)
            for w in session.scalars(query)]


def _range(since: datetime, until: datetime) -> tuple[float, float]:
    if since.tzinfo is None or until.tzinfo is None:
        raise InvalidInput("since and until need a time zone (e.g. 2026-11-20T08:00:00Z)")
    lo, hi = since.timestamp(), until.timestamp()
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi < lo:
        raise InvalidInput("until must not be before since")
    return lo, hi
