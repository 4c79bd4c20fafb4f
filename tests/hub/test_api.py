"""The JSON API through Flask's test client, over a real database."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hub.models import (
    Gateway,
    GradeRecord,
    QuarantinedMessage,
    Scan,
    TelemetryBatchRecord,
    TelemetryWindow,
)
from hub.telemetry import decode_document
from protocols import pickup_code
from tests.hub.conftest import AUTH, T0, TOKEN

TICKET = {"order_id": "O-1", "item_id": "IT-1", "channel": "app",
          "text": "The strawberries are mouldy."}


def error_of(response: Any) -> str:
    """Return the error message of a JSON error response, checking its shape."""
    assert response.is_json, response.data[:200]
    body = response.get_json()
    assert isinstance(body["error"], str) and body["error"]
    return str(body["error"])


def add_scan_and_grade(factory: sessionmaker[Session], item_id: str, grade: str,
                       ts: datetime, seq: int) -> None:
    """Store a scan and its grade as ingest would."""
    scan_id = f"gw-1:1:{seq}"
    with factory.begin() as session:
        session.add(Scan(message_id=scan_id, gateway_id="gw-1", station="pad-1",
                         item_id=item_id, tag_uid="04a1b2c3d4", lot="L2611",
                         gtin="06901234567892", core_temp_c=6.5, ts=ts, clock="synced"))
        session.add(GradeRecord(message_id=f"gw-1:1:{seq + 1}", gateway_id="gw-1",
                                station="pad-1", item_id=item_id, scan_id=scan_id, grade=grade,
                                model_version="grader-3", scores={grade: 0.9}, features={},
                                ts=ts + timedelta(seconds=1), clock="synced"))


# --- health and auth -----------------------------------------------------------------------


def test_health_needs_no_token(client: FlaskClient) -> None:
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing Authorization header"),
        ({"Authorization": TOKEN}, "must be 'Bearer <api token>'"),
        ({"Authorization": f"Basic {TOKEN}"}, "must be 'Bearer <api token>'"),
        ({"Authorization": "Bearer "}, "must be 'Bearer <api token>'"),
        ({"Authorization": "Bearer wrong-token-0123456789"}, "invalid API token"),
        ({"Authorization": f"Bearer {TOKEN}x"}, "invalid API token"),
    ],
    ids=["none", "no-scheme", "basic", "empty", "wrong", "longer"],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/v1/orders/O-1"), ("GET", "/api/v1/fleet"), ("POST", "/api/v1/tickets"),
     ("POST", "/api/v1/pickups/collect")],
)
def test_requests_without_the_token_are_refused(client: FlaskClient, headers: dict[str, str],
                                                message: str, method: str, path: str) -> None:
    response = client.open(path, method=method, headers=headers, json=TICKET)
    assert response.status_code == 401
    assert message in error_of(response)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_refused_ticket_is_not_stored(client: FlaskClient) -> None:
    client.post("/api/v1/tickets", json=TICKET)
    response = client.get("/api/v1/orders/O-1", headers=AUTH)
    assert response.get_json()["tickets"] == []


# --- the return, end to end ----------------------------------------------------------------


def test_complaint_to_collection_is_visible_on_the_order(
        client: FlaskClient, factory: sessionmaker[Session]) -> None:
    opened = client.post("/api/v1/tickets", json=TICKET, headers=AUTH)
    assert opened.status_code == 201, opened.get_json()
    code = opened.get_json()["pickup_code"]
    assert pickup_code.validate(code) == code

    collected = client.post("/api/v1/pickups/collect", headers=AUTH,
                            json={"code": code, "driver": "driver-7", "location": "Minhang"})
    assert collected.status_code == 200, collected.get_json()
    assert collected.get_json() | {"ts": None} == {
        "message_id": f"driver:{opened.get_json()['pickup_id']}", "item_id": "IT-1",
        "action": "picked_up", "actor": "driver-7", "location": "Minhang",
        "pickup_code": code, "ts": None, "historical": False}
    add_scan_and_grade(factory, "IT-1", "scrap", T0 + timedelta(hours=5), seq=1)

    view = client.get("/api/v1/orders/O-1", headers=AUTH).get_json()

    assert view["order"]["id"] == "O-1"
    assert view["customer"]["name"] == "Li Wei"
    [ticket] = view["tickets"]
    assert (ticket["id"], ticket["status"], ticket["channel"]) == (
        opened.get_json()["ticket_id"], "new", "app")
    [pickup] = view["pickups"]
    assert (pickup["code"], pickup["status"], pickup["driver"]) == (code, "collected", "driver-7")
    items = {item["id"]: item for item in view["items"]}
    assert items["IT-1"]["latest_grade"]["grade"] == "scrap"
    assert items["IT-2"]["latest_grade"] is None
    assert [entry["kind"] for entry in view["timeline"]] == [
        "ticket", "pickup", "custody", "scan", "grade"]
    assert view["timeline"][0]["ts"] == T0.isoformat()


def test_collect_is_idempotent(client: FlaskClient) -> None:
    code = client.post("/api/v1/tickets", json=TICKET, headers=AUTH).get_json()["pickup_code"]
    body = {"code": code, "driver": "driver-7", "location": "Minhang"}

    first = client.post("/api/v1/pickups/collect", json=body, headers=AUTH)
    again = client.post("/api/v1/pickups/collect", json=body | {"location": "Xuhui"},
                        headers=AUTH)

    assert first.status_code == again.status_code == 200
    assert again.get_json() == first.get_json()
    item = client.get("/api/v1/items/IT-1", headers=AUTH).get_json()
    assert len(item["custody"]) == 1


def test_collect_accepts_a_code_typed_loosely(client: FlaskClient) -> None:
    code = client.post("/api/v1/tickets", json=TICKET, headers=AUTH).get_json()["pickup_code"]
    typed = code.replace("-", " ").lower()
    response = client.post("/api/v1/pickups/collect", headers=AUTH,
                           json={"code": typed, "driver": "driver-7", "location": "Minhang"})
    assert response.status_code == 200
    assert response.get_json()["pickup_code"] == code


def test_a_typo_in_the_code_is_rejected_with_the_check_message(client: FlaskClient) -> None:
    code = client.post("/api/v1/tickets", json=TICKET, headers=AUTH).get_json()["pickup_code"]
    bare = code.replace("-", "")
    i = next(i for i in range(7) if bare[i] != bare[i + 1])
    swapped = bare[:i] + bare[i + 1] + bare[i] + bare[i + 2:]

    response = client.post("/api/v1/pickups/collect", headers=AUTH,
                           json={"code": swapped, "driver": "driver-7", "location": "Minhang"})

    assert response.status_code == 422
    assert "check failed: a character is mistyped or two are swapped" in error_of(response)
    order = client.get("/api/v1/orders/O-1", headers=AUTH).get_json()
    assert order["pickups"][0]["status"] == "issued"


def test_second_complaint_returns_the_same_ticket_and_code(client: FlaskClient) -> None:
    first = client.post("/api/v1/tickets", json=TICKET, headers=AUTH).get_json()
    second = client.post("/api/v1/tickets", headers=AUTH,
                         json=TICKET | {"channel": "hotline", "text": "Called again."})
    assert second.status_code == 201
    assert second.get_json() == first
    [ticket] = client.get("/api/v1/orders/O-1", headers=AUTH).get_json()["tickets"]
    assert "via hotline ---\nCalled again." in ticket["text"]


def test_a_return_for_an_item_already_collected_is_a_conflict(client: FlaskClient) -> None:
    code = client.post("/api/v1/tickets", json=TICKET, headers=AUTH).get_json()["pickup_code"]
    client.post("/api/v1/pickups/collect", headers=AUTH,
                json={"code": code, "driver": "driver-7", "location": "Minhang"})

    response = client.post("/api/v1/tickets", json=TICKET, headers=AUTH)

    assert response.status_code == 409
    assert "already collected" in error_of(response)


def test_another_driver_collecting_the_same_code_is_a_conflict(client: FlaskClient) -> None:
    code = client.post("/api/v1/tickets", json=TICKET, headers=AUTH).get_json()["pickup_code"]
    body = {"code": code, "driver": "driver-7", "location": "Minhang"}
    client.post("/api/v1/pickups/collect", json=body, headers=AUTH)

    response = client.post("/api/v1/pickups/collect", json=body | {"driver": "driver-9"},
                           headers=AUTH)

    assert response.status_code == 409
    assert "already collected by driver-7" in error_of(response)


# --- bad input: always a 4xx JSON error naming the problem ---------------------------------

NEVER_ISSUED = pickup_code.make_code(123)
COLLECT = {"code": NEVER_ISSUED, "driver": "driver-7", "location": "Minhang"}

BAD_REQUESTS = [
    # (id, method, path, keyword arguments of client.open, status, text in the error)
    ("not-json", "POST", "/api/v1/tickets", {"data": "order=O-1"}, 400, "not valid JSON"),
    ("not-json-with-json-type", "POST", "/api/v1/tickets",
     {"data": "{'order_id': 'O-1'}", "content_type": "application/json"}, 400, "not valid JSON"),
    ("empty-body", "POST", "/api/v1/tickets", {"data": ""}, 400, "request body is empty"),
    ("array-body", "POST", "/api/v1/tickets", {"json": [TICKET]}, 400,
     "must be a JSON object, got an array"),
    ("string-body", "POST", "/api/v1/pickups/collect", {"json": "7K3M-Q0PZ"}, 400,
     "must be a JSON object, got a string"),
    ("missing-order-id", "POST", "/api/v1/tickets",
     {"json": {k: v for k, v in TICKET.items() if k != "order_id"}}, 422,
     "order_id: required field is missing"),
    ("missing-everything", "POST", "/api/v1/tickets", {"json": {}}, 422,
     "item_id: required field is missing"),
    ("order-id-number", "POST", "/api/v1/tickets", {"json": TICKET | {"order_id": 1}}, 422,
     "order_id: input should be a valid string (got 1)"),
    ("item-id-null", "POST", "/api/v1/tickets", {"json": TICKET | {"item_id": None}}, 422,
     "item_id: input should be a valid string (got None)"),
    ("bad-channel", "POST", "/api/v1/tickets", {"json": TICKET | {"channel": "fax"}}, 422,
     "channel: input should be 'app', 'mini_program', 'hotline' or 'social' (got 'fax')"),
    ("empty-text", "POST", "/api/v1/tickets", {"json": TICKET | {"text": "  "}}, 422,
     "text: string should have at least 1 character"),
    ("text-too-long", "POST", "/api/v1/tickets", {"json": TICKET | {"text": "x" * 4001}}, 422,
     "text: string should have at most 4000 characters"),
    ("unknown-field", "POST", "/api/v1/tickets", {"json": TICKET | {"item": "IT-1"}}, 422,
     "item: unknown field"),
    ("unknown-order", "POST", "/api/v1/tickets", {"json": TICKET | {"order_id": "O-404"}}, 404,
     "order 'O-404' does not exist"),
    ("unknown-item", "POST", "/api/v1/tickets", {"json": TICKET | {"item_id": "IT-404"}}, 404,
     "item 'IT-404' does not exist"),
    ("missing-driver", "POST", "/api/v1/pickups/collect",
     {"json": {"code": NEVER_ISSUED, "location": "Minhang"}}, 422,
     "driver: required field is missing"),
    ("code-number", "POST", "/api/v1/pickups/collect", {"json": COLLECT | {"code": 12345678}},
     422, "code: input should be a valid string"),
    ("code-too-short", "POST", "/api/v1/pickups/collect", {"json": COLLECT | {"code": "7K3M"}},
     422, "wrong length: a pickup code has 8 characters, got 4"),
    ("code-bad-letter", "POST", "/api/v1/pickups/collect",
     {"json": COLLECT | {"code": "7K3M-QUPZ"}}, 422, "bad character 'U' at position 7"),
    ("code-never-issued", "POST", "/api/v1/pickups/collect", {"json": COLLECT}, 404,
     f"pickup code {NEVER_ISSUED} was never issued"),
    ("driver-too-long", "POST", "/api/v1/pickups/collect",
     {"json": COLLECT | {"driver": "d" * 65}}, 422, "driver: string should have at most 64"),
    ("limit-zero", "GET", "/api/v1/scans?limit=0", {}, 422,
     "limit: input should be greater than or equal to 1"),
    ("limit-word", "GET", "/api/v1/grades?limit=ten", {}, 422,
     "limit: input should be a valid integer"),
    ("limit-huge", "GET", "/api/v1/quarantine?limit=5000", {}, 422,
     "limit: input should be less than or equal to 1000"),
    ("since-word", "GET", "/api/v1/scans?since=yesterday", {}, 422, "since: input should be"),
    ("since-naive", "GET", "/api/v1/scans?since=2026-11-20T09:30:00", {}, 422,
     "since: input should have timezone info"),
    ("unknown-query", "GET", "/api/v1/scans?sort=ts", {}, 422, "sort: unknown query parameter"),
    ("unknown-item-get", "GET", "/api/v1/items/IT-404", {}, 404, "item 'IT-404' does not exist"),
    ("unknown-order-get", "GET", "/api/v1/orders/O-404", {}, 404,
     "order 'O-404' does not exist"),
    ("unknown-route", "GET", "/api/v1/tickets/1/nothing", {}, 404,
     "no such API endpoint: GET /api/v1/tickets/1/nothing"),
    ("wrong-method", "DELETE", "/api/v1/tickets", {}, 405,
     "method DELETE is not allowed on /api/v1/tickets; use GET, HEAD, POST"),
    ("get-on-post-route", "GET", "/api/v1/pickups/collect", {}, 405, "use POST"),
    ("body-too-large", "POST", "/api/v1/tickets",
     {"json": TICKET | {"text": "x" * 70_000}}, 413,
     "request body is over the limit of 65536 bytes"),
    ("nested-too-deep", "POST", "/api/v1/tickets",
     {"data": "[" * 5000 + "]" * 5000, "content_type": "application/json"}, 400,
     "request body is nested too deeply to read"),
    # PostgreSQL cannot store a NUL in text: refused on arrival, wherever it is
    ("nul-in-text", "POST", "/api/v1/tickets", {"json": TICKET | {"text": "a\x00b"}}, 422,
     "text: contains a NUL character"),
    ("nul-in-a-list", "POST", "/api/v1/intake/app",
     {"json": {"message_id": "m-1", "user_id": "C-1", "text": "烂了",
               "item_ids": ["IT-1", "IT\x002"]}}, 422, "item_ids.1: contains a NUL character"),
    ("surrogate-in-text", "POST", "/api/v1/tickets",
     {"data": json.dumps(TICKET).replace('"text": "', '"text": "\\ud800'),
      "content_type": "application/json"}, 422,
     "text: holds a lone UTF-16 surrogate, which is not text"),
    ("nul-in-path", "GET", "/api/v1/items/IT%001", {}, 400, "the path contains a NUL character"),
    ("nul-in-query", "GET", "/api/v1/tickets?assignee=a%00", {}, 400,
     "query parameter 'assignee' contains a NUL character"),
    ("repeated-query", "GET", "/api/v1/scans?limit=1&limit=abc", {}, 422,
     "limit: given more than once"),
    ("empty-assignee", "GET", "/api/v1/tickets?assignee=", {}, 422,
     "assignee: string should have at least 1 character"),
    # instants that cannot be moved to UTC (year 1 at +01:00) or lie past 2100
    ("since-year-1", "GET", "/api/v1/scans?since=0001-01-01T00:00:00%2B01:00", {}, 422,
     "since: value error, 0001-01-01T00:00:00+01:00 is outside the accepted range"),
    ("until-year-9999", "GET", "/api/v1/telemetry?probe=p&since=2026-11-20T00:00:00Z"
     "&until=9999-12-31T23:59:59-12:00", {}, 422, "until: value error, 9999-12-31T23:59:59"),
    ("kpis-until-year-1", "GET", "/api/v1/tickets/kpis?until=0001-01-01T00:00:00Z", {}, 422,
     "until: value error"),
    ("truck-reading-year-9999", "POST", "/api/v1/trucks/TRK-1/temperature-log",
     {"json": {"upload_id": "u-1", "readings": [{"ts": "9999-12-31T23:59:59-12:00",
                                                 "temp_c": 3.0}]}}, 422,
     "readings.0.ts: value error"),
    ("epoch-past-2100", "POST", "/api/v1/intake/mini_program",
     {"json": {"msg_id": "w-1", "openid": "o", "content": "烂了", "create_time": 10**30}}, 422,
     "create_time: input should be less than 4102444800"),
    ("epoch-as-string", "POST", "/api/v1/intake/mini_program",
     {"json": {"msg_id": "w-1", "openid": "o", "content": "烂了",
               "create_time": "1700000000"}}, 422, "create_time: input should be a valid integer"),
    ("flag-as-word", "POST", "/api/v1/intake/social",
     {"json": {"post_id": "p-1", "platform": "weibo", "handle": "h", "text": "烂了",
               "phone_verified": "yes"}}, 422, "phone_verified: input should be a valid boolean"),
    # ids past the database's integer: no such record, not an overflow
    ("ticket-id-past-int", "GET", "/api/v1/tickets/9223372036854775808", {}, 404,
     "id 9223372036854775808 does not exist (ids go up to 2147483647)"),
    ("alarm-id-past-int", "POST", "/api/v1/fleet/alarms/2147483648/ack", {"json": {"by": "x"}},
     404, "id 2147483648 does not exist"),
    ("merged-into-past-int", "POST", "/api/v1/tickets/1/transitions",
     {"json": {"to": "merged", "actor": "a", "merged_into": 10**30}}, 422,
     "merged_into: input should be less than or equal to 2147483647"),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "message"),
                         [case[1:] for case in BAD_REQUESTS], ids=[c[0] for c in BAD_REQUESTS])
def test_bad_input_gets_a_json_error_naming_the_problem(
        client: FlaskClient, method: str, path: str, kwargs: dict[str, Any], status: int,
        message: str) -> None:
    response = client.open(path, method=method, headers=AUTH, **kwargs)

    assert response.status_code == status
    assert message in error_of(response)
    assert b"<html" not in response.data.lower()
    assert client.get("/api/v1/tickets", headers=AUTH).get_json()["tickets"] == []


def test_validation_errors_list_every_field(client: FlaskClient) -> None:
    response = client.post("/api/v1/tickets", json={"channel": "fax"}, headers=AUTH)
    fields = response.get_json()["fields"]
    assert set(fields) == {"order_id", "item_id", "channel", "text"}


# --- read side -----------------------------------------------------------------------------


def test_item_history_is_ordered_by_time(client: FlaskClient,
                                         factory: sessionmaker[Session]) -> None:
    add_scan_and_grade(factory, "IT-1", "discount", T0 + timedelta(hours=2), seq=3)
    add_scan_and_grade(factory, "IT-1", "resell", T0 + timedelta(hours=1), seq=1)

    body = client.get("/api/v1/items/IT-1", headers=AUTH).get_json()

    assert body["item"]["product"] == "Strawberries 500 g"
    assert [g["grade"] for g in body["grades"]] == ["resell", "discount"]
    assert [(e["kind"], e.get("grade")) for e in body["timeline"]] == [
        ("scan", None), ("grade", "resell"), ("scan", None), ("grade", "discount")]


def test_scans_newest_first_or_after_since(client: FlaskClient,
                                           factory: sessionmaker[Session]) -> None:
    for n in range(3):
        add_scan_and_grade(factory, "IT-1", "resell", T0 + timedelta(minutes=n), seq=10 * n)

    newest = client.get("/api/v1/scans?limit=2", headers=AUTH).get_json()["scans"]
    after = client.get("/api/v1/scans", headers=AUTH,
                       query_string={"since": (T0 + timedelta(seconds=30)).isoformat()})

    assert [s["message_id"] for s in newest] == ["gw-1:1:20", "gw-1:1:10"]
    assert [s["message_id"] for s in after.get_json()["scans"]] == ["gw-1:1:10", "gw-1:1:20"]


def test_grades_fleet_and_quarantine(client: FlaskClient,
                                     factory: sessionmaker[Session]) -> None:
    add_scan_and_grade(factory, "IT-1", "resell", T0, seq=1)
    add_scan_and_grade(factory, "IT-2", "scrap", T0 + timedelta(minutes=1), seq=3)
    with factory.begin() as session:
        session.add(Gateway(id="gw-1", site="sh-01", online=True, boot=3, last_seen=T0,
                            backlog=12))
        session.add(QuarantinedMessage(topic="coldloop/v1/sh-01/gw-1/evt/scan",
                                       payload=b"\xff not json", reason="not valid JSON",
                                       received_at=T0))

    grades = client.get("/api/v1/grades?limit=5", headers=AUTH).get_json()["grades"]
    [gateway] = client.get("/api/v1/fleet", headers=AUTH).get_json()["gateways"]
    [message] = client.get("/api/v1/quarantine", headers=AUTH).get_json()["messages"]

    assert [(g["item_id"], g["grade"], g["order_id"]) for g in grades] == [
        ("IT-2", "scrap", "O-1"), ("IT-1", "resell", "O-1")]
    assert (gateway["id"], gateway["online"], gateway["backlog"]) == ("gw-1", True, 12)
    assert gateway["last_seen"] == T0.isoformat()
    assert message["reason"] == "not valid JSON"
    assert message["payload_preview"] == "\ufffd not json"
    assert message["payload_bytes"] == 10


def _truck_log(upload: str = "route-12-2026-11-20", **extra: Any) -> dict[str, Any]:
    return {"upload_id": upload, "readings": [
        {"compartment": "chilled", "ts": (T0 + timedelta(minutes=5 * i)).isoformat(),
         "temp_c": 3.0 + i * 0.5} for i in range(4)], **extra}


def test_truck_log_is_stored_once(client: FlaskClient, factory: sessionmaker[Session]) -> None:
    first = client.post("/api/v1/trucks/TRK-12/temperature-log", json=_truck_log(), headers=AUTH)
    assert first.status_code == 201 and first.json is not None and first.json["readings"] == 4
    again = client.post("/api/v1/trucks/TRK-12/temperature-log", json=_truck_log(), headers=AUTH)
    assert again.status_code == 200 and again.json is not None and again.json["duplicate"] is True
    with factory() as session:
        (record,) = session.scalars(select(TelemetryBatchRecord)).all()
        readings = decode_document(record.data)
        windows = session.scalars(select(TelemetryWindow)).all()
    assert record.source == "truck:TRK-12"
    assert [(p, t) for p, _, t in readings] == [("TRK-12/chilled", 3.0 + i * 0.5)
                                                for i in range(4)]
    assert sum(w.readings for w in windows) == 4 and {w.probe for w in windows} == {
        "TRK-12/chilled"}


@pytest.mark.parametrize(("path", "body", "message"), [
    ("/api/v1/trucks/TRK 12/temperature-log", _truck_log(), "truck id"),
    ("/api/v1/trucks/TRK-12/temperature-log", {"upload_id": "u1", "readings": []}, "readings"),
    ("/api/v1/trucks/TRK-12/temperature-log",
     {"upload_id": "u1", "readings": [{"ts": "2026-11-20T09:30:00", "temp_c": 3}]}, "ts"),
    ("/api/v1/trucks/TRK-12/temperature-log",
     {"upload_id": "u1", "readings": [{"ts": "2026-11-20T09:30:00Z", "temp_c": 300}]},
     "temp_c"),
    ("/api/v1/trucks/TRK-12/temperature-log", {"readings": []}, "upload_id"),
])
def test_bad_truck_logs_are_refused(client: FlaskClient, path: str, body: dict[str, Any],
                                    message: str) -> None:
    response = client.post(path, json=body, headers=AUTH)
    assert response.status_code == 422
    answer = response.json
    assert answer is not None
    assert message in answer["error"]
