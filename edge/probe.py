"""Read a temperature probe board over a serial line and serve its probes to stations.

The only module that imports pyserial, and only when a reader is built. ``SerialProbeBoard``
reads what the board has sent without blocking, decodes it with ``protocols.probe_frame`` and
turns every problem into a ``ProbeFault`` value instead of raising. ``probe(index, probe_id)``
gives a station's ``TemperatureProbe`` that reads None whenever the value cannot be trusted.

* Conditions (disconnected, stuck, unplugged, sensor error, stale, wrong board) are reported
  once when they start and logged when they start and end; events (line faults, sequence gaps)
  are reported each time and logged at debug level.
* A lost device is closed and reopened by path on later polls. The sequence check starts
  afresh after a reopen, because an unplugged USB board usually reboots.
* A probe whose OK value is identical in ``stuck_after`` frames in a row is stuck until the
  value changes: a working sensor jitters in its last digit.
* Missing sequence numbers are a gap unless the damaged frames reported since the last good
  frame account for them; an uptime that goes back is a board restart.
* Readings are dated when read: poll often enough that the tty buffer never fills, or frames
  left in it after an overflow would look fresh.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Protocol

from edge.errors import ReaderFault
from protocols.probe_frame import (
    MAX_PROBES,
    FrameDecoder,
    FrameFault,
    ProbeFrame,
    Reading,
    ReadingStatus,
)

__all__ = ["BoardProbe", "FaultCode", "ProbeFault", "SerialProbeBoard", "TimedReading"]

logger = logging.getLogger(__name__)
UNCLAIMED_LIMIT = 100_000  # events kept for take_events(); older ones are dropped first

_SEQ_MOD = 0x1_0000
_MAX_READ_PER_POLL = 64 * 1024  # a babbling line cannot keep one poll busy forever


class FaultCode(StrEnum):
    """What went wrong; compares equal to its string value."""

    NOISE = "noise"
    TRUNCATED = "truncated"
    CORRUPT = "corrupt"
    OVERFLOW = "overflow"
    DISCONNECTED = "disconnected"
    RECONNECTED = "reconnected"
    STUCK = "stuck"
    UNPLUGGED = "unplugged"
    SENSOR_ERROR = "sensor_error"
    STALE = "stale"
    WRONG_BOARD = "wrong_board"
    SEQ_GAP = "seq_gap"


@dataclass(frozen=True, slots=True)
class ProbeFault:
    """A problem on the line or with a probe; ``probe`` (1-based) is None for the whole board."""

    code: FaultCode
    probe: int | None
    detail: str


@dataclass(frozen=True, slots=True)
class TimedReading:
    """A probe's latest reading and when (on the reader's clock) it was received."""

    reading: Reading
    received_at: float


class SerialPort(Protocol):
    """The part of ``serial.Serial`` the reader uses; fakes implement just this."""

    @property
    def in_waiting(self) -> int:
        """Bytes ready to read."""
        ...

    def read(self, size: int = 1) -> bytes:
        """Read up to ``size`` bytes without blocking."""
        ...

    def fileno(self) -> int:
        """The OS file descriptor, for select()."""
        ...

    def close(self) -> None:
        """Close the port."""
        ...


# Opens (port, baudrate) for non-blocking reads; raises OSError when it cannot.
SerialFactory = Callable[[str, int], SerialPort]


def pyserial_factory() -> SerialFactory:
    """Return a factory opening ports with pyserial; raise ReaderFault if it is not installed."""
    try:
        import serial
    except ImportError as err:
        raise ReaderFault("pyserial is not installed: install coldloop[edge] to read probe "
                          "boards, or set the station's probe to 'sim'") from err

    def open_port(port: str, baudrate: int) -> SerialPort:
        # timeout=0: read() returns what is there; exclusive: a second reader would steal bytes.
        port_object: SerialPort = serial.Serial(port, baudrate=baudrate, timeout=0,
                                                exclusive=True)
        return port_object

    return open_port


@dataclass(slots=True)
class _Track:
    latest: TimedReading | None = None
    run_value: float | None = None  # the OK value repeated ...
    run_length: int = 0  # ... this many frames in a row
    stuck: bool = False


class SerialProbeBoard:
    """One probe board on a serial port; poll it, or read its probes through ``probe()``."""

    def __init__(self, port: str, *, board_id: str | None = None, baudrate: int = 115200,
                 stale_after_s: float = 5.0, stuck_after: int = 30,
                 clock: Callable[[], float] = time.time,
                 serial_factory: SerialFactory | None = None) -> None:
        """Open ``port``; if that fails, the first poll reports ``disconnected`` and retries."""
        if not stale_after_s > 0:
            raise ValueError(f"stale_after_s must be > 0, got {stale_after_s}")
        if stuck_after < 2:
            raise ValueError(f"stuck_after must be >= 2 frames, got {stuck_after}")
        self.port = port
        self.board_id = board_id
        self.baudrate = baudrate
        self.stale_after_s = stale_after_s
        self.stuck_after = stuck_after
        self._clock = clock
        self._open_port = serial_factory or pyserial_factory()
        self._lock = threading.RLock()
        # Every event is also kept here until the gateway takes it for telemetry and faults,
        # whoever polled (a station reading its probe polls too).
        self._unclaimed: deque[ProbeFrame | ProbeFault] = deque(maxlen=UNCLAIMED_LIMIT)
        self._serial: SerialPort | None = None
        self._closed = False
        self._decoder = FrameDecoder()
        self._pending: list[ProbeFault] = []
        self._tracks: dict[int, _Track] = {}
        self._heard_at = clock()  # last frame from our board, or the last (re)open
        self._stale = False
        self._foreign: str | None = None  # the foreign board id last reported
        self._seen_board: str | None = None
        self._expected_seq: int | None = None
        self._last_uptime: int | None = None
        self._line_faults = 0  # since the last good frame: they explain missing frames
        try:
            self._serial = self._open_port(port, baudrate)
        except OSError as err:
            self._pending.append(ProbeFault(FaultCode.DISCONNECTED, None,
                                             f"cannot open {port}: {err}"))
            logger.warning("probe board on %s not available, will retry: %s", port, err)

    @property
    def connected(self) -> bool:
        """Whether the port is open."""
        return self._serial is not None

    def fileno(self) -> int | None:
        """Return the open port's file descriptor (for select), or None while disconnected."""
        with self._lock:
            return self._serial.fileno() if self._serial is not None else None

    def poll(self) -> list[ProbeFrame | ProbeFault]:
        """Read what has arrived, without blocking; return frames and faults in stream order."""
        with self._lock:
            if self._closed:
                raise ReaderFault(f"the probe board reader on {self.port} is closed")
            out: list[ProbeFrame | ProbeFault] = list(self._pending)
            self._pending.clear()
            now = self._clock()
            if self._serial is None and (out or not self._reopen(now, out)):
                return out  # retry on a later poll
            data, error = self._read()
            for item in self._decoder.feed(data):
                if isinstance(item, FrameFault):
                    self._line_fault(item, out)
                else:
                    self._frame(item, now, out)
            if error is not None:
                self._lose(error, out)
            else:
                self._check_stale(now, out)
            self._unclaimed.extend(out)
            return out

    def take_events(self) -> list[ProbeFrame | ProbeFault]:
        """Return (and forget) every event polled since the last call, whoever polled."""
        with self._lock:
            taken = list(self._unclaimed)
            self._unclaimed.clear()
            return taken

    def temperature(self, index: int) -> float | None:
        """Return probe ``index``'s latest temperature, or None if it cannot be trusted now."""
        with self._lock:
            track = self._tracks.get(index)
            latest = track.latest if track is not None and not track.stuck else None
            if self._serial is None or latest is None or (
                    self._clock() - latest.received_at > self.stale_after_s):
                return None
            return latest.reading.temp_c  # None unless the reading is OK

    def latest(self, index: int) -> TimedReading | None:
        """Return probe ``index``'s latest reading with its time, whatever its state."""
        with self._lock:
            track = self._tracks.get(index)
            return track.latest if track is not None else None

    def probe(self, index: int, probe_id: str) -> BoardProbe:
        """Return probe ``index`` (1-based) as a station's TemperatureProbe named ``probe_id``."""
        if not 1 <= index <= MAX_PROBES:
            raise ValueError(f"probe index must be 1..{MAX_PROBES}, got {index}")
        return BoardProbe(self, index, probe_id)

    def close(self) -> None:
        """Close the port; polling afterwards is an error."""
        with self._lock:
            self._closed = True
            if self._serial is not None:
                with contextlib.suppress(OSError):
                    self._serial.close()
                self._serial = None

    def __enter__(self) -> SerialProbeBoard:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # --- the line ---------------------------------------------------------------------------

    def _read(self) -> tuple[bytes, OSError | None]:
        assert self._serial is not None
        data = bytearray()
        try:
            # Read at least 1 byte: on a lost device in_waiting may say 0, read() raises.
            want = max(1, self._serial.in_waiting)
            while want and len(data) < _MAX_READ_PER_POLL:
                chunk = self._serial.read(want)
                if not chunk:
                    break
                data += chunk
                want = self._serial.in_waiting
        except OSError as err:  # pyserial's SerialException is an OSError
            return bytes(data), err
        return bytes(data), None

    def _lose(self, error: OSError, out: list[ProbeFrame | ProbeFault]) -> None:
        assert self._serial is not None
        with contextlib.suppress(OSError):
            self._serial.close()
        self._serial = None
        for fault in self._decoder.flush():
            self._line_fault(fault, out)
        self._restart_sequence()
        out.append(ProbeFault(FaultCode.DISCONNECTED, None, f"lost {self.port}: {error}"))
        logger.warning("probe board on %s disconnected: %s", self.port, error)

    def _reopen(self, now: float, out: list[ProbeFrame | ProbeFault]) -> bool:
        try:
            self._serial = self._open_port(self.port, self.baudrate)
        except OSError:
            return False  # still gone; said so once already
        self._decoder = FrameDecoder()
        self._restart_sequence()
        self._heard_at, self._stale = now, False
        out.append(ProbeFault(FaultCode.RECONNECTED, None, f"reopened {self.port}"))
        logger.info("probe board on %s reconnected", self.port)
        return True

    def _line_fault(self, fault: FrameFault, out: list[ProbeFrame | ProbeFault]) -> None:
        self._line_faults += 1
        out.append(ProbeFault(FaultCode(fault.kind.value), None, fault.reason))
        logger.debug("probe board on %s: %s %s", self.port, fault.kind.value, fault.reason)

    def _restart_sequence(self) -> None:
        self._expected_seq = self._last_uptime = None
        self._line_faults = 0

    # --- frames -----------------------------------------------------------------------------

    def _frame(self, frame: ProbeFrame, now: float, out: list[ProbeFrame | ProbeFault]) -> None:
        if self.board_id is not None and frame.board_id != self.board_id:
            if self._foreign != frame.board_id:
                self._foreign = frame.board_id
                out.append(ProbeFault(
                    FaultCode.WRONG_BOARD, None,
                    f"frames from board {frame.board_id!r} on {self.port}, expected "
                    f"{self.board_id!r}: check the wiring or the station's settings"))
                logger.warning("probe board on %s is %r, expected %r; ignoring its frames",
                               self.port, frame.board_id, self.board_id)
            return
        if self._foreign is not None:
            logger.info("probe board %r on %s is back", frame.board_id, self.port)
            self._foreign = None
        if self._seen_board != frame.board_id:
            if self._seen_board is not None:
                logger.info("probe board on %s changed from %r to %r", self.port,
                            self._seen_board, frame.board_id)
                self._restart_sequence()
            self._seen_board = frame.board_id
        self._check_sequence(frame, out)
        self._heard_at = now
        if self._stale:
            self._stale = False
            logger.info("probe board on %s sends frames again", self.port)
        out.append(frame)
        for reading in frame.readings:
            self._track(reading, now, out)

    def _check_sequence(self, frame: ProbeFrame, out: list[ProbeFrame | ProbeFault]) -> None:
        expected, last_uptime = self._expected_seq, self._last_uptime
        self._expected_seq = (frame.seq + 1) % _SEQ_MOD
        self._last_uptime = frame.uptime_ms
        line_faults, self._line_faults = self._line_faults, 0
        if expected is None or frame.seq == expected:
            return
        if last_uptime is not None and frame.uptime_ms < last_uptime:
            detail = (f"board restarted (uptime {last_uptime} ms -> {frame.uptime_ms} ms); "
                      f"sequence now {frame.seq}")
        else:
            missed = (frame.seq - expected) % _SEQ_MOD
            if missed > _SEQ_MOD // 2:
                detail = f"sequence went back from {(expected - 1) % _SEQ_MOD} to {frame.seq}"
            elif missed <= line_faults:
                return  # the damaged frames we already reported account for the gap
            else:
                detail = (f"{missed} frame(s) missing before seq {frame.seq} "
                          f"(expected {expected})")
        out.append(ProbeFault(FaultCode.SEQ_GAP, None, detail))
        logger.debug("probe board on %s: %s", self.port, detail)

    def _track(self, reading: Reading, now: float, out: list[ProbeFrame | ProbeFault]) -> None:
        probe = reading.probe
        track = self._tracks.setdefault(probe, _Track())
        before = track.latest.reading.status if track.latest is not None else None
        track.latest = TimedReading(reading, now)
        status = reading.status
        if status is not before:
            if status is ReadingStatus.UNPLUGGED:
                out.append(ProbeFault(FaultCode.UNPLUGGED, probe, f"probe {probe} unplugged"))
                logger.warning("probe %d on %s unplugged", probe, self.port)
            elif status is ReadingStatus.SENSOR_ERROR:
                out.append(ProbeFault(FaultCode.SENSOR_ERROR, probe,
                                       f"probe {probe} reports a sensor error"))
                logger.warning("probe %d on %s reports a sensor error", probe, self.port)
            elif before is not None:
                logger.info("probe %d on %s reads again", probe, self.port)
        if status is not ReadingStatus.OK:
            track.run_value, track.run_length, track.stuck = None, 0, False
            return
        if reading.temp_c == track.run_value:
            track.run_length += 1
        else:
            if track.stuck:
                logger.info("probe %d on %s is no longer stuck", probe, self.port)
            track.run_value, track.run_length, track.stuck = reading.temp_c, 1, False
        if not track.stuck and track.run_length >= self.stuck_after:
            track.stuck = True
            out.append(ProbeFault(
                FaultCode.STUCK, probe,
                f"probe {probe} sent {reading.temp_c} °C in {track.run_length} frames in a row"))
            logger.warning("probe %d on %s looks stuck at %s °C", probe, self.port,
                           reading.temp_c)

    def _check_stale(self, now: float, out: list[ProbeFrame | ProbeFault]) -> None:
        quiet = now - self._heard_at
        if not self._stale and quiet > self.stale_after_s:
            self._stale = True
            out.append(ProbeFault(FaultCode.STALE, None,
                                   f"no frame from the board on {self.port} for {quiet:.1f} s"))
            logger.warning("probe board on %s silent for %.1f s", self.port, quiet)


class BoardProbe:
    """One probe of a board as a station's ``TemperatureProbe``."""

    def __init__(self, board: SerialProbeBoard, index: int, probe_id: str) -> None:
        """Serve probe ``index`` (1-based) of ``board`` under the name ``probe_id``."""
        self.probe_id = probe_id
        self.index = index
        self.board = board

    def read_celsius(self) -> float | None:
        """Poll the board (its faults are logged) and return this probe's value or None."""
        self.board.poll()
        return self.board.temperature(self.index)
