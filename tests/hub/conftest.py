"""Fixtures of the hub tests, layered: ``hub_db`` (migrated, empty) -> ``factory`` (seeded)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from firmware_sim.services import start_victoria_metrics, victoria_metrics_binary
from hub import phones
from hub.db import make_engine, session_factory
from hub.models import Customer, Item, Order
from hub.settings import DatabaseSettings, HubSettings, WebSettings
from hub.web import create_app
from tests.hub.tickets_helpers import PHONE
from tests.hub.tickets_helpers import T0 as T0  # the tests import it from here

TOKEN = "test-api-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def hub_db(database_url: str) -> Iterator[sessionmaker[Session]]:
    """A session factory over a freshly migrated, empty database (``database_url`` arrives
    migrated when a test uses this fixture)."""
    engine = make_engine(database_url)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
def factory(hub_db: sessionmaker[Session]) -> sessionmaker[Session]:
    """The database holding one customer, their order O-1 and its items IT-1 and IT-2."""
    with hub_db.begin() as session:
        session.add(Customer(id="C-1", name="Li Wei", tier="gold", region="sh"))
        session.flush()
        session.add(Order(id="O-1", customer_id="C-1", placed_at=T0 - timedelta(days=2),
                          delivered_at=T0 - timedelta(days=1)))
        session.flush()
        session.add_all([
            Item(id="IT-1", order_id="O-1", gtin="06901234567892", lot="L2611",
                 product="Strawberries 500 g", family="berries", packed_at=T0),
            Item(id="IT-2", order_id="O-1", gtin="06901234567809", lot="L2612",
                 product="Baby spinach 200 g", family="leafy", packed_at=T0),
        ])
    return hub_db


@pytest.fixture(scope="session")
def victoria_metrics_binary_path() -> str:
    """The victoria-metrics binary; skip without it, or fail when CI requires the services."""
    binary = victoria_metrics_binary()
    if binary:
        return binary
    message = ("victoria-metrics is not installed (the InfluxDB sink tests write to it): "
               "apt-get install victoria-metrics")
    if os.environ.get("CI") or os.environ.get("COLDLOOP_REQUIRE_SERVICES"):
        pytest.fail(f"{message}; CI or COLDLOOP_REQUIRE_SERVICES is set, so the tests must run")
    pytest.skip(message)


@pytest.fixture(scope="session")
def victoria_metrics(victoria_metrics_binary_path: str,
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private VictoriaMetrics for the session (InfluxDB line protocol in); yields its URL."""
    data_dir: Path = tmp_path_factory.mktemp("victoria-metrics")
    with start_victoria_metrics(victoria_metrics_binary_path, data_dir) as url:
        yield url


@pytest.fixture
def app(database_url: str, factory: sessionmaker[Session]) -> Flask:
    """The hub app over the seeded database, with a known API token and clock."""
    settings = HubSettings(database=DatabaseSettings(url=database_url),
                           web=WebSettings(api_token=TOKEN))
    return create_app(settings, factory=factory,
                      test_config={"TESTING": True, "COLDLOOP_CLOCK": lambda: T0})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the app's JSON API (send AUTH as headers)."""
    return app.test_client()


@pytest.fixture
def session(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session on the seeded database in which customer C-1 has a phone (tickets)."""
    with factory() as session:
        customer = session.get(Customer, "C-1")
        assert customer is not None
        customer.phone = phones.normalise(PHONE)  # as the orders API stores it
        session.commit()
        yield session
