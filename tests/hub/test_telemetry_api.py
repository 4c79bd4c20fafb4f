"""GET /api/v1/telemetry: one probe's readings or windows over a range."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from hub.telemetry import WINDOW_S, NewBatch, Reading, store_batches
from tests.hub.conftest import AUTH, T0
from tests.hub.test_api import error_of

E0 = T0.timestamp()


@pytest.fixture
def stored(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """Two gateways' batches: p1 on gw-1 every minute for 20 minutes, p1 on gw-2 once."""
    def batch(batch_id: str, source: str, readings: list[Reading]) -> NewBatch:
        return NewBatch(batch_id=batch_id, source=source, site="sh-1", readings=readings,
                        document=json.dumps({"readings": readings}).encode(), received_at=T0)

    with factory.begin() as session:
        store_batches(session, [
            batch("gw-1:1:1", "gw-1", [("p1", E0 + 60 * m, 3.0 + m / 10) for m in range(10)]),
            batch("gw-1:1:2", "gw-1", [("p1", E0 + 60 * m, None if m == 15 else 4.0)
                                       for m in range(10, 20)]),
            batch("gw-2:1:1", "gw-2", [("p1", E0 + 30, 7.0), ("p9", E0 + 30, 1.0)]),
        ])
    return factory


def get(client: FlaskClient, **query: str) -> tuple[int, dict[str, Any]]:
    response = client.get("/api/v1/telemetry", query_string=query, headers=AUTH)
    return response.status_code, response.get_json()


def iso(offset_s: float) -> str:
    return (T0 + timedelta(seconds=offset_s)).isoformat()


def test_raw_readings_of_a_probe_in_a_range(client: FlaskClient,
                                            stored: sessionmaker[Session]) -> None:
    status, body = get(client, probe="p1", since=iso(0), until=iso(120))

    assert status == 200
    assert body["readings"] == [
        {"ts": "2026-11-20T09:30:00.000+00:00", "temp_c": 3.0, "source": "gw-1",
         "batch_id": "gw-1:1:1"},
        {"ts": "2026-11-20T09:30:30.000+00:00", "temp_c": 7.0, "source": "gw-2",
         "batch_id": "gw-2:1:1"},
        {"ts": "2026-11-20T09:31:00.000+00:00", "temp_c": 3.1, "source": "gw-1",
         "batch_id": "gw-1:1:1"},
        {"ts": "2026-11-20T09:32:00.000+00:00", "temp_c": 3.2, "source": "gw-1",
         "batch_id": "gw-1:1:1"}]


def test_one_source_only(client: FlaskClient, stored: sessionmaker[Session]) -> None:
    _, body = get(client, probe="p1", since=iso(0), until=iso(60), source="gw-2")
    assert [r["temp_c"] for r in body["readings"]] == [7.0]


def test_windows_of_a_probe(client: FlaskClient, stored: sessionmaker[Session]) -> None:
    status, body = get(client, probe="p1", since=iso(0), until=iso(3600), resolution="window",
                       source="gw-1")

    assert status == 200 and body["window_s"] == WINDOW_S
    assert [(w["start"], w["readings"], w["missing"], w["min_c"], w["max_c"], w["mean_c"])
            for w in body["windows"]] == [
        ("2026-11-20T09:30:00.000+00:00", 5, 0, 3.0, 3.4, 3.2),
        ("2026-11-20T09:35:00.000+00:00", 5, 0, 3.5, 3.9, 3.7),
        ("2026-11-20T09:40:00.000+00:00", 5, 0, 4.0, 4.0, 4.0),
        ("2026-11-20T09:45:00.000+00:00", 4, 1, 4.0, 4.0, 4.0)]


def test_unknown_probe_is_an_empty_answer(client: FlaskClient,
                                          stored: sessionmaker[Session]) -> None:
    status, body = get(client, probe="nope", since=iso(0), until=iso(60))
    assert (status, body["readings"]) == (200, [])


@pytest.mark.parametrize(("query", "names"), [
    ({"since": iso(0), "until": iso(60)}, "probe"),
    ({"probe": "p1", "until": iso(60)}, "since"),
    ({"probe": "p1", "since": "2026-11-20T09:30:00", "until": iso(60)}, "since"),
    ({"probe": "p1", "since": iso(0), "until": iso(60), "resolution": "hourly"}, "resolution"),
    ({"probe": "p1", "since": iso(0), "until": iso(60), "colour": "red"}, "colour"),
    ({"probe": "p1", "since": iso(60), "until": iso(0)}, "until must not be before since"),
])
def test_bad_queries_are_refused_naming_the_problem(client: FlaskClient,
                                                    stored: sessionmaker[Session],
                                                    query: dict[str, str], names: str) -> None:
    response = client.get("/api/v1/telemetry", query_string=query, headers=AUTH)
    assert response.status_code in (400, 422)
    assert names in json.dumps(response.get_json())
    assert error_of(response)


def test_needs_the_token(client: FlaskClient) -> None:
    response = client.get("/api/v1/telemetry", query_string={"probe": "p1"})
    assert response.status_code == 401
