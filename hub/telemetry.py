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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, Protocol, cast

from sqlalchemy import Table, func, insert, select
from sqlalchemy.orm import Session

from hub.errors import InvalidInput
from hub.models import TelemetryBatchRecord, TelemetryWindow

WINDOW_S = 300  # seconds per aggregate window, aligned to the epoch
MAX_RANGE_READINGS = 200_000  # raw readings one query may return
_COMPRESSION = 1  # zlib level: ~5x smaller for ~0.1 ms per 500-reading batch

Reading = tuple[str, float, float | None]  # probe id, epoch seconds, °C (None: missing)


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


def aggregate(batches: Sequence[NewBatch]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The batch rows and the window rows of ``batches``, from one pass over the readings."""
    # key -> [readings, missing, sum, min, max, first_ts, last_ts, site]
    acc: dict[tuple[str, str, int], list[Any]] = {}
    rows = []
    for batch in batches:
        first, last, missing_in_batch = math.inf, -math.inf, 0
        for probe, start, part in _probe_windows(batch.readings):
            part.append(batch.site)
            first, last = min(first, part[5]), max(last, part[6])
            missing_in_batch += part[1]
            key = (batch.source, probe, start)
            a = acc.get(key)
            if a is None:
                acc[key] = part
            else:
                _fold(a, part)
        rows.append({
            "batch_id": batch.batch_id, "source": batch.source, "site": batch.site,
            "ts_first": first, "ts_last": last, "readings": len(batch.readings),
            "missing": missing_in_batch, "historical": batch.historical,
            "received_at": batch.received_at.astimezone(UTC),
            "data": zlib.compress(batch.document, _COMPRESSION)})
    windows = [{"source": source, "probe": probe, "window_start": start, "site": a[7],
                "readings": a[0], "missing": a[1], "sum_c": a[2], "min_c": a[3], "max_c": a[4],
                "first_ts": a[5], "last_ts": a[6]}
               for (source, probe, start), a in sorted(acc.items())]
    return rows, windows


def _probe_windows(readings: Sequence[Reading]) -> Iterator[tuple[str, int, list[Any]]]:
    """Aggregate readings per probe and window: (probe, window start, aggregate).

    The aggregate is ``[readings, missing, sum, min, max, first_ts, last_ts]`` (min/max None
    when every reading is missing). Built for speed on the ingest path: readings are grouped
    per probe in one dict pass (no sort: the caller orders the windows), a probe's readings
    are split into columns and summed in C, and as a probe's readings usually fall in one
    window, only one straddling a window boundary is walked reading by reading.
    """
    per_probe: dict[str, list[Reading]] = {}
    for reading in readings:
        try:
            per_probe[reading[0]].append(reading)
        except KeyError:
            per_probe[reading[0]] = [reading]
    for probe, group in per_probe.items():
        _, times, temps = zip(*group, strict=True)
        first, last = min(times), max(times)
        start = int(first // WINDOW_S) * WINDOW_S
        if int(last // WINDOW_S) * WINDOW_S == start:
            yield probe, start, _window(times, temps, first, last)
            continue
        split: dict[int, tuple[list[float], list[float | None]]] = {}
        for ts, temp in zip(times, temps, strict=True):
            part = split.setdefault(int(ts // WINDOW_S) * WINDOW_S, ([], []))
            part[0].append(ts)
            part[1].append(temp)
        for part_start, (part_times, part_temps) in split.items():
            yield probe, part_start, _window(part_times, part_temps,
                                             min(part_times), max(part_times))


def _window(times: Sequence[float], temps: Sequence[float | None], first: float,
            last: float) -> list[Any]:
    missing = temps.count(None)
    known = [t for t in temps if t is not None] if missing else cast(Sequence[float], temps)
    return [len(known), missing, float(sum(known)), min(known, default=None),
            max(known, default=None), first, last]


def _fold(a: list[Any], b: list[Any]) -> None:
    """Fold window aggregate ``b`` into ``a`` (both as built by :func:`window_rows`)."""
    a[0] += b[0]
    a[1] += b[1]
    a[2] += b[2]
    if b[3] is not None and (a[3] is None or b[3] < a[3]):
        a[3] = b[3]
    if b[4] is not None and (a[4] is None or b[4] > a[4]):
        a[4] = b[4]
    a[5] = min(a[5], b[5])
    a[6] = max(a[6], b[6])


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
