"""The tickets API: channel webhooks, the workflow over HTTP, evidence uploads, agents."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

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
        customer.phone = PHONE


def post(client: FlaskClient, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    """POST JSON with the token; return status and JSON."""
    response = client.post(f"/api/v1{path}", json=body, headers=AUTH)
    return response.status_code, response.get_json()


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
    listed = client.get("/api/v1/tickets?status=new&assignee=ana", headers=AUTH).get_json()
    assert [t["id"] for t in listed["tickets"]] == [first["ticket_id"]]


def test_the_workflow_over_http_refuses_illegal_transitions_with_409(
        client: FlaskClient) -> None:
    post(client, "/agents/ana", AGENT)
    post(client, "/agents/ana/shift", {"on_shift": True})
    ticket_id = post(client, "/intake/app", APP)[1]["ticket_id"]

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
    post(client, "/agents/ana", AGENT)
    post(client, "/agents/ana/shift", {"on_shift": True})
    ticket_id = post(client, "/intake/app", APP)[1]["ticket_id"]
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
