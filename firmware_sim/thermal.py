"""Seeded models of what a temperature probe measures, as pure functions of time.

Every model answers ``celsius(t)`` for ``t`` in epoch seconds, and the answer depends only on
the model's parameters, its seed and ``t``: never on which times were asked before or in what
order. Randomness (measurement noise, unscheduled door openings) is drawn from a hash of the
seed and the time (or the hour slot), not from a stateful generator, which is what makes that
true.

``ColdRoom`` is the air of a cold room: setpoint, compressor cycle, door openings, a slow
warming fault and noise. ``CoreProbe`` is a probe pushed into an item: a first-order lag from the
probe's own temperature towards the item's core. ``Steady`` is a constant with noise.
"""

from __future__ import annotations

import hashlib
import math
import random
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["ColdRoom", "CoreProbe", "DoorOpening", "Steady", "ThermalModel"]

_SLOT_S = 3600.0  # unscheduled door openings are drawn per hour slot
_SETTLED_TAUS = 10.0  # after 10 time constants a door's effect is below 5e-5 of its peak
_MAX_SLOT_CACHE = 512


class ThermalModel(Protocol):
    """Anything a simulated probe can measure."""

    def celsius(self, t: float) -> float:
        """Return the temperature the probe measures at epoch second ``t``."""
        ...


def _derive(seed: int, *parts: object) -> bytes:
    # repr() of a float round-trips exactly, so equal times give equal digests.
    return hashlib.blake2b(repr((seed, *parts)).encode(), digest_size=16).digest()


def _gauss(seed: int, tag: str, t: float) -> float:
    """Return a standard normal deviate that depends only on (seed, tag, t)."""
    a, b = struct.unpack("<QQ", _derive(seed, tag, t))
    u1 = (a + 1) / 2.0**64  # in (0, 1]: log() is safe
    u2 = b / 2.0**64
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass(frozen=True, slots=True)
class DoorOpening:
    """The cold-room door stands open from ``at`` (epoch s) for ``duration_s`` seconds."""

    at: float
    duration_s: float = 30.0


class ColdRoom:
    """Air temperature of a cold room around ``setpoint_c``.

    * compressor: a triangle wave of ``±compressor_swing_c`` with ``compressor_period_s``
      (phase drawn from the seed unless given);
    * doors: while open, the air heads for ``door_mix`` of the way to ``warm_air_c`` with time
      constant ``door_rise_tau_s``; once closed it recovers exponentially with
      ``recovery_tau_s``. Openings are the scheduled ``doors`` plus, if ``doors_per_hour`` > 0,
      random ones (Poisson per hour slot, drawn from the seed);
    * warming fault: from ``warming_from`` on, a linear drift of ``warming_c_per_h``;
    * noise: Gaussian with ``noise_sd_c``, a pure function of (seed, t).
    """

    def __init__(self, *, seed: int = 0, setpoint_c: float = 2.0,
                 compressor_period_s: float = 1200.0, compressor_swing_c: float = 0.5,
                 compressor_phase_s: float | None = None,
                 doors: Sequence[DoorOpening] = (), doors_per_hour: float = 0.0,
                 door_duration_s: float = 30.0, warm_air_c: float = 20.0, door_mix: float = 0.5,
                 door_rise_tau_s: float = 20.0, recovery_tau_s: float = 300.0,
                 warming_from: float | None = None, warming_c_per_h: float = 0.0,
                 noise_sd_c: float = 0.05) -> None:
        """Describe the room; raise ValueError for parameters that make no physical sense."""
        _check(compressor_period_s > 0, "compressor_period_s must be > 0")
        _check(compressor_swing_c >= 0, "compressor_swing_c must be >= 0")
        _check(doors_per_hour >= 0, "doors_per_hour must be >= 0")
        _check(door_duration_s > 0, "door_duration_s must be > 0")
        _check(0 <= door_mix <= 1, "door_mix is a fraction of the way to warm air: 0..1")
        _check(door_rise_tau_s > 0 and recovery_tau_s > 0, "time constants must be > 0")
        _check(all(d.duration_s >= 0 for d in doors), "a door opening cannot last < 0 s")
        _check(noise_sd_c >= 0, "noise_sd_c must be >= 0")
        self.seed = seed
        self.setpoint_c = setpoint_c
        self.compressor_period_s = compressor_period_s
        self.compressor_swing_c = compressor_swing_c
        if compressor_phase_s is None:
            compressor_phase_s = random.Random(_derive(seed, "phase")).uniform(
                0, compressor_period_s)
        self.compressor_phase_s = compressor_phase_s
        self.doors = tuple(sorted(doors, key=lambda d: d.at))
        self.doors_per_hour = doors_per_hour
        self.door_duration_s = door_duration_s
        self.warm_air_c = warm_air_c
        self.door_mix = door_mix
        self.door_rise_tau_s = door_rise_tau_s
        self.recovery_tau_s = recovery_tau_s
        self.warming_from = warming_from
        self.warming_c_per_h = warming_c_per_h
        self.noise_sd_c = noise_sd_c
        # A memo of pure per-slot draws: it changes speed, never results.
        self._slots: dict[int, tuple[DoorOpening, ...]] = {}

    def celsius(self, t: float) -> float:
        """Return the air temperature at ``t``, noise included."""
        noise = self.noise_sd_c * _gauss(self.seed, "room", t) if self.noise_sd_c else 0.0
        return self.expected_celsius(t) + noise

    def expected_celsius(self, t: float) -> float:
        """Return the air temperature at ``t`` without measurement noise."""
        return self.setpoint_c + self.compressor(t) + self.door_effect(t) + self.warming(t)

    def compressor(self, t: float) -> float:
        """Return the compressor cycle's offset from the setpoint at ``t``."""
        x = ((t + self.compressor_phase_s) % self.compressor_period_s) / self.compressor_period_s
        return self.compressor_swing_c * (4.0 * abs(x - 0.5) - 1.0)

    def warming(self, t: float) -> float:
        """Return the warming fault's drift at ``t`` (0 before it starts)."""
        if self.warming_from is None or t <= self.warming_from:
            return 0.0
        return self.warming_c_per_h * (t - self.warming_from) / 3600.0

    def door_effect(self, t: float) -> float:
        """Return how much warmer (or colder) open doors make the air at ``t``."""
        target = self.door_mix * (self.warm_air_c - self.setpoint_c)
        if target == 0:
            return 0.0
        total = 0.0
        for door in self.door_openings(t - self._horizon(), t):
            open_for = min(t - door.at, door.duration_s)
            excess = target * (1.0 - math.exp(-open_for / self.door_rise_tau_s))
            closed_for = t - door.at - door.duration_s
            if closed_for > 0:
                excess *= math.exp(-closed_for / self.recovery_tau_s)
            total += excess
        # Overlapping openings cannot make the air warmer than the mixing target.
        return min(total, target) if target > 0 else max(total, target)

    def door_openings(self, start: float, end: float) -> list[DoorOpening]:
        """Return the openings (scheduled and random) that begin in ``[start, end]``."""
        found = [d for d in self.doors if start <= d.at <= end]
        if self.doors_per_hour > 0:
            for slot in range(math.floor(start / _SLOT_S), math.floor(end / _SLOT_S) + 1):
                found.extend(d for d in self._random_doors(slot) if start <= d.at <= end)
        return sorted(found, key=lambda d: d.at)

    def _horizon(self) -> float:
        longest = max([self.door_duration_s * 1.5, *(d.duration_s for d in self.doors)])
        return longest + _SETTLED_TAUS * self.recovery_tau_s

    def _random_doors(self, slot: int) -> tuple[DoorOpening, ...]:
        doors = self._slots.get(slot)
        if doors is None:
            rng = random.Random(_derive(self.seed, "doors", slot))
            count = _poisson(rng, self.doors_per_hour)
            doors = tuple(sorted(
                (DoorOpening(slot * _SLOT_S + rng.uniform(0, _SLOT_S),
                             self.door_duration_s * rng.uniform(0.5, 1.5))
                 for _ in range(count)), key=lambda d: d.at))
            if len(self._slots) >= _MAX_SLOT_CACHE:
                self._slots.clear()
            self._slots[slot] = doors
        return doors


