"""The walking skeleton end to end: the demo command on the test broker, as a user runs it."""

from __future__ import annotations

import http.cookiejar
import json
import re
import sqlite3
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from firmware_sim.demo import DEMO_AGENT_PASSWORD, DemoOptions, run_demo
from firmware_sim.scenario import shift_start
from hub.console import main


def _run_demo(broker, data_dir: Path, summary: Path, *extra: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, [
        "--data-dir", str(data_dir), "demo", "--headless", "--minutes", "12", "--seed", "5",
        "--broker", broker.url, "--summary", str(summary), *extra])


def test_headless_demo_stores_every_scan_exactly_once(broker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = _run_demo(broker, tmp_path / "var", tmp_path / "out.json")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out.json").read_text())
    assert summary["consistent"] is True
    assert summary["complaints"] == 6 == summary["tickets"] == summary["pickups_collected"]
    assert summary["items_scanned"] == summary["scans_stored"] == summary["grades_stored"] == 6
    assert summary["events_stored"] == summary["acks"] == 12  # a scan and a grade per item
    assert summary["telemetry_readings_stored"] == summary["telemetry_readings_sent"] > 0
    assert sum(summary["lights"].values()) == 6
    assert summary["sample_order"].startswith("O01-")
    # two agents on shift share the tickets, contact each customer, confirm the ticket and
    # refund once the return is graded; each customer answers the survey
    assert summary["tickets_by_status"] == {"followed_up": 6}
    assert summary["first_contact"] == {"MET": 6}
    assert sorted(summary["tickets_by_agent"]) == ["agent-01", "agent-02"]
    kpis = summary["kpis"]
    assert (kpis["first_contact_in_time"], kpis["survey_response"]) == ("6/6", "6/6")
    assert sum(kpis["agents"].values()) == 6
    assert kpis["nps_answers"] == 6 and -100 <= kpis["nps"] <= 100  # each says 0-10 too
    assert 0 < kpis["first_response_median_min"] <= 60
    assert kpis["time_to_resolution_median_min"] > kpis["first_response_median_min"]
    # The hub's ingest stamps receipts on the scenario's clock, as the web app does: the
    # gateway was last seen during the shift (on the wall clock the UI said "in the future").
    with sqlite3.connect(tmp_path / "var" / "hub.db") as db:
        (last_seen,) = db.execute("SELECT last_seen FROM gateways").fetchone()
        # the order system's phones, stored in E.164: what an agent calls the customer on
        phones = [phone for (phone,) in db.execute("SELECT phone FROM customers")]
    assert phones and all(re.fullmatch(r"\+861392026\d{4}", p) for p in phones), phones[:3]
    seen = datetime.fromisoformat(last_seen).replace(tzinfo=shift_start(1).tzinfo)
    assert shift_start(1) <= seen <= shift_start(1) + timedelta(hours=12)
    # Returns overlap as they would in a day: each complaint is filed at its own time in the
    # 12-minute shift, while earlier returns are still on their way (not one after another).
    with sqlite3.connect(tmp_path / "var" / "hub.db") as db:
        first, last = (datetime.fromisoformat(t).replace(tzinfo=shift_start(1).tzinfo)
                       for t in db.execute("SELECT min(created_at), max(created_at) "
                                           "FROM tickets").fetchone())
    assert shift_start(1) <= first <= last <= shift_start(1) + timedelta(minutes=12)


def test_second_run_on_same_data_is_the_next_day(broker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # 50 minutes: more returns (so pickup codes) than the hub's 20 draws for an unused code,
    # so the next day must not draw the first day's codes again
    for day in (1, 2):
        result = _run_demo(broker, tmp_path / "var", tmp_path / "out.json", "--minutes", "50")
        assert result.exit_code == 0, result.output
        summary = json.loads((tmp_path / "out.json").read_text())
        assert summary["consistent"] is True
        assert summary["sample_order"].startswith(f"O0{day}-")
        assert summary["pickups_collected"] == summary["complaints"] > 20


def test_demo_rejects_a_bad_broker_url(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--data-dir", str(tmp_path), "demo", "--headless",
                                       "--broker", "http://example"])
    assert result.exit_code == 2
    assert "--broker must look like mqtt://host:port" in result.output


def test_the_interactive_demo_lets_a_person_sign_in_as_a_demo_agent(  # type: ignore[no-untyped-def]
        broker, tmp_path: Path) -> None:
    summary, stack = run_demo(DemoOptions(tmp_path / "var", broker=broker.url, minutes=3,
                                          seed=5, headless=False, port=0))
    try:
        browser = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
            _NoRedirects())
        page = browser.open(summary["web_url"] + "/login").read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token is not None
        form = urllib.parse.urlencode({"username": "agent-01", "password": DEMO_AGENT_PASSWORD,
                                       "csrf_token": token[1]}).encode()
        with pytest.raises(urllib.error.HTTPError) as signed_in:  # the redirect, not followed
            browser.open(summary["web_url"] + "/login", data=form)
        assert signed_in.value.code == 302
        account = browser.open(summary["web_url"] + "/account").read().decode()
        assert "Lin Wei" in account and "agent-01" in account
    finally:
        stack.stop()


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None
