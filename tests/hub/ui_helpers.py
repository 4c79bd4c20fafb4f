"""The admin UI under test: an app with a known admin, clock and data dir, and a browser login."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.test import TestResponse

from hub.settings import DatabaseSettings, HubSettings, WebSettings
from hub.web import create_app

USER, PASSWORD = "ops-admin", "correct horse battery"


def admin_app(database_url: str, factory: sessionmaker[Session], clock: Callable[[], datetime],
              data_dir: Path | None = None) -> Flask:
    """The hub app over ``factory`` with the test admin, the given clock and data dir."""
    database = DatabaseSettings(url=database_url)
    web = WebSettings(admin_user=USER, admin_password=PASSWORD,
                      secret_key="test-secret-key-0123456789")
    settings = (HubSettings(database=database, web=web, data_dir=data_dir)
                if data_dir is not None else HubSettings(database=database, web=web))
    return create_app(settings, factory=factory,
                      test_config={"TESTING": True, "COLDLOOP_CLOCK": clock})


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    """Fetch a page and return the CSRF token of its form."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert match, f"no CSRF token on {path}"
    return match[1]


def login(client: FlaskClient, user: str, password: str,
          next_page: str | None = None) -> TestResponse:
    """Post the login form as a browser would."""
    form = {"username": user, "password": password, "csrf_token": csrf_token(client)}
    if next_page:
        form["next"] = next_page
    return client.post("/login", data=form)


def logged_in(client: FlaskClient) -> FlaskClient:
    """``client`` after logging in as the test admin."""
    response = login(client, USER, PASSWORD)
    assert response.status_code == 302, response.text
    return client
