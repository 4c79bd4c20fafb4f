"""The gateway's own health: CPU temperature, disk, memory, load, outbox depth, reader errors.

A sample is a plain ``{metric: value}`` dict in the metric's own unit. Until the protocol has a
message for it, :func:`to_readings` renders the metrics that fit a telemetry reading (whose
value must lie in -60..150) as ``health/<metric>`` readings; a value outside that range is left
out rather than clamped, because a clamped number would be a false one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

logger = logging.getLogger(__name__)

THERMAL_ZONE = Path("/sys/class/thermal/thermal_zone0/temp")
PROC_STATUS = Path("/proc/self/status")
PREFIX = "health/"
READING_RANGE = (-60.0, 150.0)  # protocols.messages.Celsius, applied to every reading value

CPU_TEMP_C = "cpu_temp_c"
DISK_FREE_MB = "disk_free_mb"
DISK_USED_PCT = "disk_used_pct"
OUTBOX_DEPTH = "outbox_depth"
RSS_MB = "rss_mb"
READER_ERRORS = "reader_errors"
LOAD1 = "load1"

DiskUsage = Callable[[Path], tuple[int, int, int]]  # (total, used, free) like shutil.disk_usage


class HealthSampler:
    """Samples the gateway's health; a metric this machine cannot tell is left out."""

    def __init__(self, data_dir: Path, *, outbox_depth: Callable[[], int],
                 reader_errors: Callable[[], int],
                 thermal_zone: Path = THERMAL_ZONE, proc_status: Path = PROC_STATUS,
                 disk_usage: DiskUsage = shutil.disk_usage,
                 loadavg: Callable[[], tuple[float, float, float]] = os.getloadavg) -> None:
        self.data_dir = data_dir
        self.outbox_depth = outbox_depth
        self.reader_errors = reader_errors  # errors since the gateway started
        self.thermal_zone = thermal_zone
        self.proc_status = proc_status
        self.disk_usage = disk_usage
        self.loadavg = loadavg

    def sample(self) -> dict[str, float]:
        """Return every metric that can be read now, in its own unit."""
        values: dict[str, float] = {}
        cpu = self._cpu_temp_c()
        if cpu is not None:
            values[CPU_TEMP_C] = cpu
        values.update(self._disk())
        values[OUTBOX_DEPTH] = float(self.outbox_depth())
        rss = self._rss_mb()
        if rss is not None:
            values[RSS_MB] = rss
        values[READER_ERRORS] = float(self.reader_errors())
        with contextlib.suppress(OSError):  # no load average on this platform
            values[LOAD1] = round(self.loadavg()[0], 2)
        return values

    def _cpu_temp_c(self) -> float | None:
        try:
            millidegrees = int(self.thermal_zone.read_text().strip())
        except (OSError, ValueError):  # no thermal zone (most non-Pi machines), or no reading
            return None
        return round(millidegrees / 1000, 1)

    def _disk(self) -> dict[str, float]:
        try:
            _total, used, free = self.disk_usage(self.data_dir)
        except OSError as err:
            logger.debug("no disk usage for %s: %s", self.data_dir, err)
            return {}
        # Like df: "free" is what an unprivileged user may still write (reserved blocks are
        # neither), so 100 % means the gateway can no longer write.
        usable = used + free
        pct = 100.0 * used / usable if usable else 0.0
        return {DISK_FREE_MB: round(free / 2**20, 1), DISK_USED_PCT: round(pct, 1)}

    def _rss_mb(self) -> float | None:
        try:
            status = self.proc_status.read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                fields = line.split()
                if len(fields) >= 2 and fields[1].isdigit():
                    return round(int(fields[1]) / 1024, 1)  # the kernel writes kB
        return None


def to_readings(values: Mapping[str, float], ts: float
                ) -> list[tuple[str, float, float | None]]:
    """Render the metrics that fit a telemetry reading as ``health/<metric>`` readings."""
    low, high = READING_RANGE
    return [(PREFIX + name, ts, value) for name, value in values.items()
            if low <= value <= high]


def left_out(values: Mapping[str, float]) -> list[str]:
    """Return the metrics :func:`to_readings` leaves out because they do not fit a reading."""
    low, high = READING_RANGE
    return [name for name, value in values.items() if not low <= value <= high]
