"""Fixtures shared by every test package: a real MQTT broker and a real database."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from firmware_sim.services import (
    REPO,
    answers,
    fresh_postgres_schema,
    mosquitto_binary,
    private_mosquitto,
)


@dataclass(frozen=True)
class BrokerAddress:
    """Where the test broker listens, and what it is (mosquitto or amqtt)."""

    host: str
    port: int
    kind: str

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def speaks_v5(self) -> bool:
        return self.kind == "mosquitto"


@pytest.fixture(scope="session")
def broker() -> Iterator[BrokerAddress]:
    """A real MQTT broker for the session.

    In order: $COLDLOOP_TEST_BROKER; a private Mosquitto started from the ``mosquitto`` binary
    with ``config/mosquitto/coldloop.conf`` on a free port (our queue limits, and no other
    client's retained messages or sessions); Mosquitto on 127.0.0.1:1883; amqtt in-process.
    """
    explicit = os.environ.get("COLDLOOP_TEST_BROKER")
    if explicit:
        parsed = urlparse(explicit)
        yield BrokerAddress(parsed.hostname or "127.0.0.1", parsed.port or 1883,
                            os.environ.get("COLDLOOP_TEST_BROKER_KIND", "mosquitto"))
        return
    binary = mosquitto_binary()
    if binary:
        with tempfile.TemporaryDirectory() as tmp, private_mosquitto(binary, Path(tmp)) as url:
            port = urlparse(url).port
            assert port is not None
            yield BrokerAddress("127.0.0.1", port, "mosquitto")
        return
    if answers("127.0.0.1", 1883):
        yield BrokerAddress("127.0.0.1", 1883, "mosquitto")
        return
    from hub.embedded_broker import EmbeddedBroker

    with EmbeddedBroker() as embedded:
        yield BrokerAddress(embedded.host, embedded.port, "amqtt")


def _database_params() -> list[object]:
    params: list[object] = ["sqlite"]
    if os.environ.get("COLDLOOP_TEST_PG"):
        params.append(pytest.param("postgresql", marks=pytest.mark.postgres))
    return params


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database the migrations brought to head, once per session."""
    from hub.db import migrate

    path = tmp_path_factory.mktemp("template") / "hub.db"
    migrate(f"sqlite:///{path}")
    return path


@dataclass(frozen=True)
class MigratedSchema:
    """A PostgreSQL schema the migrations brought to head, shared by the session's tests."""

    url: str
    engine: Engine
    tables: tuple[str, ...]  # every table but alembic_version
    head: str

    def empty(self) -> None:
        """Delete every row (sequences restart); refuse a schema a test moved off head."""
        quoted = ", ".join(f'"{t}"' for t in self.tables)
        with self.engine.begin() as conn:
            version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
            if version != self.head:
                raise RuntimeError(f"the shared test schema is at {version}, not {self.head}: "
                                   "a test using hub_db changed it (take database_url alone)")
            # a connection a test left inside a transaction would block this for ever
            conn.execute(sa.text("SET LOCAL lock_timeout = '20s'"))
            conn.execute(sa.text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))


@pytest.fixture(scope="session")
def postgres_migrated() -> Iterator[MigratedSchema]:
    """One schema migrated to head for the session; emptied before each test that uses it."""
    from hub.db import make_engine, migrate

    with fresh_postgres_schema(os.environ["COLDLOOP_TEST_PG"]) as url:
        migrate(url)
        engine = make_engine(url)
        with engine.connect() as conn:
            tables = tuple(conn.execute(sa.text(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                "AND tablename <> 'alembic_version' ORDER BY tablename")).scalars())
            head = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        assert head is not None
        try:
            yield MigratedSchema(url, engine, tables, head)
        finally:
            engine.dispose()


@pytest.fixture(params=_database_params())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database: SQLite in a temp dir; PostgreSQL too if COLDLOOP_TEST_PG is set.

    Empty, unless the test uses ``hub_db``: then it is already at the head revision. SQLite:
    a copy of a file the migrations brought to head once per session. PostgreSQL: a schema
    migrated once per session and emptied (TRUNCATE) before each test, a fifth of the cost
    of migrating a test's own schema (0.2 s), which the tests of the migrations still get.
    """
    migrated = "hub_db" in request.fixturenames
    if request.param == "sqlite":
        path = tmp_path / "hub.db"
        if migrated:
            template = request.getfixturevalue("sqlite_template")
            with (contextlib.closing(sqlite3.connect(template)) as source,
                  contextlib.closing(sqlite3.connect(path)) as copy):
                source.backup(copy)
        yield f"sqlite:///{path}"
        return
    if migrated:
        shared: MigratedSchema = request.getfixturevalue("postgres_migrated")
        shared.empty()
        yield shared.url
        return
    with fresh_postgres_schema(os.environ["COLDLOOP_TEST_PG"]) as url:
        yield url


CAPTURES = REPO / "tests" / "captures"


@pytest.fixture
def replay(broker: BrokerAddress, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Replay a shipped capture (by name) on the test broker; each call gets a fresh hub."""
    from firmware_sim import capture
    from firmware_sim.replay import ReplayResult, replay_capture

    runs = iter(range(1, 1000))

    def run(name: str) -> tuple[ReplayResult, Path]:
        data_dir = tmp_path / f"replay-{next(runs)}"
        loaded = capture.load(CAPTURES / f"{name}.jsonl")
        return replay_capture(loaded, data_dir, broker=broker.url), data_dir

    return run
