"""The hub's Flask app: the JSON API under /api/v1 and the admin UI, over one database."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, current_app, g
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.exceptions import HTTPException

from hub.coldchain_config import ColdChainConfig, coldchain_config
from hub.db import make_engine, session_factory
from hub.settings import HubSettings

SESSIONS = "coldloop.sessions"
SETTINGS = "coldloop.settings"
Clock = Callable[[], datetime]


def create_app(settings: HubSettings, *, factory: sessionmaker[Session] | None = None,
               test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the hub's web app; ``factory`` defaults to one over ``settings.database_url``.

    ``test_config`` overrides Flask config keys, and may set ``COLDLOOP_CLOCK`` (a callable
    returning an aware datetime) and ``COLDLOOP_RNG`` (a ``random.Random`` for pickup codes).
    ``COLDLOOP_HEALTH`` (set by ``hub serve``) returns the status of each background part by
    name, each with an ``ok``; the health endpoint reports them.
    """
    from hub.web import api, call_ui, guards, qc_ui, survey_ui, tickets_ui, ui

    # An explicit instance path: Flask's guess walks the import system, and fails when a
    # namespace package shadows ``hub`` (as ``tests/hub`` does under pytest).
    app = Flask(__name__, instance_path=str((settings.data_dir / "instance").resolve()))
    app.config.from_mapping(
        SECRET_KEY=settings.web.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=64 * 1024,
        COLDLOOP_CLOCK=None,
        COLDLOOP_RNG=None,
        COLDLOOP_HEALTH=None,
    )
    if test_config:
        app.config.from_mapping(test_config)
    coldchain_config(settings.coldchain_file)  # a missing or bad file stops start-up, named
    if factory is None:
        factory = session_factory(make_engine(settings.database_url))
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions[SESSIONS] = factory
    app.extensions[SETTINGS] = settings
    app.teardown_appcontext(_close_session)

    guards.install(app)
    api.init_app(app)
    ui.init_app(app)
    tickets_ui.init_app(app)
    survey_ui.init_app(app)
    call_ui.init_app(app)
    qc_ui.init_app(app)

    def http_error(err: HTTPException) -> Response | tuple[str, int]:
        return api.http_error(err) if api.is_api_request() else ui.error_page(err)

    app.register_error_handler(HTTPException, http_error)
    return app


def db_session() -> Session:
    """Return this request's database session, opening it on first use."""
    if "db_session" not in g:
        g.db_session = current_app.extensions[SESSIONS]()
    session: Session = g.db_session
    return session


def hub_settings() -> HubSettings:
    """Return the settings the running app was built with."""
    settings: HubSettings = current_app.extensions[SETTINGS]
    return settings


def coldchain() -> ColdChainConfig:
    """The cold-chain parameters this hub judges traces by (its coldchain_file, or defaults)."""
    return coldchain_config(hub_settings().coldchain_file)


def now() -> datetime:
    """Return the current time in UTC (or the configured test clock's)."""
    clock: Clock | None = current_app.config.get("COLDLOOP_CLOCK")
    return clock() if clock is not None else datetime.now(UTC)


def code_rng() -> random.Random:
    """Return the random source for pickup codes: the OS's, unless a test configured one."""
    rng: random.Random | None = current_app.config.get("COLDLOOP_RNG")
    # Codes prove collection, so by default they are never drawn from a guessable sequence.
    return rng if rng is not None else random.SystemRandom()


def _close_session(_exc: BaseException | None) -> None:
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        session.close()  # rolls back whatever the request did not commit
