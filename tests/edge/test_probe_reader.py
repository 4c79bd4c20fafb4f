"""The serial probe reader against a simulated board on a real pty, fault by fault.

Every test drives the board in virtual time and reads through pyserial on the board's
``tty<id>`` link. ``wait_for`` polls and, while bytes are still in flight, waits on the reader's
file descriptor with a bounded ``select``: nothing sleeps.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from edge.errors import ReaderFault
from edge.ports import TemperatureProbe
from edge.probe import FaultCode, ProbeFault, SerialProbeBoard
from firmware_sim.clock import VirtualClock
from firmware_sim.probe_board import ProbeBoard
from firmware_sim.thermal import Steady
from protocols.probe_frame import ProbeFrame, Reading, ReadingStatus, encode_frame
from tests.serial_wait import Event, codes, frames_in, wait_code, wait_for, wait_frames

NOW = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
STUCK_AFTER = 5







@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(NOW)


@pytest.fixture
def board(clock: VirtualClock, tmp_path: Path) -> Iterator[ProbeBoard]:
    models = [Steady(4.0, seed=1), Steady(7.5, seed=2)]
    with ProbeBoard("B1", models, 1.0, clock, tmp_path / "by-id") as b:
        yield b


@pytest.fixture
def reader(board: ProbeBoard, clock: VirtualClock) -> Iterator[SerialProbeBoard]:
    with SerialProbeBoard(str(board.path), board_id="B1", clock=clock, stale_after_s=5.0,
                          stuck_after=STUCK_AFTER) as r:
        yield r


@pytest.fixture
def run(board: ProbeBoard, reader: SerialProbeBoard,
        clock: VirtualClock) -> Callable[[float], list[Event]]:
    """Advance time by ``seconds``, let the board send what is due, and read it all."""
    def advance(seconds: float) -> list[Event]:
        clock.advance(seconds)
        sent = board.run_until()
        return wait_frames(reader, sent)
    return advance


def assert_reads_correctly(board: ProbeBoard, run: Callable[[float], list[Event]],
                           seconds: float = 2) -> None:
    """After a fault: the next frames arrive intact and nothing else is reported."""
    events = run(seconds)
    assert events == board.frames_sent[-len(events):]


# --- good frames ----------------------------------------------------------------------------

def test_good_frames_become_probe_temperatures(
        board: ProbeBoard, reader: SerialProbeBoard, run: Callable[[float], list[Event]]) -> None:
    core: TemperatureProbe = reader.probe(2, "st-1-core")
    assert core.read_celsius() is None  # nothing heard yet
    events = run(3)
    assert events == board.frames_sent and len(events) == 3
    last = board.frames_sent[-1]
    assert core.probe_id == "st-1-core"
    assert core.read_celsius() == last.readings[1].temp_c == pytest.approx(7.5, abs=0.3)
    assert reader.temperature(1) == last.readings[0].temp_c
    latest = reader.latest(1)
    assert latest is not None and latest.reading == last.readings[0]


# --- line faults ----------------------------------------------------------------------------

def test_noise_is_reported_and_the_following_frames_read(
        board: ProbeBoard, reader: SerialProbeBoard, run: Callable[[float], list[Event]]) -> None:
    run(1)
    board.inject_noise(40, random.Random(7))
    events = run(2)
    assert codes(events) == [("noise", None)]
    assert "40 noise bytes" in str(events[0])
    assert frames_in(events) == board.frames_sent[-2:]
    assert_reads_correctly(board, run)


@pytest.mark.parametrize("inject", ["send_truncated", "send_corrupt"])
def test_damaged_frame_is_reported_once_without_a_false_gap(
        board: ProbeBoard, reader: SerialProbeBoard, run: Callable[[float], list[Event]],
        inject: str) -> None:
    run(1)
    getattr(board, inject)()
    events = run(1)
    expected = "truncated" if inject == "send_truncated" else "corrupt"
    assert codes(events) == [(expected, None)]  # the lost seq is explained: no seq_gap
    assert frames_in(events)[0].seq == board.frames_sent[0].seq + 2
    assert reader.temperature(1) == board.frames_sent[-1].readings[0].temp_c
    assert_reads_correctly(board, run)


def test_overflowing_line_is_reported(
        board: ProbeBoard, reader: SerialProbeBoard, run: Callable[[float], list[Event]]) -> None:
    board.send_raw(b"$CLT,B1," + b"9" * 200)
    events = run(1)
    assert codes(events)[0] == ("overflow", None)
    assert frames_in(events) == board.frames_sent
    assert_reads_correctly(board, run)


def test_frames_lost_in_a_tty_overrun_are_a_sequence_gap(
        board: ProbeBoard, reader: SerialProbeBoard, clock: VirtualClock,
        run: Callable[[float], list[Event]]) -> None:
    run(1)
    clock.advance(6000)  # the reader does not poll for 100 minutes: the tty buffer overflows
    board.run_until()
    assert board.bytes_dropped > 0
    backlog = wait_for(reader, lambda events: frames_in(events)[-1:] == board.frames_sent[-1:])
    assert frames_in(backlog) == board.frames_sent[1:]  # every frame that fitted, intact
    events = run(1)
    (gap,) = [e for e in events if isinstance(e, ProbeFault) and e.code == "seq_gap"]
    assert "missing" in gap.detail
    assert_reads_correctly(board, run)


def test_sequence_jump_and_board_restart_are_gaps(
        board: ProbeBoard, reader: SerialProbeBoard, run: Callable[[float], list[Event]]) -> None:
    run(2)  # seq 0, 1 at uptime 1000, 2000
    readings = (Reading(1, 4.0, ReadingStatus.OK),)
    board.send_raw(encode_frame(ProbeFrame("B1", 5, 6000, readings)))
    board.send_raw(encode_frame(ProbeFrame("B1", 0, 300, readings)))
    events = wait_frames(reader, 2)
    assert [c for c, _ in codes(events)] == ["seq_gap", "seq_gap"]
    faults = [e for e in events if isinstance(e, ProbeFault)]
    assert "3 frame(s) missing" in faults[0].detail
    assert "restarted" in faults[1].detail


# --- the device comes and goes --------------------------------------------------------------

def test_disconnect_is_reported_once_and_the_reader_reopens_the_link(
        board: ProbeBoard, reader: SerialProbeBoard, clock: VirtualClock,
        run: Callable[[float], list[Event]]) -> None:
    core = reader.probe(1, "core")
    run(2)
    board.disconnect()
    assert codes(wait_code(reader, FaultCode.DISCONNECTED)) == [("disconnected", None)]
    assert not reader.connected and reader.fileno() is None
    clock.advance(30)
    assert [reader.poll() for _ in range(3)] == [[], [], []]  # said once; no stale either
    assert core.read_celsius() is None
    board.reconnect()  # rebooted: seq restarts at 0
    assert codes(reader.poll()) == [("reconnected", None)]
    events = run(2)
    assert codes(events) == [] and [f.seq for f in frames_in(events)] == [0, 1]
    assert core.read_celsius() == board.frames_sent[-1].readings[0].temp_c


def test_unplug_and_replug_between_two_polls(
        board: ProbeBoard, reader: SerialProbeBoard, run: Callable[[float], list[Event]]) -> None:
    run(1)
    board.disconnect()
    board.reconnect(reboot=False)
    assert codes(wait_code(reader, FaultCode.DISCONNECTED)) == [("disconnected", None)]
    assert codes(reader.poll()) == [("reconnected", None)]
    assert_reads_correctly(board, run)


def test_a_board_plugged_in_after_start_is_found(clock: VirtualClock, tmp_path: Path) -> None:
    path = tmp_path / "ttyLATE"
    with SerialProbeBoard(str(path), clock=clock) as reader:
        events = reader.poll()
        assert codes(events) == [("disconnected", None)] and "cannot open" in str(events[0])
        assert reader.poll() == []
        with ProbeBoard("LATE", [Steady(3.0)], 1.0, clock, tmp_path) as board:
            assert codes(reader.poll()) == [("reconnected", None)]
            clock.advance(2)
            board.run_until()
            assert frames_in(wait_frames(reader, 2)) == board.frames_sent


# --- probe faults ---------------------------------------------------------------------------

def test_stuck_probe_is_reported_once_reads_none_and_recovers(
        board: ProbeBoard, reader: SerialProbeBoard, run: Callable[[float], list[Event]]) -> None:
    run(1)
    board.stick(1)
    events = run(STUCK_AFTER + 10)
    assert codes(events) == [("stuck", 1)]
    assert f"in {STUCK_AFTER} frames in a row" in str(events)
    assert reader.temperature(1) is None
    assert reader.temperature(2) is not None  # the other probe is fine
    board.unstick(1)
    assert_reads_correctly(board, run)
    assert reader.temperature(1) == board.frames_sent[-1].readings[0].temp_c


def test_unplugged_probe_is_reported_per_transition(
        board: ProbeBoard, reader: SerialProbeBoard, run: Callable[[float], list[Event]],
        caplog: pytest.LogCaptureFixture) -> None:
    probe = reader.probe(2, "core")
    run(1)
    caplog.set_level(logging.INFO, logger="edge.probe")
    board.unplug(2)
    assert codes(run(10)) == [("unplugged", 2)]
    assert probe.read_celsius() is None
    assert reader.temperature(1) is not None
    board.replug(2)
    assert_reads_correctly(board, run)
    assert probe.read_celsius() == board.frames_sent[-1].readings[1].temp_c
    board.unplug(2)
    assert codes(run(3)) == [("unplugged", 2)]
    templates = [str(r.msg) for r in caplog.records]  # messages hold the tmp path's test name
    assert sum(t.endswith("unplugged") for t in templates) == 2  # per change, not per frame
    assert sum(t.endswith("reads again") for t in templates) == 1


def test_sensor_error_is_reported_once_and_clears(
        board: ProbeBoard, reader: SerialProbeBoard, run: Callable[[float], list[Event]]) -> None:
    run(1)
    board.sensor_error(1)
    events = run(5)
    assert codes(events) == [("sensor_error", 1)]
    assert reader.temperature(1) is None
    latest = reader.latest(1)
    assert latest is not None and latest.reading.status is ReadingStatus.SENSOR_ERROR
    board.clear_error(1)
    assert_reads_correctly(board, run)
    assert reader.temperature(1) is not None


def test_silent_board_goes_stale_once_and_recovers(
        board: ProbeBoard, reader: SerialProbeBoard, clock: VirtualClock,
        run: Callable[[float], list[Event]]) -> None:
    probe = reader.probe(1, "core")
    run(2)
    clock.advance(4)  # the board says nothing (nobody calls run_until)
    assert reader.poll() == [] and probe.read_celsius() is not None
    clock.advance(2)
    events = reader.poll()
    assert codes(events) == [("stale", None)] and "for 6.0 s" in str(events)
    assert probe.read_celsius() is None
    clock.advance(10)
    assert reader.poll() == []
    assert_reads_correctly(board, run)
    assert probe.read_celsius() == board.frames_sent[-1].readings[0].temp_c


def test_frames_from_another_board_are_refused(clock: VirtualClock, tmp_path: Path) -> None:
    ours = [ProbeFrame("B1", seq, 1000 * seq, (Reading(1, 3.5, ReadingStatus.OK),))
            for seq in (1, 2)]
    with ProbeBoard("B2", [Steady(3.0)], 1.0, clock, tmp_path) as board, \
            SerialProbeBoard(str(board.path), board_id="B1", clock=clock) as reader:
        clock.advance(3)
        board.run_until()  # three frames from the wrong board
        events = wait_code(reader, FaultCode.WRONG_BOARD)
        assert "'B2'" in str(events) and "expected 'B1'" in str(events)
        assert reader.probe(1, "core").read_celsius() is None
        # The right board's frame after them is read; the foreign ones were reported once.
        board.send_raw(encode_frame(ours[0]))
        events += wait_frames(reader, 1)
        assert codes(events) == [("wrong_board", None)] and frames_in(events) == ours[:1]
        assert reader.temperature(1) == 3.5
        # Foreign frames after ours are a new episode: reported again.
        clock.advance(1)
        board.run_until()
        board.send_raw(encode_frame(ours[1]))
        events = wait_frames(reader, 1)
        assert codes(events) == [("wrong_board", None)] and frames_in(events) == ours[1:]


def test_without_a_board_id_any_board_is_accepted(clock: VirtualClock, tmp_path: Path) -> None:
    with ProbeBoard("ANY", [Steady(3.0)], 1.0, clock, tmp_path) as board, \
            SerialProbeBoard(str(board.path), clock=clock) as reader:
        clock.advance(2)
        board.run_until()
        assert wait_frames(reader, 2) == board.frames_sent


# --- the reader itself ----------------------------------------------------------------------

class FakePort:
    """A serial port fed by the test: what pyserial would give, minus the tty."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.closed = False

    @property
    def in_waiting(self) -> int:
        return len(self.data)

    def read(self, size: int = 1) -> bytes:
        chunk, self.data = self.data[:size], self.data[size:]
        return chunk

    def fileno(self) -> int:
        return -1

    def close(self) -> None:
        self.closed = True


