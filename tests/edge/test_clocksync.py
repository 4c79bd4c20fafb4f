"""The gateway's clock-sync state: synced, holdover or unsynced, from a kernel we can drive."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge.clocksync import (
    ClockMonitor,
    ClockUnavailable,
    KernelClock,
    SystemClockSource,
    read_adjtimex,
    read_boot_id,
    read_timesyncd,
)
from firmware_sim.clock import VirtualClock
from protocols.messages import ClockState

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
BOOT = "29f538f7-aacc-44e9-b74a-ef1f3e73992c"


class FakeKernel:
    """A kernel clock status to drive: ``sync()``, ``lose_sync()``; counts the reads."""

    def __init__(self) -> None:
        self.synchronised = False
        self.maxerror_us = 16_000_000
        self.reads = 0

    def sync(self, maxerror_us: int = 50_000) -> None:
        self.synchronised, self.maxerror_us = True, maxerror_us

    def lose_sync(self) -> None:
        self.synchronised, self.maxerror_us = False, 16_000_000

    def __call__(self) -> KernelClock:
        self.reads += 1
        return KernelClock(self.synchronised, self.maxerror_us, 1_000, "fake")


@pytest.fixture
def kernel() -> FakeKernel:
    return FakeKernel()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(T0)


@pytest.fixture
def monitor(kernel: FakeKernel, clock: VirtualClock) -> ClockMonitor:
    return ClockMonitor(kernel, cache_s=5.0, clock=clock)


def test_unsynced_from_boot_until_the_kernel_says_synced(monitor: ClockMonitor,
                                                         kernel: FakeKernel,
                                                         clock: VirtualClock) -> None:
    assert monitor.state() is ClockState.UNSYNCED
    kernel.sync()
    clock.advance(5)
    assert monitor.state() is ClockState.SYNCED
    assert monitor.reading().maxerror_us == 50_000


def test_losing_sync_is_holdover_and_regaining_it_is_synced(monitor: ClockMonitor,
                                                           kernel: FakeKernel,
                                                           clock: VirtualClock) -> None:
    kernel.sync()
    assert monitor.state() is ClockState.SYNCED
    kernel.lose_sync()
    clock.advance(5)
    assert monitor.state() is ClockState.HOLDOVER
    clock.advance(3600)
    assert monitor.state() is ClockState.HOLDOVER
    kernel.sync()
    clock.advance(5)
    assert monitor.state() is ClockState.SYNCED


def test_answer_is_cached_for_cache_s(monitor: ClockMonitor, kernel: FakeKernel,
                                      clock: VirtualClock) -> None:
    assert monitor.state() is ClockState.UNSYNCED
    kernel.sync()
    for _ in range(100):
        assert monitor.state() is ClockState.UNSYNCED
    clock.advance(4.9)
    assert monitor.state() is ClockState.UNSYNCED
    assert kernel.reads == 1
    clock.advance(0.1)
    assert monitor.state() is ClockState.SYNCED
    assert kernel.reads == 2


def test_zero_cache_reads_every_time(kernel: FakeKernel, clock: VirtualClock) -> None:
    monitor = ClockMonitor(kernel, cache_s=0, clock=clock)
    monitor.state()
    kernel.sync()
    assert monitor.state() is ClockState.SYNCED
    assert kernel.reads == 2


def test_error_bound_over_the_limit_counts_as_no_longer_synced(kernel: FakeKernel,
                                                               clock: VirtualClock) -> None:
    monitor = ClockMonitor(kernel, cache_s=0, clock=clock, max_error_us=1_000_000)
    kernel.sync(maxerror_us=200_000)
    assert monitor.state() is ClockState.SYNCED
    kernel.sync(maxerror_us=1_000_001)  # still flagged synced, but drifting without updates
    assert monitor.state() is ClockState.HOLDOVER


def test_state_changes_are_logged_once(monitor: ClockMonitor, kernel: FakeKernel,
                                       clock: VirtualClock,
                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="edge.clocksync")
    kernel.sync()
    for _ in range(3):
        monitor.state()
        clock.advance(5)
    kernel.lose_sync()
    for _ in range(3):
        monitor.state()
        clock.advance(5)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert messages[0].startswith("clock synchronised (fake, error bound 50 ms)")
    assert "holdover" in messages[1]


class TestMarker:
    """A restart within the same boot remembers that the clock was synced."""

    def test_restart_in_the_same_boot_says_holdover(self, tmp_path: Path, kernel: FakeKernel,
                                                    clock: VirtualClock) -> None:
        marker = tmp_path / "state" / "clock-synced"
        first = ClockMonitor(kernel, clock=clock, marker=marker, boot_id=lambda: BOOT)
        kernel.sync()
        assert first.state() is ClockState.SYNCED
        assert marker.read_text().strip() == BOOT
        kernel.lose_sync()
        restarted = ClockMonitor(kernel, clock=clock, marker=marker, boot_id=lambda: BOOT)
        assert restarted.state() is ClockState.HOLDOVER

    def test_marker_of_an_earlier_boot_is_ignored(self, tmp_path: Path, kernel: FakeKernel,
                                                  clock: VirtualClock) -> None:
        marker = tmp_path / "clock-synced"
        marker.write_text("an-earlier-boot\n")
        monitor = ClockMonitor(kernel, clock=clock, marker=marker, boot_id=lambda: BOOT)
        assert monitor.state() is ClockState.UNSYNCED

    def test_unwritable_marker_does_not_stop_the_monitor(self, tmp_path: Path,
                                                         kernel: FakeKernel,
                                                         clock: VirtualClock) -> None:
        blocker = tmp_path / "file"
        blocker.write_text("")
        monitor = ClockMonitor(kernel, clock=clock, marker=blocker / "clock-synced",
                               boot_id=lambda: BOOT)
        kernel.sync()
        assert monitor.state() is ClockState.SYNCED

    def test_boot_id_is_read_from_the_kernel(self, tmp_path: Path) -> None:
        path = tmp_path / "boot_id"
        path.write_text(BOOT + "\n")
        assert read_boot_id(path) == BOOT
        assert read_boot_id(tmp_path / "missing") == ""


class TestSystemSource:
    """adjtimex first; timesyncd's flag file where adjtimex cannot be called."""

    def test_timesyncd_flag_file(self, tmp_path: Path) -> None:
        flag = tmp_path / "synchronized"
        assert read_timesyncd(flag) == KernelClock(False, source="timesyncd")
        flag.touch()
        assert read_timesyncd(flag).synchronised

    def test_falls_back_once_adjtimex_is_unavailable(self, tmp_path: Path) -> None:
        calls = []

        def denied() -> KernelClock:
            calls.append(1)
            raise ClockUnavailable("adjtimex failed: Operation not permitted (EPERM)")

        flag = tmp_path / "synchronized"
        source = SystemClockSource(flag, adjtimex=denied)
        assert source() == KernelClock(False, source="timesyncd")
        flag.touch()
        assert source().synchronised
        assert calls == [1]

    def test_uses_adjtimex_when_it_answers(self, tmp_path: Path) -> None:
        answer = KernelClock(True, 10, 5)
        assert SystemClockSource(tmp_path / "x", adjtimex=lambda: answer)() == answer


@pytest.mark.skipif(sys.platform != "linux", reason="adjtimex(2) is Linux's")
def test_real_adjtimex_answers_on_this_machine() -> None:
    reading = read_adjtimex()
    assert reading.source == "adjtimex"
    assert isinstance(reading.synchronised, bool)
    assert reading.maxerror_us is not None and reading.maxerror_us >= 0
    assert reading.esterror_us is not None and reading.esterror_us >= 0
    assert ClockMonitor().state() in set(ClockState)
