"""Grading features, versioned: the one module both training and the gateway use.

Inputs come from what a station knows at scan time: the tag (product family, packed-at time),
the hub's manifest (the item's cold-chain summary), the core probe (now, and its trend over the
scan) and the worker's damage button. ``vector`` fixes the order the model sees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

FEATURE_VERSION = "features-1"
FAMILY_ORDER = ("berries", "leafy", "tropical", "fruit_veg", "poultry")
NAMES = (
    "core_temp_c", "core_trend_c_per_min", "hours_since_packed", "hours_above_limit",
    "degree_hours", "shelf_life_used_frac", "cold_chain_known", "damaged",
    *(f"family_{f}" for f in FAMILY_ORDER),
)
# Valid ranges: a value outside is clipped for the model and reported as out of range.
RANGES: dict[str, tuple[float, float]] = {
    "core_temp_c": (-20.0, 50.0), "core_trend_c_per_min": (-10.0, 10.0),
    "hours_since_packed": (0.0, 24.0 * 60), "hours_above_limit": (0.0, 24.0 * 30),
    "degree_hours": (0.0, 5000.0), "shelf_life_used_frac": (0.0, 5.0),
}


@dataclass(frozen=True)
class ScanFacts:
    """What the station knows about one scanned item."""

    family: str
    hours_since_packed: float
    core_temp_c: float | None
    core_trend_c_per_min: float = 0.0
    hours_above_limit: float | None = None  # from the manifest; None: no cold-chain record
    degree_hours: float | None = None
    shelf_life_used_frac: float | None = None
    damaged: bool = False


def features(facts: ScanFacts) -> dict[str, float | None]:
    """The named features of a scan (None where unknown), as recorded with every grade."""
    known = facts.shelf_life_used_frac is not None
    named: dict[str, float | None] = {
        "core_temp_c": facts.core_temp_c,
        "core_trend_c_per_min": facts.core_trend_c_per_min,
        "hours_since_packed": max(0.0, facts.hours_since_packed),
        "hours_above_limit": facts.hours_above_limit,
        "degree_hours": facts.degree_hours,
        "shelf_life_used_frac": facts.shelf_life_used_frac,
        "cold_chain_known": 1.0 if known else 0.0,
        "damaged": 1.0 if facts.damaged else 0.0,
    }
    for family in FAMILY_ORDER:
        named[f"family_{family}"] = 1.0 if facts.family == family else 0.0
    return named


def vector(named: dict[str, float | None]) -> tuple[list[float], list[str]]:
    """The model's input in NAMES order (unknowns as 0, values clipped); and what was clipped."""
    values: list[float] = []
    clipped: list[str] = []
    for name in NAMES:
        value = named.get(name)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            values.append(0.0)
            continue
        low, high = RANGES.get(name, (0.0, 1.0))
        if not low <= value <= high:
            clipped.append(name)
            value = min(max(value, low), high)
        values.append(float(value))
    return values, clipped