def test_a_serial_factory_replaces_pyserial(clock: VirtualClock) -> None:
    frame = ProbeFrame("F", 0, 1000, (Reading(1, 2.25, ReadingStatus.OK),))
    port = FakePort(b"\x00junk" + encode_frame(frame))
    opened: list[tuple[str, int]] = []

    def factory(path: str, baudrate: int) -> FakePort:
        opened.append((path, baudrate))
        return port

    reader = SerialProbeBoard("/dev/fake", baudrate=9600, clock=clock, serial_factory=factory)
    assert reader.poll() == [ProbeFault(FaultCode.NOISE, None, "skipped 5 noise bytes outside "
                                        "a frame"), frame]
    assert opened == [("/dev/fake", 9600)] and reader.temperature(1) == 2.25
    reader.close()
    assert port.closed
    with pytest.raises(ReaderFault, match="closed"):
        reader.poll()


def test_fault_codes_compare_as_strings() -> None:
    code: str = FaultCode.SEQ_GAP
    assert code == "seq_gap" and f"{code}" == "seq_gap"
    assert {c.value for c in FaultCode} == {
        "noise", "truncated", "corrupt", "overflow", "disconnected", "reconnected", "stuck",
        "unplugged", "sensor_error", "stale", "wrong_board", "seq_gap"}


@pytest.mark.parametrize("settings", [{"stale_after_s": 0.0}, {"stuck_after": 1}])
def test_bad_reader_settings_are_refused(clock: VirtualClock, settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        SerialProbeBoard("/dev/null", clock=clock, serial_factory=lambda p, b: FakePort(b""),
                         **settings)


def test_probe_index_is_checked(reader: SerialProbeBoard) -> None:
    for bad in (0, 9):
        with pytest.raises(ValueError):
            reader.probe(bad, "x")


def test_events_polled_by_anyone_are_kept_for_the_gateway(board, reader, clock) -> None:  # type: ignore[no-untyped-def]
    board.run_until(clock() + 2)
    seen = wait_frames(reader, 1)
    assert reader.take_events() == seen
    assert reader.take_events() == []
