"""The hub's optional InfluxDB copy of telemetry: a bounded queue and one writer thread.

The hub database is the system of record; InfluxDB holds a derived copy for dashboards. The
ingest thread calls :meth:`InfluxSink.submit` after each commit: it only appends to a bounded
queue (no network I/O) and, when the queue is full, drops the readings and counts them, since
:meth:`InfluxSink.backfill` can re-send them from the database later.

One thread converts queued readings to line protocol and writes them with influxdb-client's
synchronous ``WriteApi`` (its batching mode keeps its own buffer and thread, which would make
``flush`` and the counters guesswork). Writes carry up to ``batch_size`` points; connection
errors, 429 and 5xx are retried with exponential backoff, other 4xx are given up at once and
logged once per status code, not once per point.

Point schema: measurement ``probe_temperature`` (by default), tags ``site``, ``gateway``,
``probe``, field ``temp_c`` (float), timestamp in milliseconds (``WritePrecision.MS``) from the
gateway's epoch seconds. A missing reading (None) has no point: it is counted as ``skipped``.
"""

from __future__ import annotations

import http.client
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from types import TracebackType
from typing import Any

import urllib3.exceptions
from influxdb_client.client.exceptions import InfluxDBError
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write.point import Point
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision

from hub.errors import HubError
from hub.settings import InfluxSettings

logger = logging.getLogger(__name__)

PRECISION = WritePrecision.MS
FIELD = "temp_c"
Reading = tuple[str, float, float | None]  # probe id, epoch seconds, °C (None: missing)
TelemetryRows = tuple[str, str, Sequence[Reading]]  # site, gateway, readings
_MAX_MESSAGE = 300  # characters of a server's error message quoted in the log


class InfluxWriteError(HubError):
    """A backfill write was refused or kept failing; ``written`` readings got through first."""

    def __init__(self, message: str, written: int) -> None:
        super().__init__(message)
        self.written = written


@dataclass(frozen=True)
class SinkCounters:
    """What the sink did with submitted readings, since it started (backfill not included).

    ``submitted == written + failed + dropped + skipped + pending`` at every snapshot; all
    but ``writes`` count readings.
    """

    submitted: int = 0  # readings handed to submit()
    written: int = 0  # accepted by InfluxDB
    retried: int = 0  # readings sent again after a failed attempt (each re-send counts)
    failed: int = 0  # given up on: refused, retries exhausted, invalid, or abandoned at close
    dropped: int = 0  # never queued: the queue was full (or the sink closed)
    skipped: int = 0  # missing readings (None): no point to write
    pending: int = 0  # queued or being written
    writes: int = 0  # HTTP writes InfluxDB accepted (written / writes: points per write)


@dataclass(frozen=True)
class _Item:
    seq: int
    site: str
    gateway: str
    readings: tuple[Reading, ...]


@dataclass(frozen=True)
class _Failure:
    """Why a write did not get through."""

    retryable: bool
    status: int | None  # HTTP status; None: no answer
    text: str
    retry_after_s: float | None = None


@dataclass
class _Converted:
    lines: list[str]
    skipped: int = 0
    invalid: int = 0
    problem: str | None = None  # what was wrong with the first invalid reading


