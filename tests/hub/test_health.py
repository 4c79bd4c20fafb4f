"""The health check: the database, ingest and the periodic jobs of `hub serve`."""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from hub.periodic import Periodic

HOUR = 3600.0


def test_a_job_is_healthy_while_it_runs_and_a_round_succeeded_lately() -> None:
    now = [100.0]
    began = threading.Event()
    job = Periodic("test-job", HOUR, began.set, clock=lambda: now[0])
    assert job.status()["ok"] is False  # not started

    job.start()  # the first round runs at once, in the job's thread
    assert began.wait(10)
    now[0] = 100.0 + 3 * HOUR
    assert job.status()["ok"] is True  # within three periods of its start or its round
    now[0] = 100.0 + 3 * HOUR + 1
    assert job.status()["ok"] is False  # no round for longer than three periods

    job.stop()  # waits for the round: it succeeded at 100
    now[0] = 150.0
    status = job.status()
    assert (status["ok"], status["rounds"], status["failures"]) == (False, 1, 0)
    assert status["last_success_s_ago"] == 50.0


def test_health_reports_each_component_and_fails_if_one_is_not_ok(
        app: Flask, client: FlaskClient) -> None:
    components: dict[str, dict[str, Any]] = {
        "ingest": {"ok": True, "connected": True, "storing": True},
        "sla_watch": {"ok": True, "rounds": 3}}
    app.config["COLDLOOP_HEALTH"] = lambda: components
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "components": components}

    components["ingest"] = {"ok": False, "connected": True, "storing": False}
    response = client.get("/api/v1/health")
    assert response.status_code == 503
    assert response.get_json()["status"] == "error"
    assert response.get_json()["components"]["ingest"]["storing"] is False


def test_a_dead_storing_thread_stops_the_command_which_exits_1() -> None:
    from click import ClickException

    from hub.cli import _DeathWatch

    stop = threading.Event()
    watch = _DeathWatch(stop)
    watch.exit_if_died()  # alive: a clean stop exits 0
    watch.set()  # what the worker calls from its dying thread
    assert stop.is_set()
    try:
        watch.exit_if_died()
    except ClickException as err:
        assert err.exit_code == 1 and "storing thread died" in err.message
    else:
        raise AssertionError("a dead storing thread must end the command with exit code 1")
