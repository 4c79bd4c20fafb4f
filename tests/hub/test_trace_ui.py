"""The item trace page of the admin UI: verdict, source, QC, segments and their charts."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from firmware_sim import epcis_docs
from firmware_sim.demo import seed_hub
from firmware_sim.scenario import Complaint, Scenario, generate
from hub import epcis
from hub.models import Ticket
from tests.hub.conftest import T0
from tests.hub.test_trace import record, with_fault
from tests.hub.ui_helpers import admin_app, logged_in


@pytest.fixture
def app(database_url: str, factory: sessionmaker[Session]) -> Flask:
    """The hub app over the seeded database, with a known admin and clock."""
    return admin_app(database_url, factory, lambda: T0 + timedelta(hours=6))


@pytest.fixture
def admin(client: FlaskClient) -> FlaskClient:
    """A test client logged in as the admin."""
    return logged_in(client)


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return generate(3, 120)


def reefer_failure(factory: sessionmaker[Session], scenario: Scenario, *,
                   truck_log: bool = True) -> Complaint:
    """Bananas whose truck's reefer failed, recorded as partners and the driver send it."""
    seed_hub(factory, scenario)
    complaint = with_fault(scenario, "truck_reefer")
    record(factory, complaint, truck_log=truck_log)
    with factory.begin() as session:
        session.add(Ticket(order_id=complaint.order.order_id,
                           customer_id=complaint.order.customer_id, channel="app",
                           text="Warm bananas.", category="temperature",
                           created_at=complaint.at))
    return complaint


def section(html: str, ident: str) -> str:
    """The HTML of the element with id ``ident`` (a section or article of the page)."""
    match = re.search(rf'<(section|article)[^>]* id="{ident}".*?</\1>', html, re.DOTALL)
    assert match, f"no #{ident} on the page"
    return match[0]


def charts(html: str) -> list[str]:
    return re.findall(r'<svg class="temp-chart".*?</svg>', html, re.DOTALL)


def test_the_trace_page_of_a_reefer_failure(admin: FlaskClient,
                                            factory: sessionmaker[Session],
                                            scenario: Scenario) -> None:
    complaint = reefer_failure(factory, scenario)
    truck = epcis_docs.truck_id(complaint)

    response = admin.get(f"/trace/{complaint.item.item_id}")

    assert response.status_code == 200
    html = response.text
    verdict = section(html, "verdict")
    assert '<div class="verdict-party">Delivery</div>' in verdict
    assert '<strong id="confidence">39 %</strong>' in verdict
    assert re.findall(r'data-code="(\w+)"', verdict) == ["profile_breach", "handed_over_warm"]
    assert "2.1 h above 18 °C" in verdict and "Explained by temperature" in verdict

    source = section(html, "source")
    assert "farm-0042" in source and "L261031-7" in source
    assert "2026-10-31 07:18 UTC" in source  # packed at
    qc = section(html, "qc")
    assert "2026-10-31 10:37 UTC" in qc and "warehouse" in qc
    assert '<span class="badge badge-green">passed</span>' in qc and "13.4 °C" in qc

    table = section(html, "segments")
    assert len(re.findall(r'<tr id="segment-row-\d"', table)) == 4
    assert '<tr id="segment-row-2" class="row-broken">' in table
    assert "13.1 · 16.9 · 25.3 °C" in table and "17.8 °C" in table  # delivery: min-mean-max, MKT
    assert ">99 %<" in table and ">95 %<" in table  # shelf life left at the handovers

    svgs = charts(html)
    assert len(svgs) == 4
    assert all(svg.count('<line class="threshold"') == 1 for svg in svgs)
    assert ["temp-above" in svg for svg in svgs] == [False, False, True, False]
    assert 'threshold 18 °C' in svgs[2] and 'threshold 25 °C' in svgs[3]
    assert 'limit 18 °C' in svgs[3]  # the customer is judged on safety; the limit still shows
    assert ">no record</text>" in svgs[3]  # the bag's logger stopped two hours after delivery
    assert "no record" not in svgs[2]
    assert truck in section(html, "segment-2")

    assert "<script" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)  # self-contained: no external assets
    assert f'href="/trace/{complaint.item.item_id}/epcis.jsonld"' in html
    assert "None: every moment of the chain has exactly one custodian on record." in html
    assert len(re.findall(r"<tr data-code=", section(html, "evidence"))) == 12
    assert len(re.findall(r'<td class="num">\d+</td>', section(html, "events"))) == 8


def test_a_segment_without_a_record_is_a_grey_band(admin: FlaskClient,
                                                   factory: sessionmaker[Session],
                                                   scenario: Scenario) -> None:
    complaint = reefer_failure(factory, scenario, truck_log=False)

    html = admin.get(f"/trace/{complaint.item.item_id}").text

    delivery = charts(html)[2]
    assert "temp-line" not in delivery
    assert "No temperature record for this segment" in delivery
    assert re.search(r'<rect x="40\.0" y="22" width="540\.0" height="152"', delivery)
    assert '<span class="badge badge-grey">no record</span>' in section(html, "segment-2")
    assert "no temperature record for the delivery segment" in section(html, "evidence")


def test_an_item_without_records(admin: FlaskClient) -> None:
    response = admin.get("/trace/IT-1")

    assert response.status_code == 200
    assert "No custody event of this item is on record" in response.text
    assert "No quality check of this item is on record." in response.text
    assert charts(response.text) == []


def test_an_unknown_item_is_a_404_page(admin: FlaskClient) -> None:
    for path in ("/trace/NOPE", "/trace/NOPE/epcis.jsonld"):
        response = admin.get(path)
        assert response.status_code == 404
        assert response.mimetype == "text/html"
        assert "There is no item &#39;NOPE&#39;." in response.text


@pytest.mark.parametrize("path", ["/trace/IT-1", "/trace/IT-1/epcis.jsonld"])
def test_the_trace_needs_a_login(client: FlaskClient, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 302
    assert response.location == f"/login?next={path}"


def test_the_order_page_links_each_item_to_its_trace(admin: FlaskClient) -> None:
    html = admin.get("/orders/O-1").text

    assert 'href="/trace/IT-1"' in html and 'href="/trace/IT-2"' in html


def test_the_epcis_download(admin: FlaskClient, factory: sessionmaker[Session],
                            scenario: Scenario) -> None:
    complaint = reefer_failure(factory, scenario)

    response = admin.get(f"/trace/{complaint.item.item_id}/epcis.jsonld")

    assert response.status_code == 200
    assert response.mimetype == "application/ld+json"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="I01-00003-1.epcis.jsonld"')
    doc = json.loads(response.data)
    assert epcis.problems(doc) == []
    assert len(doc["epcisBody"]["eventList"]) == 8
