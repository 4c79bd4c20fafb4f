"""The simulated probe board on a real pty, read through pyserial by edge.probe.

The board writes only when a test calls ``run_until``; ``wait_for`` then polls the reader,
waiting on its file descriptor with ``select`` (bounded) while bytes are still in flight.
"""

from __future__ import annotations

import itertools
import math
import os
import random
import stat
import termios
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge.probe import FaultCode, ProbeFault, SerialProbeBoard
from firmware_sim.clock import VirtualClock
from firmware_sim.probe_board import ProbeBoard
from firmware_sim.thermal import ColdRoom, CoreProbe, Steady
from protocols.probe_frame import Reading, ReadingStatus, encode_frame
from tests.serial_wait import frames_in, wait_for, wait_frames

NOW = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)





@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(NOW)


@pytest.fixture
def room() -> ColdRoom:
    return ColdRoom(seed=4, doors_per_hour=2.0)


@pytest.fixture
def board(clock: VirtualClock, room: ColdRoom, tmp_path: Path) -> Iterator[ProbeBoard]:
    with ProbeBoard("B1", [room, Steady(6.5, seed=2)], 2.0, clock, tmp_path / "by-id") as b:
        yield b


@pytest.fixture
def reader(board: ProbeBoard, clock: VirtualClock) -> Iterator[SerialProbeBoard]:
    with SerialProbeBoard(str(board.path), board_id="B1", clock=clock) as r:
        yield r


def test_link_points_at_a_raw_115200_baud_tty(board: ProbeBoard) -> None:
    target = os.readlink(board.path)
    assert target == board.device and target.startswith("/dev/")
    assert stat.S_ISCHR(os.stat(board.path).st_mode)
    fd = os.open(board.path, os.O_RDWR | os.O_NOCTTY)
    try:
        assert os.isatty(fd)
        iflag, _oflag, _cflag, lflag, ispeed, ospeed, _cc = termios.tcgetattr(fd)
        assert ispeed == ospeed == termios.B115200
        assert not lflag & (termios.ICANON | termios.ECHO | termios.ISIG)
        assert not iflag & (termios.ICRNL | termios.IXON)
    finally:
        os.close(fd)


def test_run_until_sends_every_due_frame_through_a_real_serial_port(
        board: ProbeBoard, reader: SerialProbeBoard, clock: VirtualClock, room: ColdRoom) -> None:
    clock.advance(5)
    assert board.run_until() == 10  # 2 Hz
    assert board.run_until() == 0  # nothing new is due
    events = wait_frames(reader, 10)
    assert events == board.frames_sent  # exactly these frames, no faults
    assert [f.seq for f in board.frames_sent] == list(range(10))
    assert [f.uptime_ms for f in board.frames_sent] == [500 * k for k in range(1, 11)]
    assert board.bytes_sent == sum(len(encode_frame(f)) for f in board.frames_sent)
    for k, frame in enumerate(board.frames_sent, start=1):
        at = clock() - 5 + k / 2
        assert frame.readings[0].temp_c == round(room.celsius(at), 2)
        assert frame.readings[1].temp_c == round(Steady(6.5, seed=2).celsius(at), 2)


def test_run_until_an_explicit_time_leaves_later_frames_due(
        board: ProbeBoard, reader: SerialProbeBoard, clock: VirtualClock) -> None:
    assert board.next_due() == clock() + 0.5
    assert board.run_until(clock() + 1.2) == 2
    assert board.next_due() == clock() + 1.5
    wait_frames(reader, 2)


def test_sequence_wraps_after_65535(clock: VirtualClock, tmp_path: Path) -> None:
    with ProbeBoard("W", [Steady(3.0)], 1.0, clock, tmp_path, seq=65534) as board, \
            SerialProbeBoard(str(board.path), clock=clock) as reader:
        clock.advance(4)
        board.run_until()
        events = wait_frames(reader, 4)
    assert [f.seq for f in frames_in(events)] == [65534, 65535, 0, 1]
    assert not [e for e in events if isinstance(e, ProbeFault)]  # a wrap is no gap


def test_set_model_puts_the_probe_into_an_item(
        board: ProbeBoard, reader: SerialProbeBoard, clock: VirtualClock) -> None:
    board.set_model(2, CoreProbe(9.0, inserted_at=clock(), start_c=18.0, noise_sd_c=0.0))
    clock.advance(60)
    board.run_until()
    frames = frames_in(wait_frames(reader, 120))
    core = [f.readings[1].temp_c for f in frames]
    assert core[0] == pytest.approx(9.0 + 9.0 * math.exp(-0.05), abs=0.01)
    assert all(a is not None and b is not None and a >= b for a, b in itertools.pairwise(core))
    assert core[-1] == pytest.approx(9.0 + 9.0 * math.exp(-6), abs=0.01)


def test_probe_faults_show_in_the_frames(
        board: ProbeBoard, reader: SerialProbeBoard, clock: VirtualClock) -> None:
    clock.advance(1)
    board.run_until()
    board.stick(1)
    board.unplug(2)
    clock.advance(1)
    board.run_until()
    board.replug(2)
    board.sensor_error(2)
    clock.advance(1)
    board.run_until()
    board.unstick(1)
    board.clear_error(2)
    clock.advance(1)
    board.run_until()
    frames = frames_in(wait_frames(reader, 8))
    stuck_value = frames[1].readings[0].temp_c
    assert [f.readings[0].temp_c for f in frames[1:6]] == [stuck_value] * 5
    assert [f.readings[1].status for f in frames] == (
        [ReadingStatus.OK] * 2 + [ReadingStatus.UNPLUGGED] * 2
        + [ReadingStatus.SENSOR_ERROR] * 2 + [ReadingStatus.OK] * 2)


