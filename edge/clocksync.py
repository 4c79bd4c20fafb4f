"""Whether the gateway's clock can be trusted: a Raspberry Pi has no battery-backed clock.

The kernel knows: an NTP daemon (systemd-timesyncd, chrony) clears ``STA_UNSYNC`` through
``adjtimex(2)`` while it disciplines the clock, and the kernel sets it again once its error
bound (``maxerror``, growing 500 µs per second without updates) passes 16 s, about nine hours
after the last update. Where ``adjtimex`` cannot be called (``ProtectClock=yes`` denies even
a read), timesyncd's flag file is the fallback; it only ever appears, so it cannot show a
holdover.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge.errors import EdgeError
from protocols.messages import ClockState

logger = logging.getLogger(__name__)

TIME_ERROR = 5  # adjtimex's return value when the clock is not synchronised
STA_UNSYNC = 0x0040
TIMESYNCD_FLAG = Path("/run/systemd/timesync/synchronized")
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


class ClockUnavailable(EdgeError):
    """The kernel's clock status cannot be read here (not Linux, or denied by a sandbox)."""


@dataclass(frozen=True, slots=True)
class KernelClock:
    """What the kernel (or timesyncd) says about the system clock."""

    synchronised: bool
    maxerror_us: int | None = None  # the kernel's bound on the clock's error
    esterror_us: int | None = None  # the kernel's estimate of it
    source: str = "adjtimex"


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _Timex(ctypes.Structure):
    # glibc's struct timex behind the ``adjtimex`` symbol. Every kernel "long" is a C long,
    # also on 32-bit Raspberry Pi OS: there ``adjtimex`` keeps the 32-bit-time layout and
    # 64-bit-time callers use ``__adjtimex64``.
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 11),
    ]


@functools.cache
def _adjtimex() -> Callable[..., int]:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.adjtimex
    except (OSError, AttributeError) as err:
        raise ClockUnavailable(f"adjtimex is not available on this system: {err}") from err
    function.argtypes = [ctypes.POINTER(_Timex)]
    function.restype = ctypes.c_int
    return function


def read_adjtimex() -> KernelClock:
    """Read the kernel's clock status with a read-only adjtimex(2); raise ClockUnavailable."""
    timex = _Timex()  # modes = 0: read only, allowed without CAP_SYS_TIME
    state = _adjtimex()(ctypes.pointer(timex))
    if state == -1:
        code = ctypes.get_errno()
        raise ClockUnavailable(f"adjtimex failed: {os.strerror(code)} "
                               f"({errno.errorcode.get(code, code)})")
    synchronised = state != TIME_ERROR and not timex.status & STA_UNSYNC
    return KernelClock(synchronised, int(timex.maxerror), int(timex.esterror), "adjtimex")


def read_timesyncd(flag: Path = TIMESYNCD_FLAG) -> KernelClock:
    """Read systemd-timesyncd's view: its flag file exists once it has synchronised this boot."""
    return KernelClock(flag.exists(), source="timesyncd")


class SystemClockSource:
    """The kernel's view through adjtimex, else (once found unavailable) timesyncd's flag file."""

    def __init__(self, flag: Path = TIMESYNCD_FLAG,
                 adjtimex: Callable[[], KernelClock] = read_adjtimex) -> None:
        self.flag = flag
        self._adjtimex: Callable[[], KernelClock] | None = adjtimex

    def __call__(self) -> KernelClock:
        """Return the clock's current status."""
        if self._adjtimex is not None:
            try:
                return self._adjtimex()
            except ClockUnavailable as err:
                logger.info("%s; using %s instead", err, self.flag)
                self._adjtimex = None  # a sandbox or a platform does not change while running
        return read_timesyncd(self.flag)


def read_boot_id(path: Path = BOOT_ID) -> str:
    """Return this boot's id ('' where the kernel does not tell)."""
    try:
        return path.read_text().strip()
    except OSError:
        return ""


class ClockMonitor:
    """Tells whether timestamps can be trusted: synced, holdover (was synced this boot) or not.

    A ``marker`` file remembers, across restarts of the process, that the clock was synced
    during this boot (it holds the boot id), so a restarted gateway still says holdover.
    """

    def __init__(self, source: Callable[[], KernelClock] | None = None, *,
                 cache_s: float = 5.0, clock: Callable[[], float] = time.monotonic,
                 marker: Path | None = None,
                 boot_id: Callable[[], str] = read_boot_id,
                 max_error_us: int | None = None) -> None:
        self.source = source or SystemClockSource()
        self.cache_s = cache_s
        self.clock = clock
        self.marker = marker
        self.max_error_us = max_error_us  # a synced clock with a larger error bound is not
        self._boot_id = boot_id
        self._lock = threading.Lock()
        self._reading: KernelClock | None = None
        self._state: ClockState | None = None
        self._read_at = 0.0
        self._synced_this_boot = self._marker_says_synced()

    def state(self) -> ClockState:
        """Return the clock state, read afresh at most every ``cache_s`` seconds."""
        with self._lock:
            now = self.clock()
            if self._state is None or now - self._read_at >= self.cache_s:
                self._refresh(now)
            assert self._state is not None
            return self._state

    def reading(self) -> KernelClock:
        """Return the reading behind the current state (refreshed like ``state``)."""
        self.state()
        with self._lock:
            assert self._reading is not None
            return self._reading

    def _refresh(self, now: float) -> None:
        reading = self.source()
        synced = reading.synchronised and (
            self.max_error_us is None or reading.maxerror_us is None
            or reading.maxerror_us <= self.max_error_us)
        if synced:
            state = ClockState.SYNCED
            if not self._synced_this_boot:
                self._synced_this_boot = True
                self._write_marker()
        elif self._synced_this_boot:
            state = ClockState.HOLDOVER
        else:
            state = ClockState.UNSYNCED
        if state is not self._state:
            self._log_change(state, reading)
        self._reading, self._state, self._read_at = reading, state, now

    def _log_change(self, state: ClockState, reading: KernelClock) -> None:
        bound = (f", error bound {reading.maxerror_us / 1000:.0f} ms"
                 if reading.maxerror_us is not None else "")
        if state is ClockState.SYNCED:
            logger.info("clock synchronised (%s%s)", reading.source, bound)
        elif state is ClockState.HOLDOVER:
            logger.warning("clock no longer synchronised: holdover (%s%s)", reading.source, bound)
        else:
            logger.warning("clock not synchronised since boot: timestamps may be wrong (%s)",
                           reading.source)

    def _marker_says_synced(self) -> bool:
        if self.marker is None:
            return False
        try:
            stored = self.marker.read_text().strip()
        except OSError:
            return False
        boot = self._boot_id()
        return bool(boot) and stored == boot

    def _write_marker(self) -> None:
        boot = self._boot_id()
        if self.marker is None or not boot:
            return
        try:
            self.marker.parent.mkdir(parents=True, exist_ok=True)
            self.marker.write_text(boot + "\n")
        except OSError as err:  # advisory: only a restart's holdover depends on it
            logger.warning("cannot record clock sync in %s: %s", self.marker, err)
