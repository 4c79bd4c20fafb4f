"""The tickets API: channel webhooks, the workflow over HTTP, evidence uploads, agents."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from hub import phones
from hub.models import Customer
from tests.hub.conftest import AUTH

PHONE = "+86 138 0000 0001"
APP = {"message_id": "m-1", "user_id": "C-1", "order_id": "O-1", "item_ids": ["IT-1"],
       "text": "The strawberries are mouldy"}
HOTLINE = {"call_id": "call-1", "caller_phone": PHONE, "phone_verified": True,
           "order_id": "O-1", "turns": [{"speaker": "customer", "text": "Mouldy berries!"}]}
AGENT = {"name": "Ana", "skills": ["*"], "languages": [], "capacity": 3, "online": True}


@pytest.fixture(autouse=True)
def _phone(factory: sessionmaker[Session]) -> None:
    with factory.begin() as session:
        customer = session.get(Customer, "C-1")
        assert customer is not None
        customer.phone = phones.normalise(PHONE)  # as the orders API stores it


def post(client: FlaskClient, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    """POST JSON with the token; return status and JSON."""
    response = client.post(f"/api/v1{path}", json=body, headers=AUTH)
    return response.status_code, response.get_json()


def ticket_for_ana(client: FlaskClient) -> int:
    """Sign agent ana on and file the app complaint, which goes to her; return its ticket."""
    post(client, "/agents/ana", AGENT)
    post(client, "/agents/ana/shift", {"on_shift": True})
    return int(post(client, "/intake/app", APP)[1]["ticket_id"])


def test_a_complaint_on_two_channels_is_one_ticket_over_http(client: FlaskClient) -> None:
    assert post(client, "/agents/ana", AGENT)[0] == 201
    assert post(client, "/agents/ana/shift", {"on_shift": True})[0] == 200

    status, first = post(client, "/intake/app", APP)
    assert status == 201 and first["created"] and first["assignee_id"] == "ana"
    status, second = post(client, "/intake/hotline", HOTLINE)
    assert (status, second["ticket_id"], second["created"]) == (200, first["ticket_id"], False)
    status, again = post(client, "/intake/hotline", HOTLINE)
    assert (status, again["duplicate"], again["message_id"]) == (200, True, second["message_id"])

    detail = client.get(f"/api/v1/tickets/{first['ticket_id']}", headers=AUTH).get_json()
    assert [m["channel"] for m in detail["messages"]] == ["app", "hotline"]
    assert detail["assignment"]["agent_id"] == "ana"
    assert {c["target"]: c["state"] for c in detail["clocks"]} == {
        "ACK": "RUNNING", "FIRST_CONTACT": "RUNNING", "RESOLUTION": "RUNNING",
        "FOLLOW_UP": "PENDING"}
    assert detail["transitions"][0]["to"] == "new"
    assert detail["call_back"] == {"number": "+8613800000001", "source": "customer record",
                                   "verified": True}
    assert set(detail["context"]["urgency"]) == {"triage", "raised", "situation"}
    assert detail["related"] == []  # the customer's other tickets
    listed = client.get("/api/v1/tickets?status=new&assignee=ana", headers=AUTH).get_json()
    assert [t["id"] for t in listed["tickets"]] == [first["ticket_id"]]
    for query in ("q=O-1", "q=mouldy+berries", f"q=%23{first['ticket_id']}", "q=C-1"):
        found = client.get(f"/api/v1/tickets?{query}", headers=AUTH).get_json()["tickets"]
        assert [t["id"] for t in found] == [first["ticket_id"]], query
    assert client.get("/api/v1/tickets?q=melted", headers=AUTH).get_json()["tickets"] == []
    refused = client.get("/api/v1/tickets?q=+", headers=AUTH)
    assert refused.status_code == 422 and refused.get_json()["fields"] == {
        "q": "give a ticket number, an order, a customer or words"}


def test_the_workflow_over_http_refuses_illegal_transitions_with_409(
        client: FlaskClient) -> None:
    ticket_id = ticket_for_ana(client)

    status, refused = post(client, f"/tickets/{ticket_id}/transitions",
                           {"to": "resolved", "actor": "ana", "resolution": "refund"})
    assert status == 409
    assert "cannot go from new to resolved" in refused["error"]

    status, moved = post(client, f"/tickets/{ticket_id}/transitions",
                         {"to": "confirming", "actor": "ana", "reason": "on it"})
    assert status == 201
    assert (moved["transition"]["from"], moved["transition"]["to"]) == ("new", "confirming")
    status, bad = post(client, f"/tickets/{ticket_id}/transitions",
                       {"to": "handling", "actor": "ana", "handling": "maybe"})
    assert status == 422 and "handling" in bad["fields"]
    assert post(client, f"/tickets/{ticket_id}/messages",
                {"author": "ana", "text": "We are refunding", "kind": "message"})[0] == 201
    assert post(client, "/tickets/999/transitions", {"to": "closed", "actor": "a"})[0] == 404


def test_evidence_upload_multipart_and_raw(client: FlaskClient) -> None:
    ticket_id = post(client, "/intake/app", APP)[1]["ticket_id"]
    photo = b"\x89PNG\r\n\x1a\n" + b"pixels" * 50

    first = client.post(f"/api/v1/tickets/{ticket_id}/evidence?by=user:C-1", headers=AUTH,
                        data={"file": (io.BytesIO(photo), "berries.png", "image/png")},
                        content_type="multipart/form-data")
    raw = client.post(f"/api/v1/tickets/{ticket_id}/evidence", headers=AUTH, data=photo,
                      content_type="image/png")
    wrong = client.post(f"/api/v1/tickets/{ticket_id}/evidence", headers=AUTH, data=b"x",
                        content_type="application/zip")

    assert first.status_code == 201, first.get_json()
    body = first.get_json()
    assert body["sha256"] == hashlib.sha256(photo).hexdigest()
    assert (body["filename"], body["size"], body["uploaded_by"]) == (
        "berries.png", len(photo), "user:C-1")
    assert (raw.status_code, raw.get_json()["id"]) == (200, body["id"])
    assert wrong.status_code == 422 and "content type" in wrong.get_json()["error"]


def test_agents_and_shift_handover_over_http(client: FlaskClient) -> None:
    ticket_id = ticket_for_ana(client)
    assert post(client, "/agents/ana", AGENT)[0] == 409
    response = client.put("/api/v1/agents/bo", json=AGENT | {"name": "Bo"}, headers=AUTH)
    assert response.status_code == 200 and response.get_json()["on_shift"] is False
    post(client, "/agents/bo/shift", {"on_shift": True})

    status, ended = post(client, "/agents/ana/shift", {"on_shift": False})
    assert status == 200
    assert ended["handed_over"] == [{"ticket_id": ticket_id, "to": "bo"}]
    assert ended["agent"]["on_shift"] is False
    status, bad = post(client, "/agents/ana", AGENT | {"capacity": -1})
    assert status == 422 and "capacity" in bad["fields"]
    assert post(client, "/intake/fax", APP)[0] == 404
    status, missing = post(client, "/intake/app", {k: v for k, v in APP.items()
                                                   if k != "user_id"})
    assert status == 422 and missing["fields"] == {"user_id": "required field is missing"}


def test_an_agent_put_on_leave_over_http_hands_over_their_tickets(
        client: FlaskClient) -> None:
    ticket_id = ticket_for_ana(client)
    post(client, "/agents/bo", AGENT | {"name": "Bo"})
    post(client, "/agents/bo/shift", {"on_shift": True})

    response = client.put("/api/v1/agents/ana", json=AGENT | {"active": False}, headers=AUTH)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["active"], body["on_shift"]) == (False, False)
    assert (body["handed_over"], body["assigned"]) == ([{"ticket_id": ticket_id, "to": "bo"}],
                                                       0)
    detail = client.get(f"/api/v1/tickets/{ticket_id}", headers=AUTH).get_json()
    assert detail["assignee_id"] == "bo"

    for bad, field, problem in (({"skills": ["mouldy"]}, "skills", "'mouldy' is not a category"),
                                ({"languages": ["fr"]}, "languages", "'fr' is not a language"),
                                ({"team": "qc"}, None, "team 'qc' has no queue")):
        response = client.put("/api/v1/agents/bo", json=AGENT | bad, headers=AUTH)
        assert response.status_code == 422, bad
        error = response.get_json()
        assert problem in (error["fields"][field] if field else error["error"])
    for reserved in ("admin", "sla"):  # the tests' administrator is "admin"
        refused = client.put(f"/api/v1/agents/{reserved}", json=AGENT, headers=AUTH)
        assert refused.status_code == 422, reserved
    bo = client.get("/api/v1/tickets?assignee=bo", headers=AUTH).get_json()["tickets"]
    assert [t["id"] for t in bo] == [ticket_id]  # the refused puts changed nothing

    listed = client.get("/api/v1/agents", headers=AUTH).get_json()["agents"]
    assert [(a["id"], a["active"], a["open_tickets"]) for a in listed] == [
        ("ana", False, 0), ("bo", True, 1)]
    one = client.get("/api/v1/agents/bo", headers=AUTH).get_json()
    assert (one["name"], one["on_shift"], one["open_tickets"]) == ("Bo", True, 1)
    assert "password_hash" not in one
    assert [(c["actor"], c["action"]) for c in one["changes"]] == [
        ("api", "shift_started"), ("api", "created")]
    ana = client.get("/api/v1/agents/ana", headers=AUTH).get_json()
    assert ana["changes"][0]["changes"] == {"active": [True, False], "on_shift": [True, False]}
    assert client.get("/api/v1/agents/zed", headers=AUTH).status_code == 404


def test_manual_assignment_over_http(client: FlaskClient) -> None:
    post(client, "/agents/ana", AGENT)
    post(client, "/agents/ana/shift", {"on_shift": True})
    post(client, "/agents/bo", AGENT | {"name": "Bo"})  # not on shift
    ticket_id = post(client, "/intake/app", APP)[1]["ticket_id"]  # to ana
    path = f"/tickets/{ticket_id}/assign"

    status, refused = post(client, path, {"agent_id": "bo", "actor": "sue"})
    assert status == 422 and "off shift: agent bo is not on shift" in refused["error"]
    status, refused = post(client, path, {"agent_id": "bo", "actor": "sue", "override": True})
    assert status == 422 and "reason is required to override" in refused["error"]
    status, moved = post(client, path, {"agent_id": "bo", "actor": "sue", "override": True,
                                        "reason": "bo speaks to this customer today"})
    assert status == 200, moved
    assert (moved["id"], moved["assignee_id"]) == (ticket_id, "bo")
    assert {k: moved["assignment"][k] for k in ("agent_id", "rule", "actor", "note")} == {
        "agent_id": "bo", "rule": "manual", "actor": "sue",
        "note": "bo speaks to this customer today"}
    assert moved["assignment"]["scores"]["override"] is True

    assert post(client, path, {"agent_id": "zed", "actor": "sue"})[0] == 404
    assert post(client, "/tickets/999/assign", {"agent_id": "ana", "actor": "sue"})[0] == 404
    status, bad = post(client, path, {"agent_id": "ana"})
    assert status == 422 and bad["fields"] == {"actor": "required field is missing"}
    other = post(client, "/intake/app", APP | {"message_id": "m-2", "order_id": None,
                                               "item_ids": []})[1]["ticket_id"]  # no order
    assert post(client, f"/tickets/{other}/transitions",
                {"to": "merged", "actor": "sue", "merged_into": ticket_id})[0] == 201
    status, conflict = post(client, f"/tickets/{other}/assign",
                            {"agent_id": "ana", "actor": "sue"})
    assert status == 409 and f"was merged into ticket {ticket_id}" in conflict["error"]


def test_shift_windows_are_validated_and_shifts_set_by_hand_are_recorded(
        client: FlaskClient) -> None:
    bad = AGENT | {"shifts": [{"days": [1, 8], "start": "9am", "end": "1²:00"},
                              {"days": [6], "start": "10:00", "end": "10:00"}]}
    status, refused = post(client, "/agents/ana", bad)
    assert status == 422
    assert refused["fields"] == {
        "shifts.0.days.1": "input should be less than or equal to 7 (got 8)",
        "shifts.0.start": "must be a local time HH:MM, 00:00 to 23:59 (got '9am')",
        "shifts.0.end": "must be a local time HH:MM, 00:00 to 23:59 (got '1²:00')",
        "shifts.1": "start and end are both 10:00: a window needs a length (an end before "
                    "the start runs past midnight) (got an object)"}
    night = {"days": [5, 6], "start": "22:00", "end": "06:00"}
    status, created = post(client, "/agents/ana", AGENT | {"shifts": [night]})
    assert (status, created["shifts"], created["shift_set_by_hand_at"]) == (201, [night], None)
    response = client.put("/api/v1/agents/ana", json=AGENT | {"shifts": "nights"}, headers=AUTH)
    assert response.status_code == 422 and "shifts" in response.get_json()["fields"]

    status, ended = post(client, "/agents/ana/shift", {"on_shift": False})
    assert status == 200 and ended["agent"]["shift_set_by_hand_at"] == "2026-11-20T09:30:00+00:00"


def test_answered_calls_and_the_mini_program_window_over_http(client: FlaskClient) -> None:
    status, refused = post(client, "/intake/hotline", HOTLINE | {"agent_id": "ana"})
    assert status == 422 and "'ana' is not an agent of the hub" in refused["error"]
    assert client.get("/api/v1/tickets", headers=AUTH).get_json()["tickets"] == []
    post(client, "/agents/ana", AGENT)
    status, call = post(client, "/intake/hotline", HOTLINE | {"agent_id": "ana"})
    detail = client.get(f"/api/v1/tickets/{call['ticket_id']}", headers=AUTH).get_json()
    assert status == 201 and detail["first_contact_at"] == "2026-11-20T09:30:00+00:00"
    assert {c["target"]: c["state"] for c in detail["clocks"]}["FIRST_CONTACT"] == "MET"

    mini = {"msg_id": "w-1", "openid": "o-abc", "content": "菠菜烂了"}
    ticket_id = post(client, "/intake/mini_program", mini)[1]["ticket_id"]
    path = f"/tickets/{ticket_id}/messages"
    for _ in range(5):
        assert post(client, path, {"author": "ana", "text": "We are on it"})[0] == 201
    status, refused = post(client, path, {"author": "ana", "text": "One more thing"})
    assert status == 409
    assert "at most 5 messages per 48 h window" in refused["error"]
    assert "send an SMS instead" in refused["error"]
    assert post(client, path, {"author": "ana", "text": "left a voicemail",
                               "kind": "call"})[0] == 201


def test_kpis_of_a_period_with_their_cohorts(client: FlaskClient) -> None:
    ticket_id = ticket_for_ana(client)
    post(client, f"/tickets/{ticket_id}/messages",
         {"author": "ana", "text": "We are refunding", "kind": "message"})

    found = client.get("/api/v1/tickets/kpis", headers=AUTH).get_json()  # the last 7 days
    assert (found["created"], found["resolved"]) == (1, 0)
    assert found["first_response"] == {"count": 1, "median_min": 0.0, "p90_min": 0.0}
    assert found["first_contact"] == {"hits": 1, "total": 1, "value": 1.0}
    assert found["resolution_rate"] == {"hits": 0, "total": 1, "value": 0.0}
    assert found["csat"] == {"hits": 0, "total": 0, "value": None}
    assert found["agents"] == [] and found["by_category"] == {"spoiled": 1}
    assert len(found["heatmap"]) == 7 and sum(map(sum, found["heatmap"])) == 1
    assert found["until"] == "2026-11-20T09:31:00+00:00"  # the end of the current minute
    before = client.get("/api/v1/tickets/kpis?until=2026-11-01T00:00:00Z", headers=AUTH)
    assert before.get_json()["created"] == 0


@pytest.mark.parametrize(("query", "named"), [
    ("since=yesterday", "since"), ("until=2026-11-20T00:00:00", "until"),
    ("since=2026-11-20T00:00:00Z&until=2026-11-19T00:00:00Z", "must be after since"),
    ("team=", "team"), ("colour=red", "colour"),
])
def test_kpis_refuse_a_bad_period_naming_it(client: FlaskClient, query: str,
                                            named: str) -> None:
    response = client.get(f"/api/v1/tickets/kpis?{query}", headers=AUTH)
    assert response.status_code in (400, 422)
    assert named in response.get_data(as_text=True)


def test_the_open_filter_lists_every_open_status_as_the_pool_does(client: FlaskClient) -> None:
    ticket_id = ticket_for_ana(client)
    post(client, f"/tickets/{ticket_id}/transitions",
         {"to": "confirming", "actor": "ana", "reason": "on it"})

    def listed(status: str) -> list[int]:
        found = client.get(f"/api/v1/tickets?status={status}", headers=AUTH).get_json()
        return [t["id"] for t in found["tickets"]]

    assert listed("open") == listed("confirming") == [ticket_id]
    assert listed("new") == listed("closed") == []
    response = client.get("/api/v1/tickets?status=opened", headers=AUTH)
    assert response.status_code == 422
    assert "not one of awaiting_evidence, closed, confirming" in response.get_json()["error"]
    assert "open," in response.get_json()["error"]


def test_qc_reads_its_checks_and_records_a_finding_over_http(client: FlaskClient) -> None:
    ticket_id = ticket_for_ana(client)
    for to, extra in (("confirming", {}), ("handling", {"handling": "complex"})):
        status, _ = post(client, f"/tickets/{ticket_id}/transitions",
                         {"to": to, "actor": "ana", **extra})
        assert status == 201, to

    listed = client.get("/api/v1/qc/checks", headers=AUTH).get_json()["checks"]
    assert [(c["ticket_id"], c["status"], c["order_id"]) for c in listed] == [
        (ticket_id, "open", "O-1")]
    check_id = listed[0]["id"]
    status, body = post(client, f"/qc/checks/{check_id}/finding",
                        {"actor": "qc-lin", "outcome": "maybe", "finding": ""})
    assert status == 422 and set(body["fields"]) == {"outcome", "finding"}
    status, body = post(client, f"/qc/checks/{check_id}/finding",
                        {"actor": "qc-lin", "outcome": "confirmed", "finding": "mould, lot-wide"})
    assert status == 200 and (body["status"], body["done_by"]) == ("done", "qc-lin")
    assert post(client, f"/qc/checks/{check_id}/finding",
                {"actor": "qc-lin", "outcome": "confirmed", "finding": "again"})[0] == 409
    assert post(client, "/qc/checks/99/finding",
                {"actor": "qc-lin", "outcome": "confirmed", "finding": "x"})[0] == 404
    assert client.get("/api/v1/qc/checks", headers=AUTH).get_json()["checks"] == []
    done = client.get("/api/v1/qc/checks?status=done", headers=AUTH).get_json()["checks"]
    assert [c["finding"] for c in done] == ["mould, lot-wide"]
    assert client.get("/api/v1/qc/checks?status=lost", headers=AUTH).status_code == 422
    assert client.get("/api/v1/qc/checks").status_code == 401
