"""systemd notify messages on a real AF_UNIX datagram socket, and the watchdog's heartbeat."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.watchdog import Heartbeat, SystemdNotifier, watchdog_interval_s

WAIT = 5.0


class NotifySocket:
    """Plays systemd's end of $NOTIFY_SOCKET: receives and splits the datagrams."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.sock.settimeout(WAIT)

    def receive(self) -> list[str]:
        return self.sock.recv(4096).decode().split("\n")

    def nothing_pending(self) -> bool:
        self.sock.setblocking(False)
        try:
            self.sock.recv(4096)
        except BlockingIOError:
            return True
        finally:
            self.sock.settimeout(WAIT)
        return False

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[NotifySocket]:
    peer = NotifySocket(str(tmp_path / "notify"))
    yield peer
    peer.close()


@pytest.fixture
def notifier(systemd: NotifySocket) -> Iterator[SystemdNotifier]:
    n = SystemdNotifier.from_env({"NOTIFY_SOCKET": systemd.address})
    yield n
    n.close()


def test_lifecycle_messages(notifier: SystemdNotifier, systemd: NotifySocket) -> None:
    assert notifier.enabled
    assert notifier.ready(status="linked to mqtt://hub.local:1883")
    assert systemd.receive() == ["READY=1", "STATUS=linked to mqtt://hub.local:1883"]
    assert notifier.watchdog()
    assert systemd.receive() == ["WATCHDOG=1"]
    assert notifier.status("backlog 12\nsecond line")
    assert systemd.receive() == ["STATUS=backlog 12 second line"]
    assert notifier.stopping()
    assert systemd.receive() == ["STOPPING=1"]


def test_abstract_socket() -> None:
    peer = NotifySocket(f"@coldloop-test-{uuid.uuid4().hex}")
    notifier = SystemdNotifier.from_env({"NOTIFY_SOCKET": peer.address})
    try:
        assert notifier.ready()
        assert peer.receive() == ["READY=1"]
    finally:
        notifier.close()
        peer.close()


@pytest.mark.parametrize("address", [None, "", "vsock:2:1234"])
def test_no_usable_socket_is_a_no_op(address: str | None) -> None:
    env = {} if address is None else {"NOTIFY_SOCKET": address}
    notifier = SystemdNotifier.from_env(env)
    assert not notifier.enabled
    assert not notifier.ready() and not notifier.watchdog() and not notifier.stopping()


def test_vanished_socket_is_reported_not_raised(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    notifier = SystemdNotifier(str(tmp_path / "gone"))
    assert not notifier.watchdog()
    assert not notifier.watchdog()
    assert len([r for r in caplog.records if "cannot notify" in r.getMessage()]) == 1
    notifier.close()


@pytest.mark.parametrize(("env", "expected"), [
    ({"WATCHDOG_USEC": "30000000"}, 15.0),
    ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 15.0),
    ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),
    ({"WATCHDOG_USEC": "0"}, None),
    ({"WATCHDOG_USEC": "soon"}, None),
    ({}, None),
])
def test_watchdog_interval_is_half_the_timeout(env: dict[str, str],
                                               expected: float | None) -> None:
    assert watchdog_interval_s(env) == expected


class TestHeartbeat:
    """Pets only when every component made progress since the last pet."""

    @pytest.fixture
    def heartbeat(self, notifier: SystemdNotifier) -> Heartbeat:
        return Heartbeat(notifier, ["stations", "uplink"])

    def test_pets_when_every_component_beat(self, heartbeat: Heartbeat,
                                            systemd: NotifySocket) -> None:
        heartbeat.beat("stations")
        heartbeat.beat("uplink")
        heartbeat.beat("uplink")
        assert heartbeat.pet()
        assert systemd.receive() == ["WATCHDOG=1"]
        assert heartbeat.silent() == ["stations", "uplink"]  # each must beat again

    def test_refuses_while_a_component_is_silent(self, heartbeat: Heartbeat,
                                                 systemd: NotifySocket) -> None:
        heartbeat.beat("stations")
        assert not heartbeat.pet()
        assert systemd.receive() == ["STATUS=watchdog held: no progress from uplink"]
        heartbeat.beat("stations")
        assert not heartbeat.pet()  # the same hold is announced once
        assert systemd.nothing_pending()
        heartbeat.beat("uplink")
        assert heartbeat.pet()
        assert systemd.receive() == ["STATUS=running"]
        assert systemd.receive() == ["WATCHDOG=1"]
        assert heartbeat.pets == 1

    def test_a_new_component_holds_the_watchdog_until_it_beats(self, heartbeat: Heartbeat,
                                                               systemd: NotifySocket) -> None:
        heartbeat.register("health")
        heartbeat.beat("stations")
        heartbeat.beat("uplink")
        assert not heartbeat.pet()
        heartbeat.unregister("health")
        assert heartbeat.components == ["stations", "uplink"]
        assert heartbeat.pet()

    def test_unknown_component_is_an_error(self, heartbeat: Heartbeat) -> None:
        with pytest.raises(ValueError, match=r"'uplnk'.*register it first"):
            heartbeat.beat("uplnk")

    def test_run_pets_until_stopped(self, heartbeat: Heartbeat, systemd: NotifySocket) -> None:
        stop = threading.Event()
        heartbeat.beat("stations")
        heartbeat.beat("uplink")
        thread = threading.Thread(target=heartbeat.run, args=(stop, 0.001))
        thread.start()
        try:
            assert systemd.receive() == ["WATCHDOG=1"]
        finally:
            stop.set()
            thread.join(WAIT)
        assert not thread.is_alive()
        assert heartbeat.pets == 1  # nobody beat again: the later pets were refused
