"""The admin web UI through Flask's test client, over a real database."""

from __future__ import annotations

import random
import re
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from hub import returns
from hub.models import (
    Gateway,
    GradeRecord,
    QuarantinedMessage,
    Scan,
)
from tests.hub.conftest import T0
from tests.hub.ui_helpers import PASSWORD, USER, admin_app, csrf_token, logged_in, login


@pytest.fixture
def returned(factory: sessionmaker[Session]) -> str:
    """Run one return through: complaint, collection, scan and grades; return the code."""
    with factory.begin() as session:
        _, pickup = returns.open_return(session, order_id="O-1", item_id="IT-1", channel="app",
                                        text="Mouldy <b>strawberries</b>.", now=T0,
                                        rng=random.Random(5))
        returns.open_return(session, order_id="O-1", item_id="IT-2", channel="hotline",
                            text="Spinach too.", now=T0, rng=random.Random(6))
        returns.collect(session, code=pickup.code, driver="driver-7", location="Minhang",
                        now=T0 + timedelta(hours=2))
        code = pickup.code
    with factory.begin() as session:
        for seq, (item_id, grade) in enumerate([("IT-1", "scrap"), ("IT-2", "resell")]):
            ts = T0 + timedelta(hours=5, minutes=seq)
            scan_id = f"gw-1:1:{2 * seq}"
            session.add(Scan(message_id=scan_id, gateway_id="gw-1", station="pad-1",
                             item_id=item_id, tag_uid="04a1b2c3d4", lot="L2611",
                             gtin="06901234567892", core_temp_c=6.5, ts=ts, clock="synced"))
            session.add(GradeRecord(message_id=f"gw-1:1:{2 * seq + 1}", gateway_id="gw-1",
                                    station="pad-1", item_id=item_id, scan_id=scan_id,
                                    grade=grade, model_version="grader-3", scores={},
                                    features={}, ts=ts + timedelta(seconds=1), clock="synced"))
        session.add(Gateway(id="gw-1", site="sh-01", online=True, boot=2,
                            last_seen=T0 + timedelta(hours=5), backlog=0))
        session.add(Gateway(id="gw-2", site="sh-01", online=False, boot=7,
                            last_seen=T0 - timedelta(days=1), backlog=42))
        session.add(QuarantinedMessage(topic="coldloop/v1/sh-01/gw-1/evt/scan",
                                       payload=b'{"v": "9.0"}', message_id="gw-1:1:99",
                                       reason="schema major version 9 is not supported",
                                       received_at=T0))
    return code


@pytest.fixture
def app(database_url: str, factory: sessionmaker[Session]) -> Flask:
    """The hub app over the seeded database, with a known admin and clock."""
    return admin_app(database_url, factory, lambda: T0 + timedelta(hours=6))


@pytest.fixture
def admin(client: FlaskClient) -> FlaskClient:
    """A test client logged in as the admin."""
    return logged_in(client)


def stat(html: str, name: str) -> str:
    """Return the number shown on a dashboard card."""
    match = re.search(rf'id="stat-{name}".*?class="stat-value">(?:<a [^>]*>)?(\d+)', html,
                      re.DOTALL)
    assert match, f"no {name} card"
    return match[1]


# --- login ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/orders/O-1", "/orders?order_id=O-1", "/quarantine"])
def test_pages_require_login(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert response.location.startswith("/login?next=")


def test_login_page_is_self_contained(client: FlaskClient) -> None:
    html = client.get("/login").text
    assert '<form method="post" action="/login">' in html
    assert "<script" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)  # the machines are offline
    assert client.get("/static/coldloop.css").status_code == 200


@pytest.mark.parametrize("path", ["/login", "/", "/static/coldloop.css", "/api/v1/health",
                                  "/no-such-page"])
def test_every_response_forbids_scripts_frames_and_type_guessing(client: FlaskClient,
                                                                 path: str) -> None:
    headers = client.get(path).headers
    policy = headers["Content-Security-Policy"]
    assert "script-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert "default-src 'self'" in policy and "form-action 'self'" in policy
    assert (headers["X-Frame-Options"], headers["X-Content-Type-Options"]) == ("DENY",
                                                                                "nosniff")


@pytest.mark.parametrize(("user", "password"), [
    (USER, "wrong password"), ("admin", PASSWORD), ("", ""), (USER, PASSWORD + " "),
    ("管理员", "密码密码密码密码"),
])
def test_wrong_credentials_are_refused(client: FlaskClient, user: str, password: str) -> None:
    response = login(client, user, password)

    assert response.status_code == 401
    assert "Wrong user name or password." in response.text
    assert client.get("/").status_code == 302


