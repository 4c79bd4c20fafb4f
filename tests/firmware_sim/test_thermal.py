"""The thermal models: pure functions of (seed, t), with the physics each one claims."""

from __future__ import annotations

import itertools
import math
import statistics
from typing import Any

import pytest

from firmware_sim.thermal import ColdRoom, CoreProbe, DoorOpening, Steady

T0 = 1_793_606_400.0  # 2026-11-02 08:00 UTC, in epoch seconds like the VirtualClock's


def quiet_room(**overrides: Any) -> ColdRoom:
    """A room with no compressor swing and no noise, so one effect can be looked at alone."""
    params: dict[str, Any] = {"compressor_swing_c": 0.0, "noise_sd_c": 0.0}
    params.update(overrides)
    return ColdRoom(**params)


# --- determinism ----------------------------------------------------------------------------

TIMES = [T0 + k * 7.3 for k in range(400)]


@pytest.mark.parametrize("make", [
    lambda seed: ColdRoom(seed=seed, doors_per_hour=6.0, warming_from=T0 + 600,
                          warming_c_per_h=1.0),
    lambda seed: CoreProbe(8.0, inserted_at=T0 + 100, seed=seed),
    lambda seed: Steady(4.0, seed=seed),
], ids=["room", "core", "steady"])
def test_same_seed_and_time_give_the_same_value_in_any_call_order(make: Any) -> None:
    forward = [make(7).celsius(t) for t in TIMES]
    one_model = make(7)
    backward = {t: one_model.celsius(t) for t in reversed(TIMES)}
    assert forward == [backward[t] for t in TIMES]
    assert one_model.celsius(TIMES[3]) == forward[3]  # asking again changes nothing
    assert forward != [make(8).celsius(t) for t in TIMES]  # the seed matters


def test_random_door_openings_depend_only_on_the_seed() -> None:
    room = ColdRoom(seed=3, doors_per_hour=4.0)
    late_first = room.door_openings(T0 + 36_000, T0 + 72_000)
    early = room.door_openings(T0, T0 + 36_000)
    fresh = ColdRoom(seed=3, doors_per_hour=4.0)
    assert fresh.door_openings(T0, T0 + 36_000) == early
    assert fresh.door_openings(T0 + 36_000, T0 + 72_000) == late_first
    assert 20 <= len(early) <= 60  # about 4 an hour over 10 hours
    assert early != ColdRoom(seed=4, doors_per_hour=4.0).door_openings(T0, T0 + 36_000)


# --- compressor -----------------------------------------------------------------------------

def test_compressor_cycle_stays_within_its_swing_and_repeats() -> None:
    room = ColdRoom(seed=1, setpoint_c=2.0, compressor_period_s=1200, compressor_swing_c=0.5,
                    noise_sd_c=0.0)
    values = [room.celsius(T0 + s) for s in range(0, 2400, 5)]
    assert all(1.5 - 1e-9 <= v <= 2.5 + 1e-9 for v in values)
    assert min(values) < 1.52 and max(values) > 2.48  # it really swings the full range
    assert room.celsius(T0 + 123) == pytest.approx(room.celsius(T0 + 123 + 1200))
    assert statistics.fmean(values) == pytest.approx(2.0, abs=0.01)


def test_noise_is_small_gaussian_around_the_model() -> None:
    room = ColdRoom(seed=5, noise_sd_c=0.05)
    errors = [room.celsius(T0 + s) - room.expected_celsius(T0 + s) for s in range(3000)]
    assert statistics.fmean(errors) == pytest.approx(0.0, abs=0.005)
    assert statistics.stdev(errors) == pytest.approx(0.05, rel=0.1)


# --- doors ----------------------------------------------------------------------------------

