"""The trace API: an item's trace, an order's attribution, EPCIS export and import over HTTP."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from firmware_sim import epcis_docs
from firmware_sim.demo import seed_hub
from firmware_sim.scenario import Complaint, Scenario, generate
from hub import epcis
from hub.models import Ticket
from hub.trace_models import TraceEvent
from tests.hub.conftest import AUTH
from tests.hub.test_trace import NOW, record, with_fault

IMPORT = "/api/v1/trace/import"


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    """The scenario of tests/hub/test_trace.py (pure data: generated once)."""
    return generate(3, 120)


@pytest.fixture
def world(factory: sessionmaker[Session], scenario: Scenario) -> Scenario:
    seed_hub(factory, scenario)
    return scenario


@pytest.fixture
def reefer(factory: sessionmaker[Session], world: Scenario) -> Complaint:
    """Bananas whose truck's reefer failed: partners' documents, the truck log, a complaint."""
    complaint = with_fault(world, "truck_reefer")
    record(factory, complaint)
    with factory.begin() as session:
        session.add(Ticket(order_id=complaint.order.order_id,
                           customer_id=complaint.order.customer_id, channel="app",
                           text="The bananas were warm and brown.", category="temperature",
                           created_at=complaint.at))
    return complaint


def documents(complaint: Complaint) -> dict[str, dict[str, Any]]:
    return dict(epcis_docs.documents(complaint, NOW))


def post_document(client: FlaskClient, doc: Any, name: str = "supplier.jsonld") -> Any:
    body = doc if isinstance(doc, bytes | str) else json.dumps(doc)
    return client.post(f"{IMPORT}?name={name}", data=body, headers=AUTH,
                       content_type="application/ld+json")


def ledger_size(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(TraceEvent)) or 0


# --- GET /trace/items/<id> -----------------------------------------------------------------


SEGMENT_KEYS = {
    "index", "party", "actor", "location", "start", "end", "hours", "sensor", "sampling_s",
    "sampling_inferred", "n_readings", "n_missing_values", "n_outside", "known_h", "unknown_h",
    "coverage_pct", "gaps", "min_c", "max_c", "mean_c", "first_c", "last_c", "mkt_c", "limit_c",
    "hours_above_limit", "longest_above_limit_h", "degree_hours_above_limit", "safety_limit_c",
    "hours_above_safety", "longest_above_safety_h", "degree_hours_above_safety",
    "profile_threshold_c", "profile_broken", "safety_status", "excursions", "verdicts",
    "shelf_life_consumed_pct"}


def test_the_trace_of_a_reefer_failure(client: FlaskClient, reefer: Complaint) -> None:
    item_id = reefer.item.item_id
    truck = epcis_docs.truck_id(reefer)

    response = client.get(f"/api/v1/trace/items/{item_id}", headers=AUTH)

    assert response.status_code == 200, response.text
    body = response.json
    assert body is not None
    assert list(body) == ["item", "complaint", "attribution", "source", "chain", "segments",
                          "handovers", "custody_gaps", "overlaps", "qc_checks", "events",
                          "notes"]
    assert {k: body["item"][k] for k in ("id", "order_id", "product", "family", "gtin", "lot",
                                         "epc")} == {
        "id": item_id, "order_id": "O01-00003", "product": "Bananas 1 kg", "family": "tropical",
        "gtin": "06901234000429", "lot": "L261031-7",
        "epc": "https://id.gs1.org/01/06901234000429/21/I01-00003-1"}
    assert body["complaint"] == {"at": reefer.at.isoformat(), "category": "temperature"}
    assert body["source"] == {
        "party": "supplier", "actor": "urn:coldloop:loc:supplier:farm-0042",
        "location": "urn:coldloop:loc:supplier:farm-0042", "lot": "L261031-7",
        "packed_at": "2026-10-31T07:18:21+00:00", "custody_start": "2026-10-31T07:18:21+00:00",
        "custody_end": "2026-10-31T10:32:38.400000+00:00",
        "sensor": {"source": "urn:coldloop:logger:farm-0042", "placement": "air",
                   "calibrated": None}}

    verdict = body["attribution"]
    assert set(verdict) == {"party", "confidence", "explained_by_temperature", "summary",
                            "scores", "reasons"}
    assert (verdict["party"], verdict["confidence"], verdict["explained_by_temperature"]) == (
        "delivery", 0.386, True)
    assert verdict["scores"] == {"supplier": 0.0, "warehouse": 0.0, "delivery": 1.606,
                                 "customer": 0.0}
    assert verdict["summary"].startswith("delivery (39%): delivery segment")
    toward = [r for r in verdict["reasons"] if r["direction"] == "toward"]
    assert [(r["code"], r["party"], r["segment"], r["weight"]) for r in toward] == [
        ("profile_breach", "delivery", 2, 1.366), ("handed_over_warm", "delivery", 2, 0.24)]
    assert set(toward[0]) == {"code", "text", "direction", "party", "segment", "weight",
                              "confidence_factor"}
    assert "2.1 h above 18 °C" in toward[0]["text"]
    assert {r["code"] for r in verdict["reasons"]} >= {
        "record_gap", "coverage", "within_profile", "qc_passed", "sensor_placement",
        "complaint_soon_after_delivery"}

    chain = body["chain"]
    assert (chain["limit_c"], chain["safety_limit_c"], chain["hours"], chain["coverage_pct"],
            chain["shelf_life_remaining_pct"], chain["safety_status"]) == (
        18.0, 25.0, 46.702, 50.51, 94.41, "ok")

    segments = body["segments"]
    assert all(set(s) == SEGMENT_KEYS for s in segments)
    assert [(s["index"], s["party"], s["actor"].rsplit(":", 1)[1], s["n_readings"],
             s["coverage_pct"]) for s in segments] == [
        (0, "supplier", "farm-0042", 13, 100.0), (1, "warehouse", "wh-1", 52, 100.0),
        (2, "delivery", truck, 22, 100.0), (3, "customer", "C00188", 9, 7.96)]
    delivery = segments[2]
    assert delivery["sensor"] == {"source": f"truck:{truck}", "placement": "air",
                                  "calibrated": None}
    assert (delivery["min_c"], delivery["max_c"], delivery["mean_c"], delivery["mkt_c"]) == (
        13.11, 25.32, 16.927, 17.829)
    assert (delivery["hours_above_limit"], delivery["longest_above_limit_h"],
            delivery["degree_hours_above_limit"], delivery["shelf_life_consumed_pct"],
            delivery["profile_broken"]) == (2.056, 2.056, 7.07, 1.6, True)
    assert [(v["rule"], v["status"]) for v in delivery["verdicts"]] == [
        ("single", "breach"), ("cumulative", "breach"), ("safety", "ok")]
    assert delivery["excursions"] == [{
        "start": "2026-11-01T02:50:15.476190+00:00", "end": "2026-11-01T04:53:37+00:00",
        "hours": 2.056, "peak_c": 24.36, "degree_hours": 7.07}]
    assert [s["profile_broken"] for s in segments] == [False, False, True, False]
    assert segments[3]["profile_threshold_c"] == 25.0  # a home is judged on safety
    assert segments[3]["gaps"] == [{"start": "2026-11-01T06:53:37+00:00",
                                    "end": "2026-11-02T06:00:27.521000+00:00",
                                    "hours": 23.114}]
    assert "readings" not in delivery

    assert [(h["from"], h["to"], h["segment"], h["shelf_life_remaining_pct"])
            for h in body["handovers"]] == [
        ("supplier", "warehouse", 0, 99.32), ("warehouse", "delivery", 1, 96.64),
        ("delivery", "customer", 2, 95.04)]
    assert body["handovers"][2]["at"] == "2026-11-01T04:53:37+00:00"
    assert (body["custody_gaps"], body["overlaps"], body["notes"]) == ([], [], [])
    assert body["qc_checks"] == [{
        "at": "2026-10-31T10:37:38.400000+00:00", "party": "warehouse", "passed": True,
        "core_c": 13.43,
        "note": "urn:coldloop:partner:O01-00003:I01-00003-1:intake-qc (import:warehouse.jsonld)"}]
    events = body["events"]
    assert [e["seq"] for e in events] == list(range(8))
    assert [(e["biz_step"], e["party"], e["source"]) for e in events[:3]] == [
        ("commissioning", "supplier", "import:supplier.jsonld"),
        ("shipping", "supplier", "import:supplier.jsonld"),
        ("receiving", "warehouse", "import:warehouse.jsonld")]
    assert set(events[0]) == {"seq", "event_id", "time", "biz_step", "party", "source"}
    assert events[0]["event_id"] == "urn:coldloop:partner:O01-00003:I01-00003-1:packed"


def test_readings_on_request(client: FlaskClient, reefer: Complaint) -> None:
    url = f"/api/v1/trace/items/{reefer.item.item_id}"
    truck = next(s for s in reefer.history.segments if s.custodian == "truck")

    body = client.get(f"{url}?readings=true", headers=AUTH).json
    assert body is not None

    for segment in body["segments"]:
        assert len(segment["readings"]) == segment["n_readings"]
        assert set(segment["readings"][0]) == {"time", "temp_c"}
    delivery = body["segments"][2]["readings"]
    assert [r["temp_c"] for r in delivery] == [t for _, t in truck.readings]
    assert delivery[0] == {"time": "2026-10-31T23:29:48+00:00", "temp_c": 13.2}
    without = client.get(f"{url}?readings=false", headers=AUTH).json
    assert without is not None
    assert "readings" not in without["segments"][0]


@pytest.mark.parametrize(("query", "field", "problem"), [
    ("readings=maybe", "readings", "input should be a valid boolean"),
    ("reading=true", "reading", "unknown query parameter"),
])
def test_a_bad_trace_query_is_422(client: FlaskClient, query: str, field: str,
                                  problem: str) -> None:
    response = client.get(f"/api/v1/trace/items/IT-1?{query}", headers=AUTH)

    assert response.status_code == 422
    body = response.json
    assert body is not None
    assert body["fields"][field].startswith(problem)


def test_an_item_without_records_has_an_empty_trace(client: FlaskClient) -> None:
    body = client.get("/api/v1/trace/items/IT-1", headers=AUTH).json
    assert body is not None

    assert body["item"]["id"] == "IT-1"
    assert (body["attribution"], body["source"], body["chain"], body["complaint"]) == (
        None, None, None, None)
    assert body["segments"] == body["handovers"] == body["events"] == body["qc_checks"] == []


@pytest.mark.parametrize(("path", "message"), [
    ("/api/v1/trace/items/NOPE", "item 'NOPE' does not exist"),
    ("/api/v1/trace/items/NOPE/epcis", "no such item: NOPE"),
    ("/api/v1/trace/orders/O-404", "order 'O-404' does not exist"),
])
def test_unknown_ids_are_404(client: FlaskClient, path: str, message: str) -> None:
    response = client.get(path, headers=AUTH)

    assert response.status_code == 404
    assert response.json == {"error": message}


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/v1/trace/items/IT-1"), ("GET", "/api/v1/trace/orders/O-1"),
    ("GET", "/api/v1/trace/items/IT-1/epcis"), ("POST", f"{IMPORT}?name=supplier"),
])
def test_the_trace_api_needs_the_token(client: FlaskClient, method: str, path: str) -> None:
    response = client.open(path, method=method, data="{}")

    assert response.status_code == 401
    body = response.json
    assert body is not None
    assert body["error"].startswith("missing Authorization header")


# --- GET /trace/orders/<id> ----------------------------------------------------------------


def test_an_orders_attribution_per_item(client: FlaskClient, reefer: Complaint) -> None:
    response = client.get(f"/api/v1/trace/orders/{reefer.order.order_id}", headers=AUTH)

    assert response.status_code == 200
    body = response.json
    assert body is not None
    assert body["order_id"] == "O01-00003"
    first, *others = body["items"]
    assert set(first) == {"item_id", "product", "family", "lot", "events", "segments", "party",
                          "confidence", "explained_by_temperature", "summary"}
    assert (first["item_id"], first["product"], first["events"], first["segments"],
            first["party"], first["confidence"]) == (
        reefer.item.item_id, "Bananas 1 kg", 8, 4, "delivery", 0.386)
    assert first["summary"].startswith("delivery (39%): ")
    # the order's other items: nothing on record, so nothing to attribute
    assert [(i["item_id"], i["events"], i["party"], i["confidence"], i["summary"])
            for i in others] == [("I01-00003-2", 0, None, None, None),
                                 ("I01-00003-3", 0, None, None, None)]


# --- GET /trace/items/<id>/epcis -----------------------------------------------------------


def test_the_export_is_valid_epcis_with_the_items_events(client: FlaskClient,
                                                         reefer: Complaint) -> None:
    response = client.get(f"/api/v1/trace/items/{reefer.item.item_id}/epcis", headers=AUTH)

    assert response.status_code == 200
    assert response.mimetype == "application/ld+json"
    doc = json.loads(response.data)
    assert epcis.problems(doc) == []
    assert doc["creationDate"] == "2026-11-20T09:30:00.000Z"  # the app's clock
    events = doc["epcisBody"]["eventList"]
    assert [e["eventID"].rsplit(":", 1)[1] for e in events] == [
        "packed", "shipped", "received", "intake-qc", "stored", "loaded", "delivered",
        "bag-logger"]


def test_an_item_without_records_exports_an_empty_document(client: FlaskClient) -> None:
    doc = client.get("/api/v1/trace/items/IT-1/epcis", headers=AUTH).json
    assert doc is not None

    assert doc["epcisBody"]["eventList"] == []
    assert epcis.problems(doc) == []


# --- POST /trace/import --------------------------------------------------------------------


def test_import_appends_once_and_a_resend_is_acknowledged(
        client: FlaskClient, factory: sessionmaker[Session], world: Scenario) -> None:
    complaint = with_fault(world, "truck_reefer")
    docs = documents(complaint)

    first = post_document(client, docs["supplier"], "supplier.jsonld")
    again = post_document(client, docs["supplier"], "supplier.jsonld")
    warehouse = post_document(client, docs["warehouse"], "wh-1_partner")

    assert (first.status_code, first.json) == (
        201, {"appended": 2, "events": 2, "first_seq": 0, "last_seq": 1})
    assert (again.status_code, again.json) == (
        200, {"appended": 0, "events": 2, "first_seq": 0, "last_seq": 1})
    assert (warehouse.status_code, warehouse.json) == (
        201, {"appended": 4, "events": 4, "first_seq": 2, "last_seq": 5})
    trace = client.get(f"/api/v1/trace/items/{complaint.item.item_id}", headers=AUTH).json
    assert trace is not None
    assert [e["source"] for e in trace["events"]] == ["import:supplier.jsonld"] * 2 + [
        "import:wh-1_partner"] * 4
    assert [s["party"] for s in trace["segments"]] == ["supplier", "warehouse", "delivery"]


def test_an_exported_document_imports_as_already_there(client: FlaskClient,
                                                       reefer: Complaint) -> None:
    exported = client.get(f"/api/v1/trace/items/{reefer.item.item_id}/epcis", headers=AUTH)

    response = post_document(client, exported.data, "roundtrip")

    assert (response.status_code, response.json) == (
        200, {"appended": 0, "events": 8, "first_seq": 0, "last_seq": 7})


def test_an_invalid_document_is_422_naming_the_schema_error(
        client: FlaskClient, factory: sessionmaker[Session], world: Scenario) -> None:
    doc = documents(with_fault(world, "none"))["warehouse"]
    doc["epcisBody"]["eventList"][1]["eventTime"] = "last tuesday"

    response = post_document(client, doc)

    assert response.status_code == 422
    assert set(response.json) == {"error", "problems"}
    assert response.json["problems"] == [
        "epcisBody/eventList/1/eventTime: 'last tuesday' is not a 'date-time'"]
    assert "not a valid EPCIS 2.0 document" in response.json["error"]
    assert ledger_size(factory) == 0


@pytest.mark.parametrize(("body", "problem"), [
    (b"{not json", "supplier.jsonld: not valid JSON"),
    (b"[]", "supplier.jsonld: an EPCIS document is a JSON object, got list"),
    (b"", "supplier.jsonld: not valid JSON"),
])
def test_a_body_that_is_no_document_is_422(client: FlaskClient, body: bytes,
                                           problem: str) -> None:
    response = post_document(client, body)

    assert response.status_code == 422
    assert response.json["error"].startswith(problem)
    assert response.json["problems"] == [response.json["error"]]


def test_a_changed_resend_is_409_and_changes_nothing(
        client: FlaskClient, factory: sessionmaker[Session], world: Scenario) -> None:
    docs = documents(with_fault(world, "none"))
    assert post_document(client, docs["supplier"]).status_code == 201
    changed = docs["supplier"]
    changed["epcisBody"]["eventList"][0]["disposition"] = "damaged"
    changed["epcisBody"]["eventList"].append(docs["warehouse"]["epcisBody"]["eventList"][0])

    response = post_document(client, changed)

    assert response.status_code == 409
    assert "never changed" in response.json["error"]
    assert ledger_size(factory) == 2  # the new event of the refused document was not kept


def test_a_document_over_the_size_limit_is_413(client: FlaskClient,
                                               factory: sessionmaker[Session]) -> None:
    body = b" " * (epcis.MAX_DOCUMENT_BYTES + 1)

    response = post_document(client, body)

    assert response.status_code == 413
    assert response.json == {"error": f"EPCIS document is over the limit of "
                                      f"{epcis.MAX_DOCUMENT_BYTES} bytes; split it into "
                                      "several documents"}
    assert ledger_size(factory) == 0


def test_documents_larger_than_other_api_bodies_are_accepted(
        client: FlaskClient, app: Flask, world: Scenario) -> None:
    complaint = with_fault(world, "none")
    doc = documents(complaint)["warehouse"]
    store = next(s for s in complaint.history.segments if s.custodian == "warehouse")
    many = [(store.start + (store.end - store.start) * n / 3000, 3.0) for n in range(3000)]
    doc["epcisBody"]["eventList"][2]["sensorElementList"] = [epcis.temperature_element(
        start=store.start, end=store.end, device="urn:coldloop:logger:wh-1", readings=many)]
    body = json.dumps(doc)
    assert len(body) > app.config["MAX_CONTENT_LENGTH"]

    response = post_document(client, body, "warehouse")

    assert (response.status_code, response.json["appended"]) == (201, 4)


@pytest.mark.parametrize("name", ["", "a" * 41, "bad name", "../etc", "süd"])
def test_the_sender_name_is_checked(client: FlaskClient, name: str) -> None:
    response = post_document(client, b"{}", name)

    assert response.status_code == 422
    assert set(response.json["fields"]) == {"name"}


def test_the_sender_name_is_required(client: FlaskClient) -> None:
    response = client.post(IMPORT, data=b"{}", headers=AUTH)

    assert response.status_code == 422
    body = response.json
    assert body is not None
    assert body["fields"] == {"name": "required query parameter is missing"}


def test_a_truck_log_and_documents_over_http_give_the_same_trace(
        client: FlaskClient, world: Scenario) -> None:
    complaint = with_fault(world, "truck_reefer")
    for sender, doc in documents(complaint).items():
        assert post_document(client, doc, f"{sender}.jsonld").status_code == 201
    truck = next(s for s in complaint.history.segments if s.custodian == "truck")
    log = {"upload_id": "route-1", "readings": [
        {"ts": at.isoformat(), "temp_c": temp} for at, temp in truck.readings]}
    uploaded = client.post(f"/api/v1/trucks/{epcis_docs.truck_id(complaint)}/temperature-log",
                           json=log, headers=AUTH)
    assert uploaded.status_code == 201, uploaded.text

    body = client.get(f"/api/v1/trace/items/{complaint.item.item_id}", headers=AUTH).json
    assert body is not None

    assert body["attribution"]["party"] == "delivery"
    assert body["segments"][2]["sensor"]["source"] == f"truck:{epcis_docs.truck_id(complaint)}"
