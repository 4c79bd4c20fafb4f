"""Real services for tests and benchmarks: a private Mosquitto, a throwaway PostgreSQL schema."""

from __future__ import annotations

import contextlib
import http.client
import shutil
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
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


def victoria_metrics_binary() -> str | None:
    """The victoria-metrics executable, if installed (Debian's package: /usr/bin)."""
    return shutil.which("victoria-metrics")


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=0.5) as response:
            return bool(response.status == 200)
    except (OSError, http.client.HTTPException):  # URLError is an OSError
        return False


@contextlib.contextmanager
def start_victoria_metrics(binary: str, data_dir: Path, port: int | None = None, *,
                           extra_args: Sequence[str] = (), start_timeout: float = 30.0
                           ) -> Iterator[str]:
    """Run VictoriaMetrics on 127.0.0.1:``port`` (default: a free one), storing in ``data_dir``.

    It takes InfluxDB line protocol on ``/api/v2/write`` and exports on ``/api/v1/export``.
    Loopback only, no scraping, a 100-year retention (tests write fixed past timestamps).
    Yields its base URL once ``/health`` answers (polled, not slept on); stops it afterwards.
    """
    from hub.embedded_broker import free_port

    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "victoria-metrics.log"
    args = [binary, f"-storageDataPath={data_dir / 'storage'}",
            f"-httpListenAddr=127.0.0.1:{port}", "-retentionPeriod=100y",
            "-search.disableCache", "-loggerLevel=WARN", *extra_args]
    with log_path.open("ab") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + start_timeout
        while not _healthy(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-2000:]
                state = (f"exited with {proc.returncode}" if proc.returncode is not None
                         else f"did not answer on {url}/health within {start_timeout} s")
                raise RuntimeError(f"victoria-metrics {state}; its log:\n{tail}")
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
