"""Several ingest worker processes on one MQTT v5 shared subscription, kept running.

One ingest worker is CPU-bound in one Python process; ``ingest.workers = N`` (or ``coldloop hub
ingest --workers N``) runs N of them. :class:`IngestSupervisor` starts one child process per
worker index, restarts a child that exits unexpectedly (with backoff) and stops them all with
SIGTERM. A worker's MQTT client id is ``<mqtt.client_id>-<index>``: stable, so a restarted child
resumes its persistent session and gets its unacknowledged messages again.

Each child's stdin is a pipe from the supervisor that is never written to: it reaches EOF when
the supervisor is gone, even killed, and the child then stops (no orphans). Children run in
their own process group, so a terminal's Ctrl-C reaches the supervisor only, which stops them.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from hub.mqtt_consumer import BrokerUnavailable, broker_speaks_v5
from hub.settings import HubSettings
from protocols.config import ConfigError

logger = logging.getLogger(__name__)

BACKOFF_S = (1.0, 30.0)  # first restart delay, doubling up to the second
STABLE_AFTER_S = 60.0  # a child that ran this long before exiting restarts after the first delay
STOP_TIMEOUT_S = 20.0  # after SIGTERM, then SIGKILL
_NOT_STARTED = -(1 << 16)  # a child that could not even be started (an exit code cannot be it)


def worker_settings(settings: HubSettings, index: int) -> HubSettings:
    """The settings of worker ``index``: worker 0 keeps ``mqtt.client_id`` (so a hub going from
    one worker to several keeps its broker session), worker k > 0 is ``<mqtt.client_id>-<k>``."""
    if index == 0:
        return settings
    mqtt = settings.mqtt.model_copy(update={"client_id": f"{settings.mqtt.client_id}-{index}"})
    return settings.model_copy(update={"mqtt": mqtt})


def check_scale_out(settings: HubSettings, workers: int) -> None:
    """Raise ConfigError unless ``workers`` worker processes can share the gateways' traffic."""
    mqtt = settings.mqtt
    if workers <= 1:
        return
    if not mqtt.share_group:
        raise ConfigError(
            f"{workers} ingest workers (ingest.workers or --workers) need mqtt.share_group, "
            "an MQTT v5 shared subscription; without it each worker receives every message. "
            'Set e.g. share_group = "hub" in [mqtt], or run one worker')
    if mqtt.protocol != "5":
        raise ConfigError(
            f"{workers} ingest workers (ingest.workers or --workers) share mqtt.share_group, "
            f"which needs MQTT v5, but mqtt.protocol is {mqtt.protocol}: use a v5 broker such "
            "as Mosquitto with protocol = \"5\", or run one worker")
    try:
        v5 = broker_speaks_v5(mqtt)
    except BrokerUnavailable as err:  # the workers connect (and check again) once it is up
        logger.warning("%s; starting the ingest workers anyway", err)
        return
    if not v5:
        raise ConfigError(
            f"{workers} ingest workers (ingest.workers or --workers) share mqtt.share_group, "
            f"which needs MQTT v5, but the broker at mqtt.url = {mqtt.url} speaks 3.1.1 only "
            "(amqtt?): use a v5 broker such as Mosquitto, or run one worker")


class IngestSupervisor:
    """Keep one child process per worker index running until :meth:`stop`.

    ``command(index)`` is the child's command line. A child that exits while the supervisor
    is not stopping is logged with its exit code and restarted after a delay: ``backoff_s[0]``,
    doubling per quick exit up to ``backoff_s[1]``, back to the first after a child ran
    ``stable_after_s``.
    """

    def __init__(self, command: Callable[[int], Sequence[str]], indexes: Iterable[int], *,
                 backoff_s: tuple[float, float] = BACKOFF_S,
                 stable_after_s: float = STABLE_AFTER_S,
                 stop_timeout_s: float = STOP_TIMEOUT_S) -> None:
        self._command = command
        self._indexes = tuple(indexes)
        self._backoff = backoff_s
        self._stable_after = stable_after_s
        self._stop_timeout = stop_timeout_s
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._threads: list[threading.Thread] = []

    @property
    def pids(self) -> dict[int, int]:
        """The running children's process ids by worker index."""
        with self._lock:
            return {i: p.pid for i, p in self._children.items() if p.returncode is None}

    def status(self) -> dict[str, Any]:
        """The health check's view: ok while every worker process runs (one that exited is
        restarted, after a delay)."""
        running = sorted(self.pids)
        return {"ok": len(running) == len(self._indexes), "running": running,
                "expected": list(self._indexes)}

    def start(self) -> None:
        """Start every child, each watched by a thread of its own (blocked in wait())."""
        if self._threads:
            raise RuntimeError("this ingest supervisor was already started")
        for index in self._indexes:
            thread = threading.Thread(target=self._keep, args=(index,), daemon=True,
                                      name=f"coldloop-ingest-supervisor-{index}")
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        """SIGTERM every child, wait for them (SIGKILL after the timeout), reap them all."""
        with self._lock:  # no child starts after this
            self._stopping.set()
            children = dict(self._children)
        for index, child in children.items():
            logger.info("stopping ingest worker %d (pid %d)", index, child.pid)
            child.send_signal(signal.SIGTERM)  # a no-op once it was reaped
        deadline = time.monotonic() + self._stop_timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            left = {i: p for i, p in self._children.items() if p.returncode is None}
        for index, child in left.items():
            logger.warning("ingest worker %d (pid %d) did not stop within %g s; killing it",
                           index, child.pid, self._stop_timeout)
            child.kill()
        for thread in self._threads:
            thread.join()

    def _keep(self, index: int) -> None:
        first, most = self._backoff
        delay = first
        while True:
            started = time.monotonic()
            code = self._run(index)
            if code is None or self._stopping.is_set():
                return
            ran = time.monotonic() - started
            if ran >= self._stable_after:
                delay = first
            if code == _NOT_STARTED:
                logger.warning("retrying ingest worker %d in %g s", index, delay)
            else:
                logger.warning("ingest worker %d exited unexpectedly with %s after %.1f s; "
                               "restarting it in %g s", index, _describe(code), ran, delay)
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, most)

    def _run(self, index: int) -> int | None:
        """Run child ``index`` until it exits; its exit code, or None if stopping."""
        with self._lock:
            if self._stopping.is_set():
                return None
            try:
                child = subprocess.Popen(list(self._command(index)), stdin=subprocess.PIPE,
                                         process_group=0)
            except OSError as err:
                logger.error("cannot start ingest worker %d: %s", index, err)
                return _NOT_STARTED
            self._children[index] = child
        logger.info("started ingest worker %d (pid %d)", index, child.pid)
        code = child.wait()  # blocks until it exits: no polling
        if child.stdin is not None:
            child.stdin.close()
        with self._lock:
            del self._children[index]
        if self._stopping.is_set():
            log = logger.info if code == 0 else logger.warning
            log("ingest worker %d (pid %d) stopped with %s", index, child.pid, _describe(code))
        return code


def _describe(code: int) -> str:
    """``exit code 3``, or ``exit code -9 (SIGKILL)`` for a child ended by a signal."""
    if code < 0:
        try:
            return f"exit code {code} ({signal.Signals(-code).name})"
        except ValueError:
            pass
    return f"exit code {code}"
