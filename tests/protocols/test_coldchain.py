"""Cold-chain arithmetic against the reference test vectors (COLDCHAIN.md)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.coldchain import (
    FAMILIES,
    Arrhenius,
    ConstantQ10,
    Q10Bands,
    SquareRoot,
    degree_hours_above,
    hours_above,
    intervals,
    mean_kinetic_temperature,
    shelf_life_at,
    shelf_life_consumed,
)


@pytest.mark.parametrize(("temps", "weights", "mkt"), [
    ([25], None, 25.0000),
    ([20, 30], None, 26.2599),
    ([20, 25, 30], None, 25.8582),
    ([2, 8], None, 5.5364),
    ([0, 10], None, 6.4327),
    ([0, 20], [23, 1], 2.8779),
    ([5, 20], [23, 1], 6.5508),
    ([4, 15], [22, 2], 5.7063),
    ([25, 40], [6, 1], 29.0609),
])
def test_mkt_vectors(temps: list[float], weights: list[float] | None, mkt: float) -> None:
    assert mean_kinetic_temperature(temps, weights) == pytest.approx(mkt, abs=5e-5)


@given(st.lists(st.floats(-30, 60), min_size=1, max_size=50))
def test_mkt_is_never_below_the_mean(temps: list[float]) -> None:
    assert mean_kinetic_temperature(temps) >= sum(temps) / len(temps) - 1e-9


STRAWBERRY_HISTORY = [(48, 0.0), (4, 20.0), (12, 10.0), (24, 0.0)]


def test_worked_example_q10_bands() -> None:
    used = shelf_life_consumed(STRAWBERRY_HISTORY, Q10Bands(), 7 * 24)
    assert used == pytest.approx(0.8214, abs=1e-4)
    assert 7 * (1 - used) == pytest.approx(1.25, abs=1e-3)  # remaining days at 0 °C


def test_worked_example_arrhenius() -> None:
    used = shelf_life_consumed(STRAWBERRY_HISTORY, Arrhenius(76_600), 7 * 24)
    assert used == pytest.approx(0.9014, abs=1e-4)


@pytest.mark.parametrize(("t_c", "days"), [(5, 4.041), (10, 2.333), (20, 0.778)])
def test_constant_q10_shelf_life(t_c: float, days: float) -> None:
    assert shelf_life_at(ConstantQ10(3.0), 7 * 24, t_c) / 24 == pytest.approx(days, abs=1e-3)


@pytest.mark.parametrize(("t_c", "relative"), [(0, 100), (10, 33), (20, 13), (30, 7), (40, 4)])
def test_q10_bands_relative_shelf_life(t_c: float, relative: float) -> None:
    assert 100 / Q10Bands().relative_rate(t_c) == pytest.approx(relative, abs=0.6)


@pytest.mark.parametrize(("t_c", "days"), [(5, 6.22), (10, 3.5)])
def test_square_root_fish(t_c: float, days: float) -> None:
    assert shelf_life_at(SquareRoot(-10.0), 14 * 24, t_c) / 24 == pytest.approx(days, abs=0.01)
    assert shelf_life_at(SquareRoot(-10.0), 14 * 24, -12) == math.inf


def test_excursions_and_gaps() -> None:
    readings = [(0.0, 2.0), (3600.0, 9.0), (7200.0, 12.0), (10800.0, None), (14400.0, 3.0),
                (36000.0, 3.0)]
    known, unknown = intervals(readings, max_gap_h=2.0)
    assert known == [(1.0, 2.0), (1.0, 9.0), (1.0, 12.0)]
    assert unknown == pytest.approx(1.0 + 6.0)  # a missing value, then a 6 h gap
    assert hours_above(known, 8.0) == 2.0
    assert degree_hours_above(known, 8.0) == pytest.approx(1.0 + 4.0)


@pytest.mark.parametrize("bad", [
    lambda: mean_kinetic_temperature([]),
    lambda: mean_kinetic_temperature([1, 2], [1]),
    lambda: shelf_life_consumed([(-1, 0)], Q10Bands(), 10),
    lambda: shelf_life_consumed([(1, 0)], Q10Bands(), 0),
    lambda: intervals([(10.0, 1.0), (0.0, 1.0)], 1.0),
])
def test_bad_input_is_refused(bad) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        bad()


def test_every_family_has_a_source_and_sane_limits() -> None:
    for name, family in FAMILIES.items():
        assert family.source, name
        assert family.limit_c < family.safety_limit_c
        assert family.model.relative_rate(family.limit_c) > 1.0, name  # limit above reference