def test_door_opening_warms_the_air_then_it_recovers() -> None:
    room = quiet_room(setpoint_c=2.0, doors=[DoorOpening(T0 + 600, duration_s=60)],
                      warm_air_c=20.0, door_mix=0.5, door_rise_tau_s=20, recovery_tau_s=300)
    assert room.celsius(T0 + 599) == 2.0
    closing = room.celsius(T0 + 660)
    assert closing == pytest.approx(2.0 + 9.0 * (1 - math.exp(-3)))  # most of the way to 11 °C
    after = [room.celsius(T0 + 660 + s) for s in range(0, 3001, 60)]
    assert all(a > b for a, b in itertools.pairwise(after))  # recovers monotonically
    assert room.celsius(T0 + 660 + 300) - 2.0 == pytest.approx((closing - 2.0) / math.e)
    assert room.celsius(T0 + 660 + 3000) == pytest.approx(2.0, abs=0.001)


def test_overlapping_doors_cannot_heat_past_the_mixing_target() -> None:
    doors = [DoorOpening(T0 + k, duration_s=600) for k in (0, 5, 10)]
    room = quiet_room(setpoint_c=2.0, doors=doors, warm_air_c=20.0, door_mix=0.5)
    assert room.celsius(T0 + 590) == pytest.approx(11.0)


def test_random_door_openings_show_up_as_warm_spikes() -> None:
    room = quiet_room(seed=11, doors_per_hour=3.0)
    doors = room.door_openings(T0, T0 + 7200)
    assert doors
    for door in doors:
        assert room.celsius(door.at + door.duration_s) > room.setpoint_c + 1.0


# --- warming fault --------------------------------------------------------------------------

def test_warming_fault_drifts_linearly_from_its_start() -> None:
    room = quiet_room(setpoint_c=2.0, warming_from=T0 + 3600, warming_c_per_h=0.5)
    assert room.celsius(T0) == room.celsius(T0 + 3600) == 2.0
    assert room.celsius(T0 + 3600 * 3) == pytest.approx(3.0)
    assert room.celsius(T0 + 3600 * 5) == pytest.approx(4.0)


def test_warming_fault_shows_through_the_compressor_cycle() -> None:
    room = ColdRoom(seed=2, warming_from=T0, warming_c_per_h=1.0, noise_sd_c=0.0)
    first_hour = statistics.fmean(room.celsius(T0 + s) for s in range(0, 1200, 10))
    fifth_hour = statistics.fmean(room.celsius(T0 + 4 * 3600 + s) for s in range(0, 1200, 10))
    assert fifth_hour - first_hour == pytest.approx(4.0, abs=0.05)


# --- core probe -----------------------------------------------------------------------------

def test_core_probe_lags_towards_the_item() -> None:
    probe = CoreProbe(8.0, inserted_at=T0, start_c=20.0, tau_s=10.0, noise_sd_c=0.0)
    assert probe.celsius(T0 - 5) == 20.0
    assert probe.celsius(T0 + 10) == pytest.approx(8.0 + 12.0 / math.e)
    assert probe.celsius(T0 + 100) == pytest.approx(8.0, abs=0.001)
    settled = probe.settled_at(0.1)
    assert probe.celsius(settled) == pytest.approx(8.1)
    assert CoreProbe(8.0, inserted_at=T0, start_c=8.05).settled_at(0.1) == T0


def test_steady_model_is_its_value_plus_noise() -> None:
    assert Steady(4.0, noise_sd_c=0.0).celsius(T0) == 4.0
    assert Steady(4.0).celsius(T0) == pytest.approx(4.0, abs=0.3)


@pytest.mark.parametrize("build", [
    lambda: ColdRoom(compressor_period_s=0),
    lambda: ColdRoom(compressor_swing_c=-1),
    lambda: ColdRoom(doors_per_hour=-1),
    lambda: ColdRoom(door_mix=1.5),
    lambda: ColdRoom(recovery_tau_s=0),
    lambda: ColdRoom(doors=[DoorOpening(T0, -1)]),
    lambda: ColdRoom(noise_sd_c=-0.1),
    lambda: CoreProbe(5.0, inserted_at=T0, tau_s=0),
    lambda: Steady(5.0, noise_sd_c=-1),
])
def test_nonsense_parameters_are_refused(build: Any) -> None:
    with pytest.raises(ValueError):
        build()
