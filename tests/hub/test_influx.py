"""The InfluxDB sink against a real line-protocol server (VictoriaMetrics, see conftest).

VictoriaMetrics stores field ``temp_c`` of measurement ``probe_temperature`` as the metric
``probe_temperature_temp_c`` with the tags as labels; ``/internal/force_flush`` makes what it
took visible to ``/api/v1/export`` at once, so no test waits on a clock.
"""

from __future__ import annotations

import json
import logging
import socket
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from influxdb_client.rest import ApiException

from firmware_sim.services import start_victoria_metrics
from hub.embedded_broker import free_port
from hub.influx import InfluxSink, InfluxWriteError, SinkCounters, TelemetryRows, _failure
from hub.settings import InfluxSettings

T0 = 1_732_098_600.0  # 2024-11-20 10:30 UTC: in the past, inside the server's retention
T0_MS = 1_732_098_600_000
METRIC = "probe_temperature_temp_c"
Series = dict[tuple[str, str], list[tuple[int, float]]]  # (gateway, probe) -> (ms, °C)


def settings(url: str, **overrides: Any) -> InfluxSettings:
    """Sink settings for tests: no batching delay, fast retries."""
    values: dict[str, Any] = {"url": url, "org": "coldloop", "bucket": "telemetry",
                              "token": "test-token", "flush_interval_ms": 0,
                              "retry_interval_ms": 1, "max_retry_delay_ms": 1,
                              "max_retries": 2, "timeout_ms": 10_000}
    return InfluxSettings(**{**values, **overrides})


def new_site() -> str:
    """A site name of one's own: tests share the session's server."""
    return f"s-{uuid.uuid4().hex[:10]}"


