"""The gateway's health sample, from files laid out like /sys and /proc."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge.health import HealthSampler, left_out, to_readings
from protocols.messages import TelemetryBatch

MB = 2**20
STATUS = """Name:\tcoldloop
State:\tS (sleeping)
VmPeak:\t  250000 kB
VmRSS:\t   51200 kB
Threads:\t6
"""


class Machine:
    """A fake Pi's files and counters; change them and sample again."""

    def __init__(self, root: Path) -> None:
        self.thermal = root / "thermal_zone0" / "temp"
        self.thermal.parent.mkdir()
        self.thermal.write_text("48312\n")
        self.status = root / "status"
        self.status.write_text(STATUS)
        self.disk = (32_000 * MB, 24_000 * MB, 6_000 * MB)  # total, used, free (2 GB reserved)
        self.depth = 0
        self.errors = 0
        self.load = (0.42, 0.30, 0.25)

    def disk_usage(self, _path: Path) -> tuple[int, int, int]:
        return self.disk


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    return Machine(tmp_path)


@pytest.fixture
def sampler(machine: Machine, tmp_path: Path) -> HealthSampler:
    return HealthSampler(tmp_path, outbox_depth=lambda: machine.depth,
                         reader_errors=lambda: machine.errors,
                         thermal_zone=machine.thermal, proc_status=machine.status,
                         disk_usage=machine.disk_usage, loadavg=lambda: machine.load)


def test_sample_in_each_metric_s_own_unit(sampler: HealthSampler, machine: Machine) -> None:
    machine.depth, machine.errors = 1234, 3
    assert sampler.sample() == {
        "cpu_temp_c": 48.3,
        "disk_free_mb": 6000.0,
        "disk_used_pct": 80.0,  # like df: used / (used + available)
        "outbox_depth": 1234.0,
        "rss_mb": 50.0,
        "reader_errors": 3.0,
        "load1": 0.42,
    }


@pytest.mark.parametrize("content", [None, "", "not a number\n"])
def test_no_thermal_zone_leaves_the_cpu_temperature_out(sampler: HealthSampler,
                                                        machine: Machine,
                                                        content: str | None) -> None:
    if content is None:
        machine.thermal.unlink()
    else:
        machine.thermal.write_text(content)
    assert "cpu_temp_c" not in sampler.sample()


def test_unreadable_sources_leave_their_metrics_out(machine: Machine, tmp_path: Path) -> None:
    def no_disk(path: Path) -> tuple[int, int, int]:
        raise FileNotFoundError(path)

    def no_loadavg() -> tuple[float, float, float]:
        raise OSError("load average unobtainable")

    machine.status.write_text("Name:\tcoldloop\n")  # a kernel thread has no VmRSS
    sampler = HealthSampler(tmp_path / "missing", outbox_depth=lambda: 7,
                            reader_errors=lambda: 0, thermal_zone=tmp_path / "none",
                            proc_status=machine.status, disk_usage=no_disk, loadavg=no_loadavg)
    assert sampler.sample() == {"outbox_depth": 7.0, "reader_errors": 0.0}


def test_real_machine_sample_has_the_portable_metrics(tmp_path: Path) -> None:
    values = HealthSampler(tmp_path, outbox_depth=lambda: 0, reader_errors=lambda: 0).sample()
    assert {"disk_free_mb", "disk_used_pct", "outbox_depth", "reader_errors"} <= set(values)
    assert 0 <= values["disk_used_pct"] <= 100


def test_readings_keep_only_values_a_telemetry_reading_can_carry(sampler: HealthSampler,
                                                                 machine: Machine) -> None:
    machine.depth = 151
    values = sampler.sample()
    readings = to_readings(values, 1_790_000_000.0)
    assert [name for name, _, _ in readings] == [
        "health/cpu_temp_c", "health/disk_used_pct", "health/rss_mb",
        "health/reader_errors", "health/load1"]
    assert left_out(values) == ["disk_free_mb", "outbox_depth"]
    batch = TelemetryBatch(id="gw-1:1:1", ts=datetime(2026, 11, 2, 8, 0, tzinfo=UTC),
                           readings=readings)
    assert batch.readings[0] == ("health/cpu_temp_c", 1_790_000_000.0, 48.3)


def test_range_edges_are_kept(machine: Machine) -> None:
    values = {"a": -60.0, "b": 150.0, "c": 150.01, "d": -60.01, "e": float("nan")}
    assert [n for n, _, _ in to_readings(values, 0.0)] == ["health/a", "health/b"]
    assert left_out(values) == ["c", "d", "e"]
