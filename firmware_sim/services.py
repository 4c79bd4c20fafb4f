"""Real services for tests and benchmarks: a private Mosquitto, a throwaway PostgreSQL schema."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BROKER_CONFIG = REPO / "config" / "mosquitto" / "coldloop.conf"


def answers(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def mosquitto_binary() -> str | None:
    """The mosquitto executable, if installed (Debian puts it in /usr/sbin)."""
    return shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/sbin")


def start_mosquitto(binary: str, conf_dir: Path, port: int | None = None
                    ) -> tuple[subprocess.Popen[bytes], str]:
    """Start Mosquitto with the shipped config on ``port`` (default: a free one).

    Returns once it accepts connections (polling the socket, not sleeping blindly).
    """
    from hub.embedded_broker import free_port

    port = port or free_port()
    conf = conf_dir / "mosquitto.conf"
    conf.write_text(BROKER_CONFIG.read_text() + f"\nlistener {port} 127.0.0.1\n")
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for _ in range(200):
        if answers("127.0.0.1", port):
            return proc, f"mqtt://127.0.0.1:{port}"
        if proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited with {proc.returncode}")
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=0.05)
    proc.terminate()
    raise RuntimeError("mosquitto did not start listening")


@contextlib.contextmanager
def private_mosquitto(binary: str, conf_dir: Path) -> Iterator[str]:
    """A Mosquitto of one's own for a block; yields its URL."""
    proc, url = start_mosquitto(binary, conf_dir)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextlib.contextmanager
def fresh_postgres_schema(base_url: str, prefix: str = "t") -> Iterator[str]:
    """A URL to a new schema in the PostgreSQL at ``base_url``, dropped afterwards."""
    import sqlalchemy as sa

    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
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