def exported(url: str, site: str) -> tuple[Series, list[dict[str, str]]]:
    """What the server stored for ``site``: series by (gateway, probe), and their labels."""
    with urllib.request.urlopen(f"{url}/internal/force_flush", timeout=10) as response:
        assert response.status == 200
    query = urllib.parse.urlencode({"match[]": f'{METRIC}{{site="{site}"}}', "start": "0"})
    with urllib.request.urlopen(f"{url}/api/v1/export?{query}", timeout=10) as response:
        rows = [json.loads(line) for line in response.read().splitlines() if line.strip()]
    series: Series = {}
    for row in rows:
        key = (row["metric"]["gateway"], row["metric"]["probe"])
        assert key not in series, f"two series for {key}: {rows}"
        series[key] = list(zip(row["timestamps"], row["values"], strict=True))
    return series, sorted((row["metric"] for row in rows), key=lambda m: sorted(m.items()))


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def records(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    """The sink's log messages at exactly ``level``."""
    return [r.getMessage() for r in caplog.records
            if r.name == "hub.influx" and r.levelno == level]


@pytest.fixture
def influx_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture the sink's log from INFO up."""
    caplog.set_level(logging.INFO, logger="hub.influx")
    return caplog


@pytest.fixture
def black_hole() -> Iterator[socket.socket]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield sock
    finally:
        sock.close()


def test_readings_arrive_with_their_tags_values_and_ms_timestamps(victoria_metrics: str) -> None:
    site = new_site()
    # One write for both batches: the writer waits to fill it until flush().
    with InfluxSink(settings(victoria_metrics, flush_interval_ms=60_000)) as sink:
        sink.submit(site, "gw-1", [("p1", T0, 4.25), ("p2", T0, -18.5),
                                   ("p1", T0 + 60.1234, 4.5)])
        sink.submit(site, "gw-2", [("core 1,a=b", T0 + 0.9996, 0.0), ("p1", T0 + 1, 150.0)])
        assert sink.flush(10)
        assert sink.counters == SinkCounters(submitted=5, written=5, writes=1)

    series, labels = exported(victoria_metrics, site)
    assert series == {
        ("gw-1", "p1"): [(T0_MS, 4.25), (T0_MS + 60_123, 4.5)],
        ("gw-1", "p2"): [(T0_MS, -18.5)],
        ("gw-2", "core 1,a=b"): [(T0_MS + 1_000, 0.0)],  # 0.9996 s rounds to 1000 ms
        ("gw-2", "p1"): [(T0_MS + 1_000, 150.0)],
    }
    assert labels[0] == {"__name__": METRIC, "site": site, "gateway": "gw-1", "probe": "p1"}
    assert all(set(m) == {"__name__", "site", "gateway", "probe"} for m in labels)


def test_many_readings_go_in_one_write(victoria_metrics: str) -> None:
    site = new_site()
    # The writer waits to fill a write of batch_size points (or for flush()).
    with InfluxSink(settings(victoria_metrics, batch_size=100,
                             flush_interval_ms=60_000)) as sink:
        for batch in range(25):
            sink.submit(site, "gw-1", [(f"p{k}", T0 + batch, 1.0 + k) for k in range(10)])
        assert sink.flush(10)
        assert sink.counters == SinkCounters(submitted=250, written=250, writes=3)  # 100+100+50
    series, _ = exported(victoria_metrics, site)
    assert sum(len(points) for points in series.values()) == 250


def test_missing_readings_are_skipped_and_counted(victoria_metrics: str) -> None:
    site = new_site()
    with InfluxSink(settings(victoria_metrics, flush_interval_ms=60_000)) as sink:
        sink.submit(site, "gw-1", [("p1", T0, 3.0), ("p1", T0 + 1, None), ("p2", T0, None)])
        sink.submit(site, "gw-1", [("p2", T0 + 2, None)])
        assert sink.flush(10)
        assert sink.counters == SinkCounters(submitted=4, written=1, skipped=3, writes=1)
    series, _ = exported(victoria_metrics, site)
    assert series == {("gw-1", "p1"): [(T0_MS, 3.0)]}


def test_an_invalid_reading_is_logged_and_the_rest_written(
        victoria_metrics: str, influx_logs: pytest.LogCaptureFixture) -> None:
    site = new_site()
    with InfluxSink(settings(victoria_metrics)) as sink:
        sink.submit(site, "gw-1", [("p1", T0, 3.0), ("p2", T0, "warm"),  # type: ignore[list-item]
                                   ("p3", T0, 5.0)])
        assert not sink.flush(10)  # one reading was given up
        assert sink.counters == SinkCounters(submitted=3, written=2, failed=1, writes=1)
    errors = records(influx_logs, logging.ERROR)
    assert len(errors) == 1
    assert "the temperature must be a finite number" in errors[0]
    assert "'warm'" in errors[0] and f"{site}/gw-1" in errors[0]
    series, _ = exported(victoria_metrics, site)
    assert series == {("gw-1", "p1"): [(T0_MS, 3.0)], ("gw-1", "p3"): [(T0_MS, 5.0)]}


def test_a_refused_write_is_logged_once_per_status_and_not_retried(
        victoria_metrics: str, influx_logs: pytest.LogCaptureFixture) -> None:
    # A wrong URL prefix: the server answers 400 "unsupported path".
    with InfluxSink(settings(f"{victoria_metrics}/not-influx")) as sink:
        for k in range(3):
            sink.submit(new_site(), "gw-1", [("p1", T0 + k, 1.0), ("p2", T0 + k, 2.0)])
            assert not sink.flush(10)
        assert sink.counters == SinkCounters(submitted=6, failed=6)
    errors = records(influx_logs, logging.ERROR)
    assert len(errors) == 1, errors
    assert "refused a write of 2 readings with HTTP 400" in errors[0]
    assert "unsupported path" in errors[0]


def test_a_bad_token_is_reported_clearly(victoria_metrics_binary_path: str, tmp_path: Path,
                                         influx_logs: pytest.LogCaptureFixture) -> None:
    auth = ["-httpAuth.username=coldloop", "-httpAuth.password=right-secret"]
    with (start_victoria_metrics(victoria_metrics_binary_path, tmp_path, extra_args=auth) as url,
          InfluxSink(settings(url, token="wrong-token")) as sink):
        sink.submit(new_site(), "gw-1", [("p1", T0, 1.0)])
        sink.submit(new_site(), "gw-1", [("p1", T0, 1.0)])
        assert not sink.flush(10)
        assert sink.counters == SinkCounters(submitted=2, failed=2)
    errors = records(influx_logs, logging.ERROR)
    assert len(errors) == 1, errors
    assert "with HTTP 401" in errors[0] and "check influx.token" in errors[0]


def test_an_unreachable_server_is_retried_then_given_up(
        influx_logs: pytest.LogCaptureFixture) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    with InfluxSink(settings(closed, max_retries=2)) as sink:
        started = time.monotonic()
        sink.submit("s1", "gw-1", [("p1", T0, 1.0), ("p2", T0, 2.0), ("p3", T0, None)])
        assert time.monotonic() - started < 0.5
        assert not sink.flush(10)
        assert sink.counters == SinkCounters(submitted=3, retried=4, failed=2, skipped=1)
        sink.submit("s1", "gw-1", [("p1", T0 + 1, 1.0)])
        assert not sink.flush(10)
        assert sink.counters == SinkCounters(submitted=4, retried=6, failed=3, skipped=1)
    warnings = records(influx_logs, logging.WARNING)
    errors = records(influx_logs, logging.ERROR)
    assert len(warnings) == 1, warnings  # once per outage, not per retry
    assert warnings[0].startswith(f"cannot write to InfluxDB at {closed}")
    assert "Connection refused" in warnings[0]
    assert len(errors) == 1, errors  # once per outage, not per write
    assert "gave up writing 2 readings" in errors[0] and "after 3 attempts" in errors[0]


def test_submit_never_blocks_and_a_full_queue_drops(
        black_hole: socket.socket, influx_logs: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{black_hole.getsockname()[1]}"
    sink = InfluxSink(settings(url, queue_limit=10, max_retries=0, timeout_ms=120_000))
    try:
        started = time.monotonic()
        sink.submit("s1", "gw-1", [(f"p{k}", T0, 1.0) for k in range(4)])
        # The writer is now stuck in a request that would take 120 s to time out.
        sink.submit("s1", "gw-1", [(f"p{k}", T0 + 1, 1.0) for k in range(4)])
        sink.submit("s1", "gw-1", [(f"p{k}", T0 + 2, 1.0) for k in range(4)])  # 12 > 10
        sink.submit("s1", "gw-1", [(f"p{k}", T0 + 3, 1.0) for k in range(2)])  # 10
        sink.submit("s1", "gw-1", [("p1", T0 + 4, None)])  # 11 > 10
        assert time.monotonic() - started < 1.0
        assert sink.counters == SinkCounters(submitted=15, dropped=5, pending=10)
        assert not sink.flush(0.05)
        warnings = records(influx_logs, logging.WARNING)
        assert len(warnings) == 1 and "queue is full (10 readings)" in warnings[0]

        black_hole.close()  # resets the waiting connection: the write fails, no retries
        assert not sink.flush(10)
        assert sink.counters == SinkCounters(submitted=15, dropped=5, failed=10)
        infos = records(influx_logs, logging.INFO)
        assert any("has room again; 5 readings were dropped" in m for m in infos), infos
    finally:
        sink.close(timeout=5)
    sink.submit("s1", "gw-1", [("p1", T0, 1.0)])  # after close: dropped, not raised
    assert sink.counters.dropped == 6


def test_the_server_coming_back_gets_the_retried_points_once(
        victoria_metrics_binary_path: str, tmp_path: Path,
        influx_logs: pytest.LogCaptureFixture) -> None:
    port = free_port()
    site = new_site()
    readings = [("p1", T0, 2.5), ("p2", T0, 3.5), ("p1", T0 + 30, 2.75)]
    with InfluxSink(settings(f"http://127.0.0.1:{port}", max_retries=100,
                             retry_interval_ms=10, max_retry_delay_ms=200)) as sink:
        sink.submit(site, "gw-1", readings)
        wait_until(lambda: sink.counters.retried >= 2 * len(readings))
        assert sink.counters.written == 0
        with start_victoria_metrics(victoria_metrics_binary_path, tmp_path, port) as url:
            assert sink.flush(30)
            counters = sink.counters
            assert (counters.written, counters.failed, counters.pending) == (3, 0, 0)
            series, _ = exported(url, site)
    assert series == {("gw-1", "p1"): [(T0_MS, 2.5), (T0_MS + 30_000, 2.75)],
                      ("gw-1", "p2"): [(T0_MS, 3.5)]}
    assert any("takes writes again" in m for m in records(influx_logs, logging.INFO))
    assert records(influx_logs, logging.ERROR) == []


def test_close_writes_what_is_queued(victoria_metrics: str) -> None:
    site = new_site()
    sink = InfluxSink(settings(victoria_metrics, flush_interval_ms=60_000))
    sink.submit(site, "gw-1", [("p1", T0, 1.0)])
    sink.close(timeout=10)
    assert sink.counters == SinkCounters(submitted=1, written=1, writes=1)
    series, _ = exported(victoria_metrics, site)
    assert series == {("gw-1", "p1"): [(T0_MS, 1.0)]}


def test_backfill_writes_synchronously(victoria_metrics: str) -> None:
    site = new_site()
    batches: list[TelemetryRows] = [(site, "gw-1", [("p1", T0 + k, 1.0 + k) for k in range(5)]),
               (site, "gw-2", [("p1", T0, None), ("p1", T0 + 1, 7.0), ("p2", T0, 8.0)])]
    with InfluxSink(settings(victoria_metrics, batch_size=3)) as sink:  # writes 3 + 3 + 1
        assert sink.backfill(iter(batches)) == 7
        # Written by the time backfill returns: no flush, and the sink's counters untouched.
        series, _ = exported(victoria_metrics, site)
        assert sink.counters == SinkCounters()
    assert series == {
        ("gw-1", "p1"): [(T0_MS + k * 1000, 1.0 + k) for k in range(5)],
        ("gw-2", "p1"): [(T0_MS + 1000, 7.0)],
        ("gw-2", "p2"): [(T0_MS, 8.0)],
    }


def test_backfill_raises_when_refused(victoria_metrics: str) -> None:
    site = new_site()
    with InfluxSink(settings(f"{victoria_metrics}/not-influx", batch_size=2)) as sink, \
            pytest.raises(InfluxWriteError, match=r"after writing 0 readings.*HTTP 400") as info:
        sink.backfill([(site, "gw-1", [("p1", T0, 1.0), ("p2", T0, 2.0)])])
    assert info.value.written == 0


def http_error(status: int, body: bytes = b"", **headers: str) -> ApiException:
    """The exception influxdb-client raises for an HTTP error answer."""
    response = urllib3.HTTPResponse(body=body, status=status, headers=headers,
                                    preload_content=True)
    return ApiException(http_resp=response)  # type: ignore[no-untyped-call]


@pytest.mark.parametrize(("error", "retryable", "status", "text", "retry_after"), [
    (http_error(503, b'{"message":"overloaded"}'), True, 503, "overloaded", None),
    (http_error(429, b'{"message":"slow down"}', **{"Retry-After": "2"}), True, 429,
     "slow down", 2.0),
    (http_error(401, b'{"code":"unauthorized","message":"unauthorized access"}'), False, 401,
     "unauthorized access", None),
    (http_error(422, b"partial write: field type conflict"), False, 422,
     "partial write: field type conflict", None),
    (ApiException(status=500, reason="Internal Server Error"),  # type: ignore[no-untyped-call]
     True, 500, "Internal Server Error", None),
    (ConnectionRefusedError(111, "Connection refused"), True, None,
     "[Errno 111] Connection refused", None),
])
def test_which_failures_are_retried(error: Exception, retryable: bool, status: int | None,
                                    text: str, retry_after: float | None) -> None:
    failure = _failure(error)
    assert (failure.retryable, failure.status, failure.text, failure.retry_after_s) == (
        retryable, status, text, retry_after)


def test_backfill_command_resends_a_period_from_the_database(
        victoria_metrics: str, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from click.testing import CliRunner

    from hub.console import main
    from hub.db import make_engine, migrate, session_factory
    from hub.telemetry import NewBatch, store_batches

    site = new_site()
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    migrate(url)
    engine = make_engine(url)
    inside = [("p1", T0, 3.0), ("p1", T0 + 60, 3.5)]
    later = [("p1", T0 + 86_400 * 3, 9.0)]  # three days on: outside the period
    with session_factory(engine).begin() as session:
        store_batches(session, [
            NewBatch(batch_id=f"gw-1:1:{n}", source="gw-1", site=site, readings=readings,
                     document=json.dumps({"readings": readings}).encode(),
                     received_at=datetime.now(UTC))
            for n, readings in enumerate((inside, later))])
    engine.dispose()
    config = tmp_path / "hub.toml"
    config.write_text(f'[database]\nurl = "{url}"\n[influx]\nurl = "{victoria_metrics}"\n'
                      'org = "coldloop"\nbucket = "telemetry"\n')

    result = CliRunner().invoke(main, ["--data-dir", str(tmp_path), "hub", "influx-backfill",
                                       "--config", str(config), "--since", "2024-11-20",
                                       "--until", "2024-11-21"])

    assert result.exit_code == 0, result.output
    assert "2 readings sent" in result.output
    series, _ = exported(victoria_metrics, site)
    assert series == {("gw-1", "p1"): [(T0_MS, 3.0), (T0_MS + 60_000, 3.5)]}


def test_backfill_command_needs_an_influx_section(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from hub.console import main

    result = CliRunner().invoke(main, ["--data-dir", str(tmp_path), "hub", "influx-backfill",
                                       "--since", "2024-11-20"])
    assert result.exit_code != 0
    assert "no [influx] section" in result.output
