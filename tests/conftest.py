"""Fixtures shared by every test package: a real MQTT broker and a real database."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pytest

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
        url = urlparse(explicit)
        yield BrokerAddress(url.hostname or "127.0.0.1", url.port or 1883,
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


@pytest.fixture(params=_database_params())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: SQLite in a temp dir; PostgreSQL too if COLDLOOP_TEST_PG is set."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hub.db'}"
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
