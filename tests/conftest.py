"""Fixtures shared by every test package: a real MQTT broker and a real database."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pytest

REPO = Path(__file__).resolve().parent.parent


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


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _wait_for_port(host: str, port: int, proc: subprocess.Popen[bytes]) -> None:
    # Poll the socket (not a sleep): the broker is ready when it accepts a connection.
    for _ in range(200):
        if _answers(host, port):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited with {proc.returncode}")
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=0.05)
    raise RuntimeError("mosquitto did not start listening")


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
    binary = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/sbin")
    if binary:
        yield from _private_mosquitto(binary)
        return
    if _answers("127.0.0.1", 1883):
        yield BrokerAddress("127.0.0.1", 1883, "mosquitto")
        return
    from hub.embedded_broker import EmbeddedBroker

    with EmbeddedBroker() as embedded:
        yield BrokerAddress(embedded.host, embedded.port, "amqtt")


def _private_mosquitto(binary: str) -> Iterator[BrokerAddress]:
    from hub.embedded_broker import free_port

    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp, "mosquitto.conf")
        conf.write_text((REPO / "config/mosquitto/coldloop.conf").read_text()
                        + f"\nlistener {port} 127.0.0.1\n")
        proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            _wait_for_port("127.0.0.1", port, proc)
            yield BrokerAddress("127.0.0.1", port, "mosquitto")
        finally:
            proc.terminate()
            proc.wait(timeout=10)


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
    yield from _fresh_postgres_schema(os.environ["COLDLOOP_TEST_PG"])


def _fresh_postgres_schema(base_url: str) -> Iterator[str]:
    """Give each test its own PostgreSQL schema, dropped afterwards."""
    import uuid

    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


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
