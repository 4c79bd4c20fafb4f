"""The fleet registry and alarms through the JSON API and the admin UI, over real databases."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from hub.models import FleetAlarm
from hub.settings import DatabaseSettings, HubSettings, WebSettings
from hub.web import create_app
from tests.hub.conftest import AUTH, TOKEN
from tests.hub.test_api import error_of
from tests.hub.test_fleet_alarms import (
    NOW,
    evaluate,
    fleet_scenario,
    health,
    ingest,
    open_alarms,
)
from tests.hub.test_ui import stat
from tests.hub.ui_helpers import csrf_token, login

USER, PASSWORD = "ops-admin", "correct horse battery"


@pytest.fixture
def app(database_url: str, factory: sessionmaker[Session]) -> Flask:
    """The hub app with a known API token, admin and clock (NOW, as the fleet scenario)."""
    settings = HubSettings(database=DatabaseSettings(url=database_url),
                           web=WebSettings(api_token=TOKEN, admin_user=USER,
                                           admin_password=PASSWORD,
                                           secret_key="test-secret-key-0123456789"))
    return create_app(settings, factory=factory,
                      test_config={"TESTING": True, "COLDLOOP_CLOCK": lambda: NOW})


@pytest.fixture
def alarmed(factory: sessionmaker[Session]) -> dict[tuple[str, str], FleetAlarm]:
    """The fleet scenario, evaluated at NOW: its seven open alarms by (kind, subject)."""
    fleet_scenario(factory)
    evaluate(factory, NOW)
    return open_alarms(factory)


@pytest.fixture
def admin(client: FlaskClient) -> FlaskClient:
    """A test client logged in as the admin."""
    response = login(client, USER, PASSWORD)
    assert response.status_code == 302, response.text
    return client


def get(client: FlaskClient, path: str, **query: Any) -> Any:
    response = client.get(path, headers=AUTH, query_string=query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


# --- GET /fleet -----------------------------------------------------------------------------


def test_fleet_of_an_empty_hub(client: FlaskClient) -> None:
    assert get(client, "/api/v1/fleet") == {
        "generated_at": NOW.isoformat(), "window_s": 3600, "gateways": [], "stations": [],
        "probes": []}


def test_fleet_lists_gateways_stations_and_probes(
        client: FlaskClient, alarmed: dict[tuple[str, str], FleetAlarm]) -> None:
    body = get(client, "/api/v1/fleet")

    gw1, gw2, gw3 = body["gateways"]
    assert gw1 == {
        "id": "gw-1", "site": "sh-01", "online": True, "boot": 2,
        "last_seen": (NOW - timedelta(seconds=30)).isoformat(),
        "software": "edge 1.6", "model_version": "grader-3", "backlog": 4,
        "clock": "synced", "clock_source": "health", "silent_s": 30.0,
        "reported_alarms": ["disk_low"],
        "health": {"message_id": "gw-1:2:90", "ts": (NOW - timedelta(seconds=30)).isoformat(),
                   "clock": "synced", "disk_free_mb": 150.0, "disk_used_pct": 96.5,
                   "outbox_depth": 4.0, "dead_letters": 1.0, "cpu_temp_c": 51.2,
                   "reader_errors": 19.0, "uptime_s": 7170.0},
        "reader": {"scans": 48, "errors": 9, "attempts": 57, "error_pct": 15.79,
                   "faults": 6, "failed_reads": 9},
        "open_alarms": 4,
    }
    assert (gw2["id"], gw2["online"], gw2["health"], gw2["open_alarms"]) == (
        "gw-2", False, None, 1)
    assert (gw3["site"], gw3["clock"], gw3["clock_source"], gw3["silent_s"]) == (
        "sz-02", "holdover", "state", 600.0)
    assert body["stations"] == [
        {"gateway_id": "gw-1", "site": "sh-01", "station": "pad-1",
         "last_scan": (NOW - timedelta(minutes=2)).isoformat(),
         "reader": {"scans": 38, "errors": 2, "attempts": 40, "error_pct": 5.0}},
        {"gateway_id": "gw-1", "site": "sh-01", "station": "pad-2",
         "last_scan": (NOW - timedelta(minutes=5)).isoformat(),
         "reader": {"scans": 10, "errors": 4, "attempts": 14, "error_pct": 28.57}}]
    assert [p["probe"] for p in body["probes"]] == ["b1-1", "b1-2", "b1-3"]
    assert body["probes"][1] == {
        "gateway_id": "gw-1", "site": "sh-01", "probe": "b1-2",
        "last_reading": (NOW - timedelta(seconds=30)).isoformat(),
        "last_window": {"start": "2026-11-20T10:25:00.000+00:00", "readings": 4, "missing": 1,
                        "mean_c": 2.5, "min_c": 2.5, "max_c": 2.5},
        "readings": 16, "missing": 4, "missing_pct": 20.0, "deviation_c": 0.0}
    assert body["probes"][2]["deviation_c"] == 3.5


# --- alarms ----------------------------------------------------------------------------------


def test_alarms_open_cleared_or_both(client: FlaskClient, factory: sessionmaker[Session],
                                     alarmed: dict[tuple[str, str], FleetAlarm]) -> None:
    ingest(factory, health("gw-3", 1, NOW + timedelta(seconds=10), site="sz-02",
                           clock="holdover"))
    evaluate(factory, NOW + timedelta(seconds=20))

    opened = get(client, "/api/v1/fleet/alarms", open="true")["alarms"]
    cleared = get(client, "/api/v1/fleet/alarms", open="false")["alarms"]
    both = get(client, "/api/v1/fleet/alarms")["alarms"]
    newest = get(client, "/api/v1/fleet/alarms", limit=2)["alarms"]

    assert (len(opened), len(both)) == (6, 7)
    assert all(a["open"] and a["cleared_at"] is None for a in opened)
    silent = alarmed[("gateway_silent", "gw-3")]
    assert cleared == [{
        "id": silent.id, "kind": "gateway_silent", "subject": "gw-3", "gateway_id": "gw-3",
        "site": "sz-02", "severity": "error", "message": silent.message, "open": False,
        "raised_at": NOW.isoformat(), "last_seen_at": NOW.isoformat(),
        "cleared_at": (NOW + timedelta(seconds=20)).isoformat(), "acknowledged_by": None,
        "acknowledged_at": None}]
    ids = sorted((a.id for a in alarmed.values()), reverse=True)  # all raised at NOW
    assert [a["id"] for a in both] == ids
    assert [a["id"] for a in newest] == ids[:2]


@pytest.mark.parametrize(("query", "field"), [
    ({"open": "maybe"}, "open"), ({"limit": "0"}, "limit"), ({"limit": "lots"}, "limit"),
    ({"gateway": "gw-1"}, "gateway")])
def test_bad_alarm_queries_are_refused(client: FlaskClient, query: dict[str, str],
                                       field: str) -> None:
    response = client.get("/api/v1/fleet/alarms", headers=AUTH, query_string=query)
    assert response.status_code == 422
    assert field in response.get_json()["fields"]


def test_acknowledge_via_the_api(client: FlaskClient,
                                 alarmed: dict[tuple[str, str], FleetAlarm]) -> None:
    alarm = alarmed[("probe_drift", "gw-1/b1-3")]
    path = f"/api/v1/fleet/alarms/{alarm.id}/ack"

    first = client.post(path, json={"by": " ops-1 "}, headers=AUTH)
    again = client.post(path, json={"by": "ops-2"}, headers=AUTH)

    assert first.status_code == 200, first.get_json()
    assert (first.get_json()["acknowledged_by"], first.get_json()["acknowledged_at"],
            first.get_json()["open"]) == ("ops-1", NOW.isoformat(), True)
    assert again.status_code == 200
    assert again.get_json()["acknowledged_by"] == "ops-1"  # the first acknowledgement stays
    listed = get(client, "/api/v1/fleet/alarms", open="true")["alarms"]
    assert [a["acknowledged_by"] for a in listed if a["id"] == alarm.id] == ["ops-1"]


def test_a_cleared_alarm_can_still_be_acknowledged(
        client: FlaskClient, factory: sessionmaker[Session],
        alarmed: dict[tuple[str, str], FleetAlarm]) -> None:
    ingest(factory, health("gw-3", 1, NOW + timedelta(seconds=10), site="sz-02"))
    evaluate(factory, NOW + timedelta(seconds=20))
    alarm = alarmed[("gateway_silent", "gw-3")]
    response = client.post(f"/api/v1/fleet/alarms/{alarm.id}/ack", json={"by": "ops-1"},
                           headers=AUTH)
    assert response.status_code == 200
    assert (response.get_json()["open"], response.get_json()["acknowledged_by"]) == (
        False, "ops-1")


@pytest.mark.parametrize(("body", "status", "message"), [
    ({}, 422, "by: required field is missing"),
    ({"by": ""}, 422, "by: string should have at least 1 character"),
    ({"by": "x" * 65}, 422, "by: string should have at most 64 characters"),
    ({"by": 7}, 422, "by: input should be a valid string"),
    ({"by": "ops-1", "note": "seen"}, 422, "note: unknown field"),
    ([], 400, "request body must be a JSON object"),
    (b"{not json", 400, "request body is not valid JSON"),
])
def test_bad_acknowledgements_are_refused(client: FlaskClient, body: Any, status: int,
                                          message: str,
                                          alarmed: dict[tuple[str, str], FleetAlarm]) -> None:
    path = f"/api/v1/fleet/alarms/{alarmed[('disk_low', 'gw-1')].id}/ack"
    if isinstance(body, bytes):
        response = client.post(path, data=body, headers=AUTH, content_type="application/json")
    else:
        response = client.post(path, json=body, headers=AUTH)
    assert response.status_code == status
    assert message in error_of(response)
    assert open_alarms_acked(client) == []


def open_alarms_acked(client: FlaskClient) -> list[int]:
    return [a["id"] for a in get(client, "/api/v1/fleet/alarms")["alarms"]
            if a["acknowledged_by"]]


def test_acknowledging_an_unknown_alarm_is_a_404(client: FlaskClient) -> None:
    response = client.post("/api/v1/fleet/alarms/9999/ack", json={"by": "ops-1"}, headers=AUTH)
    assert response.status_code == 404
    assert error_of(response) == "fleet alarm 9999 does not exist"


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/v1/fleet"), ("GET", "/api/v1/fleet/alarms"),
    ("POST", "/api/v1/fleet/alarms/1/ack")])
def test_fleet_endpoints_need_the_token(client: FlaskClient, method: str, path: str) -> None:
    response = client.open(path, method=method, json={"by": "ops-1"})
    assert response.status_code == 401
    assert "missing Authorization header" in error_of(response)


# --- the admin UI ----------------------------------------------------------------------------


def test_fleet_page_requires_login(client: FlaskClient) -> None:
    assert client.get("/fleet").location == "/login?next=/fleet"
    response = client.post("/fleet/alarms/1/ack")
    assert response.status_code == 302 and response.location.startswith("/login")


def test_fleet_page_lists_the_registry_and_open_alarms(
        admin: FlaskClient, alarmed: dict[tuple[str, str], FleetAlarm]) -> None:
    html = admin.get("/fleet").text

    assert '<a href="/fleet"\n         class="active" aria-current="page">Fleet</a>' in html
    assert 'id="open-alarm-count">7</span>' in html
    for alarm in alarmed.values():
        assert f'<tr id="alarm-{alarm.id}">' in html
        assert f'action="/fleet/alarms/{alarm.id}/ack"' in html
    assert "is off the median of the gateway&#39;s 3 probes by +3.5, +3.5, +3.5 °C" in html
    assert '<span class="badge badge-red">error</span>' in html
    assert '<span class="badge badge-grey">info</span>' in html
    assert "state-online" in html and "state-offline" in html
    assert "150 MB" in html and "96.5 % used" in html  # gw-1's disk
    assert "15.8 %" in html and "9 of 57 reads" in html  # gw-1's reader error rate
    assert "28.6 %" in html  # pad-2
    assert "+3.5 °C" in html and "20.0 %" in html  # b1-3's drift, b1-2's missing share
    assert "2 h ago" in html  # gw-2, offline for two hours
    assert "<script" not in html
    assert "No alarm has cleared yet." in html


def test_acknowledge_button(admin: FlaskClient,
                            alarmed: dict[tuple[str, str], FleetAlarm]) -> None:
    alarm = alarmed[("gateway_offline", "gw-2")]
    path = f"/fleet/alarms/{alarm.id}/ack"

    assert admin.post(path).status_code == 400  # no form token
    assert f'action="{path}"' in admin.get("/fleet").text
    response = admin.post(path, data={"csrf_token": csrf_token(admin, "/fleet")})

    assert response.status_code == 302
    assert response.location == "/fleet#alarms"
    html = admin.get("/fleet").text
    assert f'action="{path}"' not in html
    assert f"by {USER}" in html
    unknown = admin.post("/fleet/alarms/9999/ack",
                         data={"csrf_token": csrf_token(admin, "/fleet")})
    assert unknown.status_code == 404
    assert "fleet alarm 9999 does not exist" in unknown.text


def test_dashboard_counts_open_alarms(admin: FlaskClient,
                                     alarmed: dict[tuple[str, str], FleetAlarm]) -> None:
    html = admin.get("/").text
    assert stat(html, "alarms-open") == "7"
    assert 'href="/fleet#alarms"' in html


def test_empty_fleet_page(admin: FlaskClient) -> None:
    html = admin.get("/fleet").text
    assert "No open alarms." in html
    assert "No gateway has reported yet." in html
    assert "No station has scanned yet." in html
    assert "No probe has reported yet." in html
    assert stat(admin.get("/").text, "alarms-open") == "0"