def test_injected_line_faults_are_what_they_claim(
        board: ProbeBoard, reader: SerialProbeBoard, clock: VirtualClock) -> None:
    noise = board.inject_noise(300, random.Random(1))
    assert len(noise) == 300 and b"$" not in noise
    truncated = board.send_truncated()
    assert truncated.startswith(b"$CLT,B1,0,") and not truncated.endswith(b"\n")
    corrupt = board.send_corrupt()
    assert corrupt.startswith(b"$CLT,B1,1,") and corrupt.endswith(b"\r\n")
    assert board.next_seq == 2  # a frame damaged on the wire still used its number
    clock.advance(0.5)
    board.run_until()
    events = wait_frames(reader, 1)
    codes = [e.code for e in events if isinstance(e, ProbeFault)]
    assert codes == ["noise", "noise", "truncated", "corrupt"]  # 300 noise bytes: 2 pieces
    assert frames_in(events) == board.frames_sent and board.frames_sent[0].seq == 2


def test_disconnect_removes_the_link_and_reconnect_reboots(
        board: ProbeBoard, reader: SerialProbeBoard, clock: VirtualClock) -> None:
    clock.advance(2)
    board.run_until()
    wait_frames(reader, 4)
    board.disconnect()
    assert not board.connected and not board.path.exists() and board.device is None
    (lost,) = wait_for(reader, bool)
    assert isinstance(lost, ProbeFault) and lost.code is FaultCode.DISCONNECTED
    clock.advance(10)
    assert board.run_until() == 20  # due, but nobody hears them
    assert len(board.frames_sent) == 4
    board.reconnect()
    assert board.connected and os.readlink(board.path) == board.device
    assert board.boot_time == clock() and board.next_seq == 0
    assert [e.code for e in reader.poll() if isinstance(e, ProbeFault)] == ["reconnected"]
    clock.advance(1)
    board.run_until()
    frames = frames_in(wait_frames(reader, 2))
    assert [(f.seq, f.uptime_ms) for f in frames] == [(0, 500), (1, 1000)]


def test_reconnect_without_reboot_carries_the_sequence_on(
        board: ProbeBoard, reader: SerialProbeBoard, clock: VirtualClock) -> None:
    clock.advance(1)
    board.run_until()
    wait_frames(reader, 2)
    board.disconnect()
    clock.advance(3)  # six frames fall due while unplugged; nobody calls run_until
    board.reconnect(reboot=False)
    assert board.next_seq == 8
    wait_for(reader, lambda events: any(getattr(e, "code", None) == "reconnected"
                                        for e in events))
    clock.advance(0.5)
    board.run_until()
    assert [(f.seq, f.uptime_ms) for f in frames_in(wait_frames(reader, 1))] == [(8, 4500)]


def test_a_full_tty_drops_bytes_instead_of_blocking(board: ProbeBoard) -> None:
    # Nobody reads this pty: the kernel buffer fills and the board overruns, as a UART would.
    written = board.send_raw(b"x" * 200_000)
    assert 0 < written < 200_000
    assert board.bytes_dropped == 200_000 - written and board.bytes_sent == written


def test_close_removes_the_link(clock: VirtualClock, tmp_path: Path) -> None:
    board = ProbeBoard("C", [Steady(1.0)], 1.0, clock, tmp_path)
    board.close()
    board.close()  # idempotent
    assert not (tmp_path / "ttyC").exists() and not board.connected
    assert board.run_until(clock() + 3) == 3 and board.frames_sent == []


@pytest.mark.parametrize(("board_id", "models", "rate", "seq"), [
    ("bad id", 1, 1.0, 0),
    ("B", 0, 1.0, 0),
    ("B", 9, 1.0, 0),
    ("B", 1, 0.0, 0),
    ("B", 1, 1.0, 65536),
])
def test_bad_board_parameters_are_refused(clock: VirtualClock, tmp_path: Path, board_id: str,
                                          models: int, rate: float, seq: int) -> None:
    with pytest.raises(ValueError):
        ProbeBoard(board_id, [Steady(1.0)] * models, rate, clock, tmp_path, seq=seq)
    assert list(tmp_path.iterdir()) == []


def test_probe_numbers_are_checked(board: ProbeBoard) -> None:
    for bad in (0, 3):
        with pytest.raises(ValueError, match=r"probes 1\.\.2"):
            board.unplug(bad)


def test_sensor_range_is_clamped(board: ProbeBoard, reader: SerialProbeBoard,
                                 clock: VirtualClock) -> None:
    board.set_model(1, Steady(400.0, noise_sd_c=0.0))
    board.set_model(2, Steady(-80.0, noise_sd_c=0.0))
    clock.advance(0.5)
    board.run_until()
    (frame,) = frames_in(wait_frames(reader, 1))
    assert frame.readings == (Reading(1, 150.0, ReadingStatus.OK),
                              Reading(2, -50.0, ReadingStatus.OK))