def _poisson(rng: random.Random, mean: float) -> int:
    """Draw a Poisson count (Knuth; fine for the handful of openings per hour we model)."""
    limit = math.exp(-mean)
    count, product = 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


class CoreProbe:
    """A probe pushed into an item at ``inserted_at``: a first-order lag towards the core.

    Before insertion the probe reads ``start_c`` (the station's air); afterwards it approaches
    ``item_c`` with time constant ``tau_s`` (about 10 s for a thin thermistor probe).
    """

    def __init__(self, item_c: float, *, inserted_at: float, start_c: float = 20.0,
                 tau_s: float = 10.0, noise_sd_c: float = 0.05, seed: int = 0) -> None:
        """Describe one insertion; raise ValueError for a non-positive time constant."""
        _check(tau_s > 0, "tau_s must be > 0")
        _check(noise_sd_c >= 0, "noise_sd_c must be >= 0")
        self.item_c = item_c
        self.inserted_at = inserted_at
        self.start_c = start_c
        self.tau_s = tau_s
        self.noise_sd_c = noise_sd_c
        self.seed = seed

    def celsius(self, t: float) -> float:
        """Return what the probe reads at ``t``, noise included."""
        noise = self.noise_sd_c * _gauss(self.seed, "core", t) if self.noise_sd_c else 0.0
        return self.expected_celsius(t) + noise

    def expected_celsius(self, t: float) -> float:
        """Return what the probe reads at ``t`` without measurement noise."""
        if t <= self.inserted_at:
            return self.start_c
        lag = math.exp(-(t - self.inserted_at) / self.tau_s)
        return self.item_c + (self.start_c - self.item_c) * lag

    def settled_at(self, within_c: float) -> float:
        """Return the time from which the noise-free reading is within ``within_c`` of the core."""
        _check(within_c > 0, "within_c must be > 0")
        gap = abs(self.start_c - self.item_c)
        if gap <= within_c:
            return self.inserted_at
        return self.inserted_at + self.tau_s * math.log(gap / within_c)


class Steady:
    """A constant temperature with seeded measurement noise."""

    def __init__(self, temp_c: float, *, noise_sd_c: float = 0.05, seed: int = 0) -> None:
        """Hold ``temp_c``; raise ValueError for negative noise."""
        _check(noise_sd_c >= 0, "noise_sd_c must be >= 0")
        self.temp_c = temp_c
        self.noise_sd_c = noise_sd_c
        self.seed = seed

    def celsius(self, t: float) -> float:
        """Return the constant plus this instant's noise."""
        noise = self.noise_sd_c * _gauss(self.seed, "steady", t) if self.noise_sd_c else 0.0
        return self.temp_c + noise
