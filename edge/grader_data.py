"""Seeded training data for the grader, built on the shelf-life model (documented in the card).

Each example is a returned item: a family, a cold-chain history summarised as the manifest
would (hours above the limit, degree-hours, shelf life used), the core temperature the probe
reads and its trend, hours since packing and the worker's damage flag. Its true grade follows
from the shelf life left and the damage; then labels are flipped with a small probability
(label noise) and the classes come out imbalanced, as returns are (most are resellable).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from edge.features import FAMILY_ORDER, ScanFacts
from protocols.coldchain import FAMILIES, degree_hours_above, hours_above, shelf_life_consumed
from protocols.messages import Grade

CLASSES = (Grade.RESELL, Grade.DISCOUNT, Grade.SCRAP)
LABEL_NOISE = 0.03


@dataclass(frozen=True)
class Example:
    """One training example."""

    facts: ScanFacts
    grade: Grade  # the label, with label noise
    truth: Grade  # the grade the history really calls for


def true_grade(used: float, damaged: bool, core_c: float, safety_limit_c: float) -> Grade:
    """The grade an expert would give with the whole history known."""
    if used >= 0.85 or core_c > safety_limit_c:
        return Grade.SCRAP
    if used >= 0.55 or damaged:
        return Grade.DISCOUNT
    return Grade.RESELL


def example(rng: random.Random) -> Example:
    """Draw one returned item."""
    family = rng.choice(FAMILY_ORDER)
    params = FAMILIES[family]
    base = {"tropical": 13.5, "fruit_veg": 12.5}.get(family, 1.0)
    history: list[tuple[float, float]] = []
    hours = 0.0
    for _ in range(rng.randint(3, 8)):  # custody segments
        length = rng.uniform(1.0, 30.0)
        temp = base + rng.gauss(0.8, 1.0)
        if rng.random() < 0.08:  # an excursion in this segment
            temp += rng.uniform(3.0, 14.0)
        history.append((length, temp))
        hours += length
    used = shelf_life_consumed(history, params.model, params.shelf_life_ref_h)
    core = history[-1][1] + rng.gauss(0.0, 0.7)
    damaged = rng.random() < 0.08
    truth = grade = true_grade(used, damaged, core, params.safety_limit_c)
    if rng.random() < LABEL_NOISE:
        grade = rng.choice([c for c in CLASSES if c is not truth])
    facts = ScanFacts(
        family=family, hours_since_packed=hours, core_temp_c=round(core, 2),
        core_trend_c_per_min=round(rng.gauss(0.0, 0.2), 3),
        hours_above_limit=round(hours_above(history, params.limit_c), 3),
        degree_hours=round(degree_hours_above(history, params.limit_c), 3),
        shelf_life_used_frac=round(used * rng.uniform(0.95, 1.05), 4),  # sensor placement
        damaged=damaged)
    return Example(facts, grade, truth)


def dataset(seed: int, size: int) -> list[Example]:
    """``size`` examples from ``seed``; the same seed gives the same data."""
    rng = random.Random(seed)
    return [example(rng) for _ in range(size)]
