"""Telemetry storage: whole batches, per-probe windows, range queries, the data migration."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, MetaData, Table, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from hub.db import alembic_config, make_engine, migrate, session_factory
from hub.errors import InvalidInput
from hub.models import TelemetryWindow
from hub.telemetry import (
    WINDOW_S,
    NewBatch,
    Reading,
    batch_rows,
    iter_batches,
    probe_readings,
    probe_windows,
    store_batches,
    window_rows,
)

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)  # a window boundary
E0 = T0.timestamp()


def batch(batch_id: str, readings: list[Reading], source: str = "gw-1") -> NewBatch:
    document = json.dumps({"id": batch_id, "readings": readings}).encode()
    return NewBatch(batch_id=batch_id, source=source, site="sh-1", readings=readings,
                    document=document, received_at=T0)


def windows(factory: sessionmaker[Session]) -> list[tuple[object, ...]]:
    with factory() as session:
        rows = session.scalars(select(TelemetryWindow).order_by(
            TelemetryWindow.source, TelemetryWindow.probe, TelemetryWindow.window_start))
        return [(w.source, w.probe, w.window_start - E0, w.readings, w.missing,
                 round(w.sum_c, 6), w.min_c, w.max_c, w.first_ts - E0, w.last_ts - E0)
                for w in rows]


def test_windows_aggregate_per_probe_and_window() -> None:
    rows = window_rows([batch("b1", [("p1", E0 + 10, 3.0), ("p1", E0 + 20, 5.0),
                                     ("p2", E0 + 10, None), ("p1", E0 + WINDOW_S, 4.0)])])
    assert [(r["probe"], r["window_start"] - E0, r["readings"], r["missing"], r["sum_c"],
             r["min_c"], r["max_c"]) for r in rows] == [
        ("p1", 0, 2, 0, 8.0, 3.0, 5.0), ("p1", WINDOW_S, 1, 0, 4.0, 4.0, 4.0),
        ("p2", 0, 0, 1, 0.0, None, None)]


def test_batches_fold_into_existing_windows(hub_db: sessionmaker[Session]) -> None:
    with hub_db.begin() as session:
        store_batches(session, [batch("b1", [("p1", E0 + 10, 3.0), ("p2", E0 + 10, None)])])
    with hub_db.begin() as session:  # a later batch, and a backlog batch from earlier
        store_batches(session, [batch("b2", [("p1", E0 + 40, 6.0), ("p2", E0 + 40, 2.0)]),
                                batch("b3", [("p1", E0 + 5, -1.0)])])

    assert windows(hub_db) == [
        ("gw-1", "p1", 0, 3, 0, 8.0, -1.0, 6.0, 5, 40),
        ("gw-1", "p2", 0, 1, 1, 2.0, 2.0, 2.0, 10, 40),  # a missing reading keeps no extreme
    ]


def test_same_probe_on_two_gateways_keeps_two_windows(hub_db: sessionmaker[Session]) -> None:
    with hub_db.begin() as session:
        store_batches(session, [batch("a", [("p1", E0 + 1, 2.0)], source="gw-1"),
                                batch("b", [("p1", E0 + 2, 9.0)], source="gw-2")])
    assert [(w[0], w[3]) for w in windows(hub_db)] == [("gw-1", 1), ("gw-2", 1)]


def test_range_query_reads_raw_readings_back(hub_db: sessionmaker[Session]) -> None:
    with hub_db.begin() as session:
        store_batches(session, [
            batch("gw-1:1:2", [("p1", E0 + 60, 4.0), ("p2", E0 + 60, 1.0)]),
            batch("gw-1:1:1", [("p1", E0 + 0, 3.0), ("p1", E0 + 30, None)]),
            batch("gw-1:1:3", [("p1", E0 + 900, 5.0)]),
        ])
    with hub_db() as session:
        found = probe_readings(session, "p1", T0, T0 + timedelta(seconds=60))
        whole = probe_windows(session, "p1", T0, T0 + timedelta(hours=1))
        none = probe_readings(session, "p9", T0, T0 + timedelta(hours=1))

    assert [(r.ts - E0, r.temp_c, r.batch_id) for r in found] == [
        (0, 3.0, "gw-1:1:1"), (30, None, "gw-1:1:1"), (60, 4.0, "gw-1:1:2")]
    assert [(w.start - E0, w.readings, w.missing, w.mean_c) for w in whole] == [
        (0, 2, 1, 3.5), (900, 1, 0, 5.0)]
    assert none == []


def test_range_query_refuses_bad_ranges_and_huge_answers(hub_db: sessionmaker[Session]) -> None:
    with hub_db.begin() as session:
        store_batches(session, [batch("b", [("p1", E0 + n, 3.0) for n in range(50)])])
    with hub_db() as session:
        with pytest.raises(InvalidInput, match="until must not be before since"):
            probe_readings(session, "p1", T0, T0 - timedelta(seconds=1))
        with pytest.raises(InvalidInput, match="time zone"):
            probe_readings(session, "p1", T0.replace(tzinfo=None), T0)
        with pytest.raises(InvalidInput, match="more than 10 readings"):
            probe_readings(session, "p1", T0, T0 + timedelta(hours=1), limit=10)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["p1", "p2"]),
                          st.floats(min_value=0, max_value=3 * WINDOW_S),
                          st.one_of(st.none(), st.floats(min_value=-30, max_value=40))),
                min_size=1, max_size=60),
       st.integers(min_value=1, max_value=5))
def test_windows_equal_the_readings_however_split(readings: list[Reading], parts: int) -> None:
    readings = [(p, E0 + ts, t) for p, ts, t in readings]
    whole = {(r["probe"], r["window_start"]): r for r in window_rows([batch("x", readings)])}
    split = [batch(f"x{i}", readings[i::parts]) for i in range(parts) if readings[i::parts]]
    merged: dict[tuple[str, int], dict[str, float]] = {}
    for row in window_rows(split):  # what the upsert does, done by hand
        key = (row["probe"], row["window_start"])
        m = merged.setdefault(key, {"readings": 0, "missing": 0, "sum_c": 0.0})
        m["readings"] += row["readings"]
        m["missing"] += row["missing"]
        m["sum_c"] += row["sum_c"]
    assert merged.keys() == whole.keys()
    for key, m in merged.items():
        assert (m["readings"], m["missing"]) == (whole[key]["readings"], whole[key]["missing"])
        assert math.isclose(m["sum_c"], whole[key]["sum_c"], abs_tol=1e-9)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["gw-1", "gw-2"]),
                          st.lists(st.tuples(st.sampled_from(["p1", "p2", "p3"]),
                                             st.floats(min_value=0, max_value=3 * WINDOW_S),
                                             st.one_of(st.none(),
                                                       st.floats(min_value=-30, max_value=40))),
                                   min_size=1, max_size=40)),
                min_size=1, max_size=4))
def test_windows_equal_a_reading_by_reading_fold(
        batches: list[tuple[str, list[Reading]]]) -> None:
    expected: dict[tuple[str, str, int], dict[str, object]] = {}
    for source, readings in batches:
        for probe, offset, temp in readings:
            ts = E0 + offset
            key = (source, probe, int(ts // WINDOW_S) * WINDOW_S)
            w = expected.setdefault(key, {"times": [], "temps": [], "missing": 0})
            w["times"].append(ts)  # type: ignore[attr-defined]
            if temp is None:
                w["missing"] += 1  # type: ignore[operator]
            else:
                w["temps"].append(temp)  # type: ignore[attr-defined]
    stored = [batch(f"b{i}", [(p, E0 + o, t) for p, o, t in readings], source)
              for i, (source, readings) in enumerate(batches)]
    assert [(r["ts_first"], r["ts_last"], r["readings"], r["missing"])
            for r in batch_rows(stored)] == [
        (min(ts for _, ts, _ in b.readings), max(ts for _, ts, _ in b.readings),
         len(b.readings), sum(1 for _, _, t in b.readings if t is None)) for b in stored]
    rows = window_rows(stored)
    assert [(r["source"], r["probe"], r["window_start"]) for r in rows] == sorted(expected)
    for row in rows:
        w = expected[(row["source"], row["probe"], row["window_start"])]
        temps, times = w["temps"], w["times"]
        assert (row["readings"], row["missing"]) == (len(temps), w["missing"])  # type: ignore
        assert (row["min_c"], row["max_c"]) == (min(temps, default=None),  # type: ignore
                                                max(temps, default=None))  # type: ignore
        assert (row["first_ts"], row["last_ts"]) == (min(times), max(times))  # type: ignore
        assert math.isclose(row["sum_c"], sum(temps), abs_tol=1e-9)  # type: ignore


def test_migration_moves_readings_into_batches_and_windows(database_url: str) -> None:
    migrate(database_url, "0003")
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO gateways (id, site, online, boot, backlog, clock) "
                              "VALUES ('gw-1', 'sh-1', false, 1, 0, 'synced')"))
            table = _old_telemetry(conn)
            conn.execute(insert(table), [
                {"batch_id": "gw-1:1:5", "seq": 0, "gateway_id": "gw-1", "probe": "p1",
                 "ts": E0 + 1, "temp_c": 3.0},
                {"batch_id": "gw-1:1:5", "seq": 1, "gateway_id": "gw-1", "probe": "p1",
                 "ts": E0 + 2, "temp_c": None},
                {"batch_id": "gw-1:1:6", "seq": 0, "gateway_id": "gw-1", "probe": "p1",
                 "ts": E0 + 3, "temp_c": 5.0},
                {"batch_id": "truck:TRK-1:u1", "seq": 0, "gateway_id": "truck:TRK-1",
                 "probe": "TRK-1/chilled", "ts": E0 + 4, "temp_c": 7.5},
            ])
        migrate(database_url)
        factory = session_factory(engine)
        with factory() as session:
            batches = [(r.batch_id, r.source, r.site, r.readings, r.missing, readings)
                       for r, readings in iter_batches(session)]
        assert batches == [
            ("gw-1:1:5", "gw-1", "sh-1", 2, 1, [("p1", E0 + 1, 3.0), ("p1", E0 + 2, None)]),
            ("gw-1:1:6", "gw-1", "sh-1", 1, 0, [("p1", E0 + 3, 5.0)]),
            ("truck:TRK-1:u1", "truck:TRK-1", "", 1, 0, [("TRK-1/chilled", E0 + 4, 7.5)])]
        assert windows(factory) == [
            ("gw-1", "p1", 0, 2, 1, 8.0, 3.0, 5.0, 1, 3),
            ("truck:TRK-1", "TRK-1/chilled", 0, 1, 0, 7.5, 7.5, 7.5, 4, 4)]

        command.downgrade(alembic_config(database_url), "0003")  # back: rows again
        with engine.connect() as conn:
            rows = conn.execute(select(_old_telemetry(conn)).order_by("batch_id", "seq"))
            assert [(r.batch_id, r.seq, r.temp_c) for r in rows] == [
                ("gw-1:1:5", 0, 3.0), ("gw-1:1:5", 1, None), ("gw-1:1:6", 0, 5.0),
                ("truck:TRK-1:u1", 0, 7.5)]
    finally:
        engine.dispose()


def _old_telemetry(conn: Connection) -> Table:
    return Table("telemetry", MetaData(), autoload_with=conn)


def test_a_batch_without_readings_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="telemetry batch 'empty' has no readings"):
        window_rows([batch("empty", [])])
