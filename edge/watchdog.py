"""systemd's notify protocol and watchdog, without extra dependencies.

``Type=notify`` services send ``READY=1``, ``WATCHDOG=1``, ``STATUS=...`` and ``STOPPING=1``
as datagrams to the AF_UNIX socket named by ``$NOTIFY_SOCKET``. :class:`Heartbeat` pets the
watchdog only while every registered component (the station loop, the uplink thread) shows
progress, so a hung thread gets the daemon restarted instead of a healthy-looking process.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterable, Mapping

logger = logging.getLogger(__name__)


def watchdog_interval_s(environ: Mapping[str, str] | None = None,
                        pid: int | None = None) -> float | None:
    """Return how often to pet systemd's watchdog (half its timeout), or None when it is off."""
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC", "")
    owner = env.get("WATCHDOG_PID", "")
    if owner and owner != str(os.getpid() if pid is None else pid):
        return None  # meant for another process (we were started by the service's process)
    if not usec.isdigit() or int(usec) == 0:
        return None
    return int(usec) / 2_000_000


class SystemdNotifier:
    """Sends sd_notify(3) messages; does nothing when not started by systemd."""

    def __init__(self, address: str | None) -> None:
        self.address = address or None
        self._target: str | None = None
        self._sock: socket.socket | None = None
        self._failing = False
        self._lock = threading.Lock()
        if self.address is None:
            return
        if self.address.startswith("@"):
            self._target = "\0" + self.address[1:]  # Linux abstract namespace
        elif self.address.startswith("/"):
            self._target = self.address
        else:
            logger.warning("NOTIFY_SOCKET %r is not an AF_UNIX socket; not notifying systemd",
                           self.address)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SystemdNotifier:
        """Build a notifier for ``$NOTIFY_SOCKET`` (a no-op one when it is unset)."""
        env = os.environ if environ is None else environ
        return cls(env.get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        """True when messages go somewhere."""
        return self._target is not None

    def notify(self, *fields: str) -> bool:
        """Send ``KEY=value`` fields in one datagram; return whether it was sent."""
        if self._target is None:
            return False
        payload = "\n".join(fields).encode()
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX,
                                               socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.sendto(payload, self._target)
            except OSError as err:
                if not self._failing:
                    logger.warning("cannot notify systemd at %s: %s", self.address, err)
                self._failing = True
                return False
            if self._failing:
                logger.info("notifying systemd at %s again", self.address)
            self._failing = False
            return True

    def ready(self, status: str | None = None) -> bool:
        """Tell systemd start-up is complete (and optionally what the service is doing)."""
        return self.notify("READY=1", *([_status(status)] if status else []))

    def watchdog(self) -> bool:
        """Pet the watchdog."""
        return self.notify("WATCHDOG=1")

    def status(self, text: str) -> bool:
        """Set the one-line status shown by ``systemctl status``."""
        return self.notify(_status(text))

    def stopping(self) -> bool:
        """Tell systemd the service is shutting down."""
        return self.notify("STOPPING=1")

    def close(self) -> None:
        """Close the socket."""
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


def _status(text: str) -> str:
    return "STATUS=" + " ".join(text.split())  # one line: a newline would start a new field


class Heartbeat:
    """Pets the watchdog only when every registered component beat since the last pet."""

    def __init__(self, notifier: SystemdNotifier, components: Iterable[str] = ()) -> None:
        self.notifier = notifier
        self._lock = threading.Lock()
        self._beaten: dict[str, bool] = {}
        self._held: tuple[str, ...] = ()
        self.pets = 0
        for name in components:
            self.register(name)

    def register(self, name: str) -> None:
        """Watch a component: pets stop until it beats."""
        with self._lock:
            self._beaten.setdefault(name, False)

    def unregister(self, name: str) -> None:
        """Stop watching a component (one whose thread has ended on purpose)."""
        with self._lock:
            self._beaten.pop(name, None)

    @property
    def components(self) -> list[str]:
        """The watched components."""
        with self._lock:
            return sorted(self._beaten)

    def beat(self, name: str) -> None:
        """Record that ``name`` made progress."""
        with self._lock:
            if name not in self._beaten:
                raise ValueError(f"heartbeat from unknown component {name!r}; "
                                 f"register it first (watching {sorted(self._beaten)})")
            self._beaten[name] = True

    def silent(self) -> list[str]:
        """The components that have not beaten since the last pet."""
        with self._lock:
            return sorted(name for name, beaten in self._beaten.items() if not beaten)

    def pet(self) -> bool:
        """Pet the watchdog if every component beat since the last pet; return whether it did."""
        with self._lock:
            silent = tuple(sorted(n for n, beaten in self._beaten.items() if not beaten))
            if silent:
                if silent != self._held:
                    logger.warning("watchdog held: no progress from %s", ", ".join(silent))
                    self.notifier.status(f"watchdog held: no progress from {', '.join(silent)}")
                self._held = silent
                return False
            if self._held:
                logger.info("watchdog released: every component made progress")
                self.notifier.status("running")
                self._held = ()
            for name in self._beaten:
                self._beaten[name] = False
            self.pets += 1
        self.notifier.watchdog()
        return True

    def run(self, stop: threading.Event, interval_s: float) -> None:
        """Pet every ``interval_s`` seconds until ``stop`` is set (a thread's target)."""
        while not stop.wait(interval_s):
            self.pet()