def test_login_without_the_form_token_is_refused(client: FlaskClient) -> None:
    client.get("/login")
    response = client.post("/login", data={"username": USER, "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/").status_code == 302


def test_login_returns_to_the_page_asked_for(client: FlaskClient) -> None:
    response = login(client, USER, PASSWORD, next_page="/orders/O-1")
    assert response.location == "/orders/O-1"
    assert client.get("/orders/O-1").status_code == 200


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil"])
def test_login_never_redirects_off_site(client: FlaskClient, target: str) -> None:
    response = login(client, USER, PASSWORD, next_page=target)
    assert response.location == "/"


def test_logout_forgets_the_admin(admin: FlaskClient) -> None:
    response = admin.post("/logout", data={"csrf_token": csrf_token(admin, "/")})
    assert response.status_code == 302
    assert admin.get("/").status_code == 302


def test_logout_needs_the_form_token(admin: FlaskClient) -> None:
    assert admin.post("/logout").status_code == 400
    assert admin.get("/").status_code == 200


# --- pages ---------------------------------------------------------------------------------


def test_dashboard_of_an_empty_hub(admin: FlaskClient) -> None:
    html = admin.get("/").text
    assert stat(html, "orders") == "1"
    assert stat(html, "tickets-open") == "0"
    assert "No grades yet." in html
    assert "No gateway has reported yet." in html


def test_dashboard_shows_counts_grades_and_fleet(admin: FlaskClient, returned: str) -> None:
    response = admin.get("/")
    html = response.text

    assert response.status_code == 200
    assert {name: stat(html, name) for name in [
        "orders", "tickets-open", "pickups-issued", "pickups-collected", "scans", "grades",
        "quarantined", "gateways"]} == {
        "orders": "1", "tickets-open": "1", "pickups-issued": "1", "pickups-collected": "1",
        "scans": "2", "grades": "2", "quarantined": "1", "gateways": "1"}
    assert '<span class="badge badge-red">scrap</span>' in html
    assert '<span class="badge badge-green">resell</span>' in html
    assert "state-online" in html and "state-offline" in html
    assert "1 d ago" in html  # gw-2, last seen the day before
    assert ">42<" in html  # gw-2's backlog
    assert 'href="/orders/O-1"' in html


def test_order_page_shows_the_timeline(admin: FlaskClient, returned: str) -> None:
    html = admin.get("/orders/O-1").text

    kinds = re.findall(r'<span class="event-kind">(\w+)</span>', html)
    assert kinds == ["ticket", "pickup", "pickup", "custody", "scan", "grade", "scan", "grade"]
    assert returned in html
    assert "Picked up by driver-7 at Minhang" in html
    assert "core 6.5 °C" in html
    assert "Mouldy &lt;b&gt;strawberries&lt;/b&gt;." in html  # customer text is escaped
    assert "via hotline ---" in html
    assert "Li Wei" in html


def test_order_search_opens_the_order(admin: FlaskClient) -> None:
    assert admin.get("/orders?order_id=+O-1+").location == "/orders/O-1"
    assert admin.get("/orders?order_id=").location == "/"


def test_unknown_order_is_a_404_page(admin: FlaskClient) -> None:
    response = admin.get("/orders/O-404")
    assert response.status_code == 404
    assert "There is no order &#39;O-404&#39;." in response.text
    assert response.mimetype == "text/html"


def test_quarantine_page_lists_messages(admin: FlaskClient, returned: str) -> None:
    html = admin.get("/quarantine").text
    assert "schema major version 9 is not supported" in html
    assert "coldloop/v1/sh-01/gw-1/evt/scan" in html
    assert "{&#34;v&#34;: &#34;9.0&#34;}" in html


def test_empty_quarantine(admin: FlaskClient) -> None:
    assert "Nothing in quarantine." in admin.get("/quarantine").text


def test_dashboard_shows_the_last_model_trial(admin: FlaskClient, returned: str,
                                              factory: sessionmaker[Session]) -> None:
    from hub import commands
    from protocols.messages import ConfigDocument

    report = ConfigDocument.model_validate({
        "version": 0, "status": "applied", "model_version": "grader-2", "ts": T0.isoformat(),
        "command": {"name": "model", "id": None, "status": "promoted", "error": None,
                    "shadow": {"model": "grader-2", "scans": 50, "agreement": 0.96}}})
    with factory.begin() as session:
        commands.record_reported(session, "sh-01", "gw-1", report)
    html = admin.get("/").text
    assert "grader-2: promoted, 96 % agreement over 50 scans" in html
