"""A temperature probe board on a pseudo-terminal, driven by virtual time.

The board owns the master side of a pty; its slave side is a real tty (raw, 115200 baud) that
``serial.Serial`` opens like a USB adapter. A stable symlink ``link_dir / f"tty{board_id}"``
points at the slave, as a udev ``/dev/serial/by-id`` link would, and disappears while the board
is disconnected.

Nothing happens on its own: ``run_until(t)`` writes every frame due up to virtual time ``t``
(frame *k* is due at ``boot + k / rate_hz``), so tests are deterministic and never sleep.

Choices worth knowing:

* ``reconnect()`` models unplugging a USB-powered board: by default it reboots, so ``seq``
  restarts at 0 and ``uptime_ms`` at 0. ``reconnect(reboot=False)`` models a separately powered
  board whose cable was pulled: seq and schedule carry on, counting the frames it sent into the
  void while unplugged.
* A mangled frame (``send_truncated``, ``send_corrupt``) uses up a sequence number, as a frame
  damaged on the wire does.
* The master is non-blocking: if the reader does not drain the tty, bytes that do not fit are
  dropped and counted in ``bytes_dropped`` (a UART overrun), never blocking the test.
* Readings are clamped to the frame's -50..150 °C range, as a sensor saturates.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import random
import termios
import tty
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from firmware_sim.thermal import ThermalModel
from protocols.probe_frame import (
    MAX_PROBES,
    MAX_TEMP_CENTI,
    MIN_TEMP_CENTI,
    ProbeFrame,
    Reading,
    ReadingStatus,
    encode_frame,
)

__all__ = ["ProbeBoard"]

logger = logging.getLogger(__name__)

_SEQ_MOD = 0x1_0000
_UPTIME_MOD = 0x1_0000_0000
_EPSILON_S = 1e-6  # float slack when deciding whether a frame is due


class ProbeBoard:
    """A probe board with 1..8 probes, each measuring a thermal model, on a pty."""

    def __init__(self, board_id: str, models: Sequence[ThermalModel], rate_hz: float,
                 clock: Callable[[], float], link_dir: Path, *, seq: int = 0) -> None:
        """Boot the board at ``clock()`` and plug it in; ``seq`` is its first sequence number."""
        if not 1 <= len(models) <= MAX_PROBES:
            raise ValueError(f"a board has 1..{MAX_PROBES} probes, got {len(models)}")
        if not rate_hz > 0:
            raise ValueError(f"rate_hz must be > 0, got {rate_hz}")
        if not 0 <= seq < _SEQ_MOD:
            raise ValueError(f"seq must be in 0..{_SEQ_MOD - 1}, got {seq}")
        # Fail now, not at the first frame, if the id cannot go on the wire.
        encode_frame(ProbeFrame(board_id, 0, 0, (Reading(1, None, ReadingStatus.UNPLUGGED),)))
        self.board_id = board_id
        self.rate_hz = rate_hz
        self.path = Path(link_dir) / f"tty{board_id}"
        self.frames_sent: list[ProbeFrame] = []
        self.bytes_sent = 0
        self.bytes_dropped = 0
        self._models = list(models)
        self._clock = clock
        self._period = 1.0 / rate_hz
        self._boot = clock()
        self._next_k = 1
        self._seq = seq
        self._stuck: dict[int, float] = {}
        self._unplugged: set[int] = set()
        self._errors: set[int] = set()
        self._last_value: dict[int, float] = {}
        self._master: int | None = None
        self._slave: int | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._plug_in()

    # --- inspection -------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the board is plugged in (its pty exists)."""
        return self._master is not None

    @property
    def device(self) -> str | None:
        """The slave tty the symlink points at, or None while disconnected."""
        return os.ttyname(self._slave) if self._slave is not None else None

    @property
    def next_seq(self) -> int:
        """The sequence number the next frame will carry."""
        return self._seq

    @property
    def boot_time(self) -> float:
        """The virtual time at which the board last booted."""
        return self._boot

    @property
    def probe_count(self) -> int:
        """How many probes the board has."""
        return len(self._models)

    # --- time -------------------------------------------------------------------------------

    def next_due(self) -> float:
        """Return the virtual time of the next scheduled frame."""
        return self._boot + self._next_k * self._period

    def run_until(self, t: float | None = None) -> int:
        """Emit every frame due up to virtual time ``t`` (default: now); return how many."""
        t = self._clock() if t is None else t
        count = 0
        while (due := self.next_due()) <= t + _EPSILON_S:
            self._next_k += 1
            if self.connected:
                self._emit(self._build(due))
            else:
                self._seq = (self._seq + 1) % _SEQ_MOD  # sent into the void
            count += 1
        return count

    def send_now(self) -> bool:
        """Emit one frame measured at ``clock()`` now, off schedule (a board answering a poll)."""
        if not self.connected:
            return False
        self._emit(self._build(self._clock()))
        return True

    # --- what the probes do -----------------------------------------------------------------

    def set_model(self, probe: int, model: ThermalModel) -> None:
        """Make probe ``probe`` (1-based) measure ``model`` from now on."""
        self._models[self._index(probe)] = model

    def stick(self, probe: int) -> None:
        """Make the probe keep sending its last value (a stuck sensor)."""
        if probe not in self._last_value:
            model = self._models[self._index(probe)]
            self._last_value[probe] = _clamp(model.celsius(self._clock()))
        self._stuck[probe] = self._last_value[probe]

    def unstick(self, probe: int) -> None:
        """Let a stuck probe follow its model again."""
        self._index(probe)
        self._stuck.pop(probe, None)

    def unplug(self, probe: int) -> None:
        """Pull the probe's lead: its reading becomes the unplugged sentinel."""
        self._index(probe)
        self._unplugged.add(probe)

    def replug(self, probe: int) -> None:
        """Plug the probe's lead back in."""
        self._index(probe)
        self._unplugged.discard(probe)

    def sensor_error(self, probe: int) -> None:
        """Make the probe report a sensor error (``E``) until ``clear_error``."""
        self._index(probe)
        self._errors.add(probe)

    def clear_error(self, probe: int) -> None:
        """End the probe's sensor error."""
        self._index(probe)
        self._errors.discard(probe)

    # --- line faults ------------------------------------------------------------------------

    def inject_noise(self, nbytes: int, rng: random.Random) -> bytes:
        """Write ``nbytes`` random bytes that contain no ``$``; return them."""
        noise = bytearray()
        while len(noise) < nbytes:
            byte = rng.randrange(256)
            if byte != ord("$"):  # a '$' would start a frame, not be noise
                noise.append(byte)
        self.send_raw(bytes(noise))
        return bytes(noise)

    def send_truncated(self, keep: int | None = None) -> bytes:
        """Send the first ``keep`` bytes (default: half) of a fresh frame; return them."""
        line = encode_frame(self._build(self._clock()))
        keep = len(line) // 2 if keep is None else keep
        if not 1 <= keep < len(line):
            raise ValueError(f"keep must be 1..{len(line) - 1} to cut the frame before its '\\n'")
        self.send_raw(line[:keep])
        return line[:keep]

    def send_corrupt(self) -> bytes:
        """Send a fresh frame whose CRC is wrong; return it."""
        line = encode_frame(self._build(self._clock()))
        star = line.rindex(b"*")
        bad = int(line[star + 1 : star + 5], 16) ^ 0x5A5A
        line = line[: star + 1] + f"{bad:04X}".encode() + b"\r\n"
        self.send_raw(line)
        return line

    def send_raw(self, data: bytes) -> int:
        """Write arbitrary bytes on the line now; return how many went out."""
        if self._master is None:
            return 0
        self._drain_input()
        written = 0
        while written < len(data):
            try:
                written += os.write(self._master, data[written:])
            except BlockingIOError:
                break
        self.bytes_sent += written
        if written < len(data):
            self.bytes_dropped += len(data) - written
            logger.debug("board %s: tty full, dropped %d bytes", self.board_id,
                         len(data) - written)
        return written

    # --- plugging ---------------------------------------------------------------------------

    def disconnect(self) -> None:
        """Unplug the board: close the pty (the reader gets EIO) and remove the symlink."""
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def reconnect(self, *, reboot: bool = True) -> None:
        """Plug the board back in on a new pty and re-point the symlink (see module notes)."""
        if self.connected:
            return
        now = self._clock()
        if reboot:
            self._boot, self._next_k, self._seq = now, 1, 0
        else:
            self.run_until(now)  # frames due while unplugged went nowhere
        self._plug_in()

    def close(self) -> None:
        """Unplug for good."""
        self.disconnect()

    def __enter__(self) -> ProbeBoard:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # --- internals --------------------------------------------------------------------------

    def _plug_in(self) -> None:
        master, slave = os.openpty()
        try:
            tty.setraw(slave)
            attrs = termios.tcgetattr(slave)
            attrs[4] = attrs[5] = termios.B115200  # ispeed, ospeed
            termios.tcsetattr(slave, termios.TCSANOW, attrs)
            flags = fcntl.fcntl(master, fcntl.F_GETFL)
            fcntl.fcntl(master, fcntl.F_SETFL, flags | os.O_NONBLOCK)
            # Replace atomically: a reader never sees the link missing or half-made.
            tmp = self.path.with_name(self.path.name + ".new")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            os.symlink(os.ttyname(slave), tmp)
            os.replace(tmp, self.path)
        except BaseException:
            os.close(master)
            os.close(slave)
            raise
        self._master, self._slave = master, slave

    def _drain_input(self) -> None:
        # The board ignores what the host sends, but must read it or the host's writes block.
        assert self._master is not None
        with contextlib.suppress(BlockingIOError):
            while True:
                try:
                    if not os.read(self._master, 4096):
                        return
                except OSError as err:
                    if err.errno == errno.EIO:  # no slave open: nothing to drain
                        return
                    raise

    def _build(self, at: float) -> ProbeFrame:
        uptime = max(0, round((at - self._boot) * 1000)) % _UPTIME_MOD
        frame = ProbeFrame(self.board_id, self._seq, uptime,
                           tuple(self._reading(k, at) for k in range(1, len(self._models) + 1)))
        self._seq = (self._seq + 1) % _SEQ_MOD
        return frame

    def _reading(self, probe: int, at: float) -> Reading:
        if probe in self._unplugged:
            return Reading(probe, None, ReadingStatus.UNPLUGGED)
        if probe in self._errors:
            return Reading(probe, None, ReadingStatus.SENSOR_ERROR)
        value = self._stuck.get(probe)
        if value is None:
            value = _clamp(self._models[probe - 1].celsius(at))
            self._last_value[probe] = value
        return Reading(probe, value, ReadingStatus.OK)

    def _emit(self, frame: ProbeFrame) -> None:
        line = encode_frame(frame)
        if self.send_raw(line) == len(line):
            self.frames_sent.append(frame)

    def _index(self, probe: int) -> int:
        if not 1 <= probe <= len(self._models):
            raise ValueError(f"board {self.board_id} has probes 1..{len(self._models)}, "
                             f"not {probe}")
        return probe - 1


def _clamp(celsius: float) -> float:
    centi = min(max(round(celsius * 100), MIN_TEMP_CENTI), MAX_TEMP_CENTI)
    return centi / 100
