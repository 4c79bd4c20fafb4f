"""Cold-chain arithmetic both sides agree on: MKT, excursions, shelf life consumed.

Formulas, parameters and test vectors from the project's cold-chain reference (USP <1160> for
MKT; Charm 1972 / McMeekin 1988 additive rule; Q10 bands from USDA Agriculture Handbook 66).
Times are hours, temperatures °C. Pure functions: the gateway's grader features and the hub's
segment analysis use the same code.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

R_J_PER_MOL_K = 8.3144
KELVIN = 273.15
USP_DELTA_H_OVER_R = 10_000.0  # ΔH = 83.144 kJ/mol, USP <1160>

Interval = tuple[float, float]  # (duration in hours, temperature °C during it)


def mean_kinetic_temperature(temps_c: Sequence[float], weights: Sequence[float] | None = None,
                             delta_h_over_r: float = USP_DELTA_H_OVER_R) -> float:
    """MKT in °C of temperatures with optional weights (time shares; equal when omitted)."""
    if not temps_c:
        raise ValueError("MKT needs at least one temperature")
    if weights is None:
        weights = [1.0] * len(temps_c)
    if len(weights) != len(temps_c) or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError("weights must be non-negative, one per temperature, not all zero")
    total = sum(weights)
    mean = sum(w / total * math.exp(-delta_h_over_r / (t + KELVIN))
               for w, t in zip(weights, temps_c, strict=True))
    return delta_h_over_r / -math.log(mean) - KELVIN


class RateModel(Protocol):
    """How much faster than at the reference temperature quality is lost at ``t_c``."""

    def relative_rate(self, t_c: float) -> float:
        """Rate at ``t_c`` relative to the reference temperature (1.0 there)."""
        ...


@dataclass(frozen=True)
class Q10Bands:
    """Q10 by temperature band (produce: 3.0 / 2.5 / 2.0 / 1.5 per 10 °C from 0 °C up)."""

    bands: tuple[tuple[float, float, float], ...] = (
        (0.0, 10.0, 3.0), (10.0, 20.0, 2.5), (20.0, 30.0, 2.0), (30.0, 40.0, 1.5))
    ref_c: float = 0.0

    def relative_rate(self, t_c: float) -> float:
        """Multiply each band's Q10 over the part of it between the reference and ``t_c``."""
        if t_c < self.ref_c:  # below the reference the first band extends downwards
            return float(self.bands[0][2] ** ((t_c - self.ref_c) / 10.0))
        rate = 1.0
        for low, high, q10 in self.bands:
            span = min(t_c, high) - max(self.ref_c, low)
            if span > 0:
                rate *= q10 ** (span / 10.0)
        top = self.bands[-1]
        if t_c > top[1]:
            rate *= top[2] ** ((t_c - top[1]) / 10.0)
        return rate


@dataclass(frozen=True)
class ConstantQ10:
    """One Q10 at every temperature."""

    q10: float
    ref_c: float = 0.0

    def relative_rate(self, t_c: float) -> float:
        """``q10`` to the power of the distance from the reference, in tens of degrees."""
        return float(self.q10 ** ((t_c - self.ref_c) / 10.0))


@dataclass(frozen=True)
class Arrhenius:
    """Rate from an activation energy (strawberry ≈ 76.6 kJ/mol)."""

    ea_j_per_mol: float
    ref_c: float = 0.0

    def relative_rate(self, t_c: float) -> float:
        """exp(-Ea/R (1/T - 1/Tref)) with T in kelvin."""
        return math.exp(-self.ea_j_per_mol / R_J_PER_MOL_K
                        * (1.0 / (t_c + KELVIN) - 1.0 / (self.ref_c + KELVIN)))


@dataclass(frozen=True)
class SquareRoot:
    """Ratkowsky square-root model: rate ∝ (T − Tmin)²; fish: Tmin = −10 °C."""

    t_min_c: float
    ref_c: float = 0.0

    def relative_rate(self, t_c: float) -> float:
        """((T − Tmin) / (Tref − Tmin))², zero at or below Tmin."""
        if t_c <= self.t_min_c:
            return 0.0
        return ((t_c - self.t_min_c) / (self.ref_c - self.t_min_c)) ** 2


def shelf_life_consumed(history: Iterable[Interval], model: RateModel,
                        shelf_life_ref_h: float) -> float:
    """Fraction of shelf life used (additive rule): Σ Δt · rate(T) / SL(ref); ≥ 1 is spoiled."""
    if shelf_life_ref_h <= 0:
        raise ValueError("the shelf life at the reference temperature must be positive")
    used = 0.0
    for hours, t_c in history:
        if hours < 0:
            raise ValueError(f"an interval cannot last {hours} h")
        used += hours * model.relative_rate(t_c) / shelf_life_ref_h
    return used


def shelf_life_at(model: RateModel, shelf_life_ref_h: float, t_c: float) -> float:
    """Shelf life in hours if the item were held at ``t_c`` throughout."""
    rate = model.relative_rate(t_c)
    return math.inf if rate == 0 else shelf_life_ref_h / rate


def hours_above(history: Iterable[Interval], limit_c: float) -> float:
    """Cumulative hours spent above ``limit_c``."""
    return sum(hours for hours, t_c in history if t_c > limit_c)


def degree_hours_above(history: Iterable[Interval], limit_c: float) -> float:
    """Σ Δt · (T − limit) over the time above ``limit_c`` (°C·h)."""
    return sum(hours * (t_c - limit_c) for hours, t_c in history if t_c > limit_c)


def intervals(readings: Sequence[tuple[float, float | None]], max_gap_h: float
              ) -> tuple[list[Interval], float]:
    """Turn (epoch seconds, °C) readings into intervals; return them and the hours unknown.

    Each reading holds until the next one; a gap longer than ``max_gap_h`` (or a missing
    value) is unknown time, never interpolated.
    """
    known: list[Interval] = []
    unknown = 0.0
    for (t0, value), (t1, _next) in itertools.pairwise(readings):
        hours = (t1 - t0) / 3600.0
        if hours < 0:
            raise ValueError("readings must be in time order")
        if value is None or hours > max_gap_h:
            unknown += hours
        else:
            known.append((hours, value))
    return known, unknown


@dataclass(frozen=True)
class FamilyParameters:
    """Per product family: reference shelf life, rate model, limits, and where they come from."""

    shelf_life_ref_h: float
    model: RateModel
    limit_c: float  # above this, time counts as an excursion
    safety_limit_c: float  # a core temperature above this is a food-safety problem
    source: str


FAMILIES: dict[str, FamilyParameters] = {
    "berries": FamilyParameters(7 * 24, Q10Bands(), 4.0, 8.0,
                                "strawberry 0 °C 5-7 d, USDA AH-66; Q10 bands, Saltveit"),
    "leafy": FamilyParameters(14 * 24, Q10Bands(), 4.0, 8.0,
                              "lettuce/spinach 0 °C 1-3 weeks, USDA AH-66"),
    "tropical": FamilyParameters(21 * 24, Q10Bands(ref_c=13.0), 18.0, 25.0,
                                 "banana 13-14 °C, chilling injury below 12 °C, USDA AH-66"),
    "fruit_veg": FamilyParameters(10 * 24, Q10Bands(ref_c=12.5), 16.0, 25.0,
                                  "mature-green tomato 12.5-15 °C, USDA AH-66"),
    "poultry": FamilyParameters(7 * 24, SquareRoot(-10.0), 4.0, 7.0,
                                "chilled poultry <= 4 °C (EU 853/2004, unverified); "
                                "square-root model, Tmin -10 °C"),
}