class InfluxSink:
    """Copy telemetry readings to InfluxDB in the background; never block the caller."""

    def __init__(self, settings: InfluxSettings, *,
                 measurement: str = "probe_temperature") -> None:
        self._settings = settings
        self._measurement = measurement
        # An empty token sends no Authorization header.
        self._client = InfluxDBClient(url=settings.url, token=settings.token,
                                      org=settings.org, timeout=settings.timeout_ms)
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
        self._cond = threading.Condition()
        self._queue: deque[_Item] = deque()
        self._queued = 0  # readings in _queue (pending also counts those being written)
        self._counts = dict.fromkeys((f.name for f in fields(SinkCounters)), 0)
        self._last_seq = 0  # of the last accepted item
        self._done_seq = 0  # every item up to this one is resolved
        self._flush_waiters = 0
        self._unresolved = 0  # readings taken by the writer and not yet resolved
        self._closing = False
        self._stop = threading.Event()  # close() ran out of time: abandon what is left
        self._overflowing = False
        self._episode_dropped = 0
        self._warned_closed = False
        # Log state, touched by the writer thread only.
        self._outage: str | None = None
        self._outage_lost = 0
        self._refused_status: int | None = None
        self._last_problem: str | None = None
        self._thread = threading.Thread(target=self._run, name="coldloop-influx", daemon=True)
        self._thread.start()

    def __enter__(self) -> InfluxSink:
        return self

    def __exit__(self, _type: type[BaseException] | None, _value: BaseException | None,
                 _tb: TracebackType | None) -> None:
        self.close()

    @property
    def counters(self) -> SinkCounters:
        """A snapshot of the sink's counters."""
        with self._cond:
            return SinkCounters(**self._counts)

    def submit(self, site: str, gateway: str, readings: Sequence[Reading]) -> None:
        """Queue one stored telemetry batch for writing; never blocks, never does I/O.

        When the queue (``queue_limit`` readings) cannot take the whole batch, the batch is
        dropped and counted; a warning is logged once per overflow episode.
        """
        batch = tuple(readings)
        count = len(batch)
        warn_full = warn_closed = False
        with self._cond:
            self._counts["submitted"] += count
            if self._closing:
                self._counts["dropped"] += count
                warn_closed, self._warned_closed = not self._warned_closed, True
            elif self._counts["pending"] + count > self._settings.queue_limit:
                self._counts["dropped"] += count
                self._episode_dropped += count
                warn_full, self._overflowing = not self._overflowing, True
            else:
                self._last_seq += 1
                self._queue.append(_Item(self._last_seq, site, gateway, batch))
                self._queued += count
                self._counts["pending"] += count
                self._cond.notify_all()
        if warn_full:
            logger.warning("InfluxDB sink queue is full (%d readings): dropping telemetry for "
                           "InfluxDB until it drains; the hub database keeps it and a backfill "
                           "can re-send it", self._settings.queue_limit)
        if warn_closed:
            logger.warning("InfluxDB sink used after close(): readings dropped (close the sink "
                           "after stopping ingest)")

    def flush(self, timeout: float) -> bool:
        """Wait until everything submitted so far was written or given up on.

        Return True if it all got there within ``timeout`` and the sink never failed or dropped
        a reading since it started (a False means InfluxDB lacks some telemetry: backfill).
        """
        with self._cond:
            target = self._last_seq
            self._flush_waiters += 1
            self._cond.notify_all()
            try:
                done = self._cond.wait_for(lambda: self._done_seq >= target, timeout)
            finally:
                self._flush_waiters -= 1
            return done and self._counts["failed"] == 0 and self._counts["dropped"] == 0

    def close(self, timeout: float = 10.0) -> None:
        """Refuse new readings, write what is queued for up to ``timeout`` s, then stop.

        Readings still unwritten then are counted as failed and logged as one warning.
        """
        with self._cond:
            if self._closing:
                return
            self._closing = True
            failed_before = self._counts["failed"]
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        self.flush(timeout)
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(max(deadline - time.monotonic(), 0.5))
        with self._cond:
            lost = self._counts["failed"] - failed_before + self._counts["pending"]
        if lost:
            logger.warning("InfluxDB sink closed with %d readings not written; the hub database "
                           "keeps them and a backfill can re-send them", lost)
        if self._thread.is_alive():
            logger.warning("InfluxDB writer is still waiting for %s after close(); leaving it",
                           self._settings.url)
            return
        self._client.close()  # type: ignore[no-untyped-call]

    def backfill(self, batches: Iterable[TelemetryRows]) -> int:
        """Write telemetry synchronously in the caller's thread; return the readings written.

        Missing readings are skipped; invalid ones are logged and skipped. Retries like the
        background writer, then raises :class:`InfluxWriteError` (with ``written``) if a write
        is refused or keeps failing. Does not touch :attr:`counters`.
        """
        size = self._settings.batch_size
        written = 0
        lines: list[str] = []
        for site, gateway, readings in batches:
            converted = self._convert(site, gateway, readings)
            if converted.invalid:
                logger.warning("backfill skips %d invalid readings of %s/%s: %s",
                               converted.invalid, site, gateway, converted.problem)
            lines.extend(converted.lines)
            while len(lines) >= size:
                written += self._backfill_write(lines[:size], written)
                del lines[:size]
        if lines:
            written += self._backfill_write(lines, written)
        return written

    # --- the writer thread -------------------------------------------------------------------

    def _run(self) -> None:
        finished = False
        try:
            while (items := self._take()) is not None:
                try:
                    self._write_items(items)
                except Exception:
                    logger.exception("InfluxDB sink failed on %d queued batches; they are given "
                                     "up (a backfill can re-send them)", len(items))
                    self._resolve(items[-1].seq, failed=self._unresolved)
            finished = True
        finally:
            if not finished:  # the error itself goes to threading.excepthook
                logger.critical("InfluxDB sink thread died: telemetry is no longer copied")

    def _take(self) -> list[_Item] | None:
        """Wait for queued readings and take up to ``batch_size`` of them; None: stop."""
        settings = self._settings
        with self._cond:
            self._cond.wait_for(lambda: bool(self._queue) or self._stop.is_set())
            deadline = time.monotonic() + settings.flush_interval_ms / 1000
            while (self._queued < settings.batch_size and not self._flush_waiters
                   and not self._closing and not self._stop.is_set()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            if self._stop.is_set():
                if self._queue:
                    self._counts["failed"] += self._queued
                    self._counts["pending"] -= self._queued
                    self._queue.clear()
                    self._queued = 0
                    self._done_seq = self._last_seq
                    self._cond.notify_all()
                return None
            items = [self._queue.popleft()]
            taken = len(items[0].readings)
            while self._queue and taken + len(self._queue[0].readings) <= settings.batch_size:
                taken += len(self._queue[0].readings)
                items.append(self._queue.popleft())
            self._queued -= taken
            self._unresolved = taken
            return items

    def _write_items(self, items: Sequence[_Item]) -> None:
        """Convert taken items to points and write them in writes of ``batch_size``."""
        lines: list[str] = []
        skipped = invalid = 0
        for item in items:
            converted = self._convert(item.site, item.gateway, item.readings)
            lines.extend(converted.lines)
            skipped += converted.skipped
            invalid += converted.invalid
            if converted.problem and converted.problem != self._last_problem:
                logger.error("InfluxDB sink gives up on %d invalid readings of %s/%s: %s",
                             converted.invalid, item.site, item.gateway, converted.problem)
            self._last_problem = converted.problem or self._last_problem
        self._resolve(None, skipped=skipped, failed=invalid)
        size = self._settings.batch_size
        for start in range(0, len(lines), size):
            chunk = lines[start:start + size]
            if self._send_background(chunk):
                self._resolve(None, written=len(chunk), writes=1)
            else:
                self._resolve(None, failed=len(chunk))
        self._resolve(items[-1].seq)

    def _resolve(self, seq: int | None, *, written: int = 0, failed: int = 0,
                 skipped: int = 0, writes: int = 0) -> None:
        """Count readings as resolved; with ``seq``, every item up to it is done."""
        room_again = 0
        with self._cond:
            resolved = written + failed + skipped
            self._unresolved -= resolved
            self._counts["written"] += written
            self._counts["writes"] += writes
            self._counts["failed"] += failed
            self._counts["skipped"] += skipped
            self._counts["pending"] -= resolved
            if self._overflowing and self._counts["pending"] <= self._settings.queue_limit // 2:
                self._overflowing = False
                room_again, self._episode_dropped = self._episode_dropped, 0
            self._cond.notify_all()
        if room_again:  # logged before flush() can return
            logger.info("InfluxDB sink queue has room again; %d readings were dropped while it "
                        "was full (a backfill can re-send them)", room_again)
        if seq is not None:
            with self._cond:
                self._done_seq = seq
                self._cond.notify_all()

    def _send_background(self, lines: list[str]) -> bool:
        """Write with retries, logging outages and refusals once; True if written."""

        def retrying(failure: _Failure) -> None:
            with self._cond:
                self._counts["retried"] += len(lines)
            if self._outage is None:
                self._outage = failure.text
                logger.warning("cannot write to InfluxDB at %s (%s); retrying with backoff, up "
                               "to %d times per write", self._settings.url, failure.text,
                               self._settings.max_retries)

        failure, attempts = self._send(lines, retrying)
        if failure is None:
            self._recovered()
            return True
        if not failure.retryable:
            if failure.status != self._refused_status:
                logger.error("%s (logged once until the status changes)",
                             self._refusal_message(failure, len(lines)))
            self._refused_status = failure.status
        else:
            if not self._outage_lost:
                logger.error("gave up writing %d readings to InfluxDB at %s after %d attempts "
                             "(%s); the hub database keeps them and a backfill can re-send them",
                             len(lines), self._settings.url, attempts, failure.text)
            self._outage = self._outage or failure.text
            self._outage_lost += len(lines)
        return False

    def _recovered(self) -> None:
        if self._outage is not None:
            logger.info("InfluxDB at %s takes writes again; %d readings were given up while it "
                        "failed (a backfill can re-send them)", self._settings.url,
                        self._outage_lost)
        elif self._refused_status is not None:
            logger.info("InfluxDB at %s accepts writes again", self._settings.url)
        self._outage, self._outage_lost, self._refused_status = None, 0, None

    # --- shared by both paths ---------------------------------------------------------------

    def _send(self, lines: list[str], retrying: Callable[[_Failure], None] | None = None
              ) -> tuple[_Failure | None, int]:
        """POST ``lines`` with retries on connection errors, 429 and 5xx.

        Return (None, attempts) once written, else the last failure and the attempts made.
        ``retrying(failure)`` is called before each re-send.
        """
        settings = self._settings
        delay = settings.retry_interval_ms / 1000
        attempts = 0
        while True:
            attempts += 1
            try:
                self._write_api.write(settings.bucket, settings.org, lines,
                                      write_precision=PRECISION)  # type: ignore[arg-type]
            except (InfluxDBError, urllib3.exceptions.HTTPError, http.client.HTTPException,
                    OSError) as err:
                failure = _failure(err)
                if not failure.retryable or attempts > settings.max_retries:
                    return failure, attempts
                wait = min(failure.retry_after_s or delay, settings.max_retry_delay_ms / 1000)
                if self._stop.wait(wait):
                    return failure, attempts
                delay = min(delay * 2, settings.max_retry_delay_ms / 1000)
                if retrying is not None:
                    retrying(failure)
                continue
            return None, attempts

    def _backfill_write(self, lines: list[str], written: int) -> int:
        failure, attempts = self._send(lines)
        if failure is None:
            return len(lines)
        if failure.retryable:
            message = (f"backfill stopped after writing {written} readings: InfluxDB at "
                       f"{self._settings.url} failed {attempts} times ({failure.text})")
        else:
            message = (f"backfill stopped after writing {written} readings: "
                       f"{self._refusal_message(failure, len(lines))}")
        raise InfluxWriteError(message, written)

    def _refusal_message(self, failure: _Failure, count: int) -> str:
        settings = self._settings
        hint = {
            401: "check influx.token",
            403: f"check that influx.token may write to bucket {settings.bucket!r}",
            404: "check influx.url, influx.org and influx.bucket",
            413: "lower influx.batch_size",
        }.get(failure.status or 0,
              "InfluxDB did not accept the data (a field type conflict or a malformed point)")
        return (f"InfluxDB at {settings.url} refused a write of {count} readings with HTTP "
                f"{failure.status}: {failure.text}; {hint}")

    def _convert(self, site: str, gateway: str, readings: Iterable[Reading]) -> _Converted:
        """Line protocol for the readings; missing ones skipped, invalid ones counted."""
        converted = _Converted([])
        bad_source = _bad_tag("site", site) or _bad_tag("gateway", gateway)
        for reading in readings:
            problem = bad_source or _problem(reading)
            if problem is not None:
                converted.invalid += 1
                converted.problem = converted.problem or problem
                continue
            probe, ts, temp_c = reading
            if temp_c is None:
                converted.skipped += 1
                continue
            point: Any = Point(self._measurement)  # type: ignore[no-untyped-call]
            point.tag("site", site).tag("gateway", gateway).tag("probe", probe)
            point.field(FIELD, float(temp_c)).time(round(ts * 1000), PRECISION)
            converted.lines.append(point.to_line_protocol())  # escapes tags as needed
        return converted


def _bad_tag(name: str, value: object) -> str | None:
    if isinstance(value, str) and value:
        return None
    return f"{name} must be a non-empty string, got {value!r}"


def _is_number(value: object) -> bool:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond float
        return False


def _problem(reading: object) -> str | None:
    """What is wrong with a reading, or None if it can be written (or is merely missing)."""
    if not isinstance(reading, tuple | list) or len(reading) != 3:
        return f"a reading must be (probe, epoch seconds, °C), got {reading!r}"
    probe, ts, temp_c = reading
    if not isinstance(probe, str) or not probe:
        return f"probe must be a non-empty string in {reading!r}"
    if not _is_number(ts):
        return f"the timestamp must be finite epoch seconds in {reading!r}"
    if temp_c is not None and not _is_number(temp_c):
        return f"the temperature must be a finite number of °C or None in {reading!r}"
    return None


def _failure(err: Exception) -> _Failure:
    """Classify a write error: retry connection errors, 429 and 5xx; not other statuses."""
    if isinstance(err, InfluxDBError) and getattr(err, "status", None) is not None:
        status = int(err.status)  # type: ignore[attr-defined]
        raw = err.message if err.response is not None else None  # else "no response"
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", "replace")
        text = " ".join(str(raw or getattr(err, "reason", "") or "").split())[:_MAX_MESSAGE]
        retry_after: float | None = None
        if err.retry_after:
            try:
                retry_after = float(err.retry_after)
            except ValueError:
                retry_after = None
        return _Failure(status == 429 or status >= 500, status, text, retry_after)
    text = " ".join(str(err).split())[:_MAX_MESSAGE] or type(err).__name__
    return _Failure(True, None, text)
