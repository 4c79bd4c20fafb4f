"""hub.segments: per-span statistics, gaps, coverage, chains and the coldchain settings."""

from __future__ import annotations

import math
import re
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.segments import (
    DEFAULT_RULES,
    CustodySpan,
    ExcursionRules,
    QcCheck,
    Reading,
    Sensor,
    chain_report,
    excursion_rules_from_settings,
    family_parameters_from_settings,
    segment_report,
)
from protocols.coldchain import (
    FAMILIES,
    Arrhenius,
    ConstantQ10,
    FamilyParameters,
    Q10Bands,
    SquareRoot,
)
from protocols.config import ConfigError

T0 = datetime(2026, 11, 19, 0, 0, tzinfo=UTC)
BERRIES = FAMILIES["berries"]
CONFIG = Path(__file__).resolve().parents[2] / "config" / "coldchain.toml"


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def hourly(temps: list[float | None], start_h: float = 0.0) -> list[Reading]:
    return [(at(start_h + i), t) for i, t in enumerate(temps)]


def span(party: str, start_h: float, end_h: float, readings: list[Reading] | None = None,
         sampling_s: float | None = 3600, **kw: Any) -> CustodySpan:
    return CustodySpan(party, f"{party}-1", "site", at(start_h), at(end_h),  # type: ignore[arg-type]
                       readings or [], sampling_s=sampling_s, **kw)


# --- statistics of one segment -------------------------------------------------------------

def test_hand_made_segment_statistics() -> None:
    """2, 9, 12, 3, 3, 3 °C hourly over 6 h: every number by hand."""
    report = segment_report(span("warehouse", 0, 6, hourly([2, 9, 12, 3, 3, 3])), BERRIES)
    assert report.n_readings == 6 and report.n_missing_values == 0
    assert report.known_h == pytest.approx(6.0) and report.unknown_h == 0
    assert report.coverage == pytest.approx(1.0) and report.gaps == ()
    assert (report.min_c, report.max_c) == (2, 12)
    assert report.mean_c == pytest.approx(32 / 6)
    assert (report.first_c, report.last_c) == (2, 3)
    # Above 4 °C: 9 and 12 for an hour each, one continuous stay from 01:00 to 03:00.
    assert report.hours_above_limit == pytest.approx(2.0)
    assert report.longest_above_limit_h == pytest.approx(2.0)
    assert report.degree_hours_above_limit == pytest.approx(5 + 8)
    assert [(e.start, e.end, e.peak_c) for e in report.excursions] == [(at(1), at(3), 12)]
    assert report.excursions[0].degree_hours == pytest.approx(13)
    # Above the 8 °C safety limit: the same 2 h, 1 + 4 °C·h.
    assert report.hours_above_safety == pytest.approx(2.0)
    assert report.degree_hours_above_safety == pytest.approx(5.0)
    # Q10 bands 3.0 (0-10 °C) and 2.5 (10-20 °C), 7 d at 0 °C.
    expected = (3 ** 0.2 + 3 ** 0.9 + 3 * 2.5 ** 0.2 + 3 * 3 ** 0.3) / 168
    assert report.shelf_life_consumed == pytest.approx(expected)
    assert report.shelf_life_consumed == pytest.approx(0.069691, abs=1e-6)
    assert {v.rule: v.status for v in report.verdicts} == {
        "single": "breach", "cumulative": "breach", "safety": "use_now"}
    assert report.profile_broken and report.safety_status == "use_now"
    assert report.label == "warehouse segment (warehouse-1)"


@pytest.mark.parametrize(("temps", "mkt", "mean"), [
    ([25.0], 25.0000, 25.0),
    ([20.0, 30.0], 26.2599, 25.0),
    ([20.0, 25.0, 30.0], 25.8582, 25.0),
    ([2.0, 8.0], 5.5364, 5.0),
    ([0.0, 10.0], 6.4327, 5.0),
    ([0.0] * 23 + [20.0], 2.8779, 0.8333),
    ([5.0] * 23 + [20.0], 6.5508, 5.6250),
    ([4.0] * 22 + [15.0] * 2, 5.7063, 4.9167),
])
def test_mkt_matches_the_reference_vectors(temps: list[float], mkt: float, mean: float) -> None:
    """Hourly readings, each holding for its hour (the last one until the span ends)."""
    report = segment_report(span("warehouse", 0, len(temps), hourly(list(temps))), BERRIES)
    assert report.mkt_c == pytest.approx(mkt, abs=5e-4)
    assert report.mean_c == pytest.approx(mean, abs=5e-5)


def test_mkt_daily_vector_and_activation_energy() -> None:
    readings: list[Reading] = [(T0 + timedelta(days=d), 40.0 if d == 6 else 25.0)
                               for d in range(7)]
    daily = CustodySpan("warehouse", "w", "x", T0, T0 + timedelta(days=7), readings,
                        sampling_s=86400)
    assert segment_report(daily, BERRIES).mkt_c == pytest.approx(29.0609, abs=5e-4)
    # With an Arrhenius model, MKT uses the product's activation energy: 83.144 kJ/mol is
    # USP's ΔH (ΔH/R = 10,000 K), 76.6 kJ/mol (strawberry) weighs the warm day less.
    usp = FamilyParameters(168, Arrhenius(83_144), 4, 8, "test")
    strawberry = FamilyParameters(168, Arrhenius(76_600), 4, 8, "test")
    assert segment_report(daily, usp).mkt_c == pytest.approx(29.0609, abs=5e-4)
    assert 27.1429 < segment_report(daily, strawberry).mkt_c < 29.0609  # type: ignore[operator]


def test_worked_strawberry_example_and_remaining_shelf_life() -> None:
    """48 h at 0 -> 4 h at 20 -> 12 h at 10 -> 24 h at 0 °C (COLDCHAIN.md)."""
    readings: list[Reading] = [(at(0), 0.0), (at(48), 20.0), (at(52), 10.0), (at(64), 0.0)]
    whole = CustodySpan("warehouse", "w", "x", at(0), at(88), readings, sampling_s=86400)
    assert segment_report(whole, BERRIES).shelf_life_consumed == pytest.approx(0.8214, abs=1e-4)
    arrhenius = FamilyParameters(168, Arrhenius(76_600), 4, 8, "test")
    assert segment_report(whole, arrhenius).shelf_life_consumed == pytest.approx(0.9014,
                                                                               abs=1e-4)
    # Split at a handover after the warm spell: the chain reports what was left at receipt.
    spans = [CustodySpan("supplier", "farm", "x", at(0), at(52), readings[:2], sampling_s=86400),
             CustodySpan("warehouse", "dc", "x", at(52), at(88), readings[2:],
                         sampling_s=86400)]
    chain = chain_report(spans, "berries")
    receipt = chain.at_receipt
    assert receipt is not None and receipt.at == at(52)
    assert receipt.consumed == pytest.approx(0.2857 + 0.1786, abs=1e-4)
    assert receipt.remaining_h == pytest.approx(168 * (1 - 0.4643), abs=0.02)
    assert chain.shelf_life_consumed == pytest.approx(0.8214, abs=1e-4)
    assert chain.remaining * 168 / 24 == pytest.approx(1.25, abs=1e-3)  # days left at 0 °C


def test_gaps_follow_the_twice_the_sampling_interval_rule() -> None:
    """15-min logger: a 60-min hole and a missing value are unknown; one dropped sample is not."""
    minutes = [0, 15, 30, 45, 60, 120, 135, 165, 180, 195, 210, 225, 240]
    readings: list[Reading] = [(T0 + timedelta(minutes=m), None if m == 180 else 3.0)
                               for m in minutes]
    report = segment_report(span("delivery", 0, 4, readings, sampling_s=900), BERRIES)
    assert report.gaps == ((at(1), at(2)), (at(3), at(3.25)))
    assert report.unknown_h == pytest.approx(1.25)
    assert report.coverage == pytest.approx(2.75 / 4)
    assert report.n_readings == 13 and report.n_missing_values == 1
    # Exactly twice the interval (135 -> 165 min) is still known.
    relaxed = segment_report(span("delivery", 0, 4, readings, sampling_s=1800), BERRIES)
    assert relaxed.gaps == ((at(3), at(3.25)),)


def test_head_and_tail_of_a_span() -> None:
    """The first reading stands for the span's start within the gap limit; a long tail does not."""
    readings: list[Reading] = [(T0 + timedelta(minutes=m), 2.0) for m in (20, 35, 50)]
    report = segment_report(span("warehouse", 0, 2, readings, sampling_s=900), BERRIES)
    assert report.gaps == ((T0 + timedelta(minutes=50), at(2)),)
    assert report.known_h == pytest.approx(50 / 60)
    assert report.coverage == pytest.approx(50 / 120)


def test_an_excursion_does_not_run_across_a_gap() -> None:
    readings = hourly([9, 9, None, 9, 9, 9])
    report = segment_report(span("warehouse", 0, 6, readings), BERRIES)
    assert [e.hours for e in report.excursions] == [2.0, 3.0]
    assert report.longest_above_limit_h == 3.0 and report.hours_above_limit == 5.0


def test_segment_without_readings() -> None:
    report = segment_report(span("delivery", 0, 3), BERRIES)
    assert not report.has_record
    assert report.coverage == 0 and report.gaps == ((at(0), at(3)),)
    assert report.min_c is None and report.max_c is None and report.mkt_c is None
    assert report.mean_c is None and report.shelf_life_consumed == 0
    assert not report.profile_broken


def test_sampling_interval_is_inferred_and_outside_readings_are_counted() -> None:
    readings: list[Reading] = [(T0 + timedelta(minutes=10 * i), 1.0) for i in range(-2, 13)]
    report = segment_report(span("warehouse", 0, 2, readings, sampling_s=None), BERRIES)
    assert report.sampling_s == 600 and report.sampling_inferred
    assert report.n_readings == 13 and report.n_outside == 2
    assert report.coverage == pytest.approx(1.0)


def test_customer_home_is_judged_against_the_safety_limit() -> None:
    fridge = segment_report(span("customer", 0, 2, hourly([6, 6])), BERRIES)
    assert fridge.hours_above_limit == 2.0 and fridge.profile_threshold_c == 8.0
    assert not fridge.profile_broken
    doorstep = segment_report(span("customer", 0, 2, hourly([6, 18])), BERRIES)
    assert doorstep.profile_broken and doorstep.profile_degree_hours == pytest.approx(10)
    strict = ExcursionRules(customer_threshold="limit")
    assert segment_report(span("customer", 0, 2, hourly([6, 6])), BERRIES,
                          rules=strict).profile_broken


@pytest.mark.parametrize(("hours", "status"), [(0.0, "ok"), (1.99, "ok"), (2.0, "use_now"),
                                               (4.0, "use_now"), (4.01, "discard")])
def test_two_hour_four_hour_rule(hours: float, status: str) -> None:
    assert DEFAULT_RULES.safety_status(hours) == status


def test_single_and_cumulative_tolerances() -> None:
    """Two 30-min stays above 4 °C: neither longer than 0.5 h, 1 h in all: within tolerance."""
    readings: list[Reading] = [(T0 + timedelta(minutes=30 * i), t)
                               for i, t in enumerate([2, 6, 2, 6, 2, 2])]
    report = segment_report(span("warehouse", 0, 3, readings, sampling_s=1800), BERRIES)
    assert report.longest_above_limit_h == 0.5 and report.hours_above_limit == 1.0
    assert not report.profile_broken
    report = segment_report(span("warehouse", 0, 3, readings, sampling_s=1800), BERRIES,
                            rules=ExcursionRules(cumulative_max_h=0.75))
    assert [v.rule for v in report.verdicts if v.breached] == ["cumulative"]


# --- the chain -----------------------------------------------------------------------------

def test_chain_orders_spans_and_finds_handovers_gaps_and_overlaps() -> None:
    spans = [
        span("delivery", 10.5, 12, hourly([2, 2], 10.5)),
        span("supplier", 0, 2, hourly([1, 1])),
        span("warehouse", 2, 10, hourly([1] * 8, 2)),  # truck arrives 30 min after it ends
        span("customer", 11.5, 13, hourly([5, 5], 11.5)),  # claims the last 30 min of the truck
    ]
    chain = chain_report(spans, "berries", item="IT-1",
                         qc_checks=[QcCheck(at(2.1), "warehouse", True, 1.5)])
    assert [s.party for s in chain.segments] == ["supplier", "warehouse", "delivery", "customer"]
    assert [s.index for s in chain.segments] == [0, 1, 2, 3]
    assert [(g.start, g.end, g.before, g.after) for g in chain.custody_gaps] == [
        (at(10), at(10.5), 1, 2)]
    assert [(o.start, o.end, o.first, o.second, o.hours) for o in chain.overlaps] == [
        (at(11.5), at(12), 2, 3, 0.5)]
    assert [(h.from_party, h.to_party, h.at) for h in chain.handovers] == [
        ("supplier", "warehouse", at(2)), ("warehouse", "delivery", at(10)),
        ("delivery", "customer", at(12))]
    assert chain.at_receipt is chain.handovers[0]
    assert chain.at_delivery is chain.handovers[2]
    assert chain.handovers[2].unknown_h == pytest.approx(0.5)  # the custody gap
    assert chain.start == at(0) and chain.end == at(13) and chain.item == "IT-1"
    assert chain.unknown_h == pytest.approx(0.5)
    assert chain.coverage == pytest.approx(13 / 13.5)
    assert chain.shelf_life_consumed == pytest.approx(
        sum(s.shelf_life_consumed for s in chain.segments))
    consumed = 0.0
    for handover in chain.handovers:
        consumed = sum(s.shelf_life_consumed for s in chain.segments[:handover.segment + 1])
        assert handover.consumed == pytest.approx(consumed)
        assert handover.remaining == pytest.approx(1 - consumed)


def test_chain_ending_with_the_truck_is_delivered_at_its_end() -> None:
    chain = chain_report([span("warehouse", 0, 2, hourly([1, 1])),
                          span("delivery", 2, 4, hourly([2, 2], 2))], "berries")
    assert chain.at_delivery is not None and chain.at_delivery.at == at(4)
    assert chain.at_receipt is None


def test_two_spans_of_one_party_make_no_handover() -> None:
    chain = chain_report([span("warehouse", 0, 2, hourly([1, 1])),
                          span("warehouse", 2, 4, hourly([1, 1], 2)),
                          span("delivery", 4, 5, hourly([2], 4))], "berries")
    assert [(h.from_party, h.to_party) for h in chain.handovers] == [
        ("warehouse", "delivery"), ("delivery", "customer")]


def test_chain_refuses_unknown_family_and_empty_input() -> None:
    with pytest.raises(ValueError, match="unknown product family 'kale'"):
        chain_report([span("warehouse", 0, 1)], "kale")
    with pytest.raises(ValueError, match="at least one"):
        chain_report([], "berries")


@pytest.mark.parametrize("bad", [
    lambda: CustodySpan("shop", "a", "b", at(0), at(1)),  # type: ignore[arg-type]
    lambda: CustodySpan("supplier", "a", "b", at(1), at(1)),
    lambda: CustodySpan("supplier", "a", "b", datetime(2026, 1, 1), at(1)),
    lambda: CustodySpan("supplier", "a", "b", at(0), at(1), [(datetime(2026, 1, 1), 1.0)]),
    lambda: CustodySpan("supplier", "a", "b", at(0), at(1), [(at(0), math.nan)]),
    lambda: CustodySpan("supplier", "a", "b", at(0), at(1), sampling_s=0),
    lambda: Sensor("p", "wall"),  # type: ignore[arg-type]
    lambda: QcCheck(datetime(2026, 1, 1), "warehouse", True),
    lambda: ExcursionRules(safety_use_now_h=5, safety_discard_h=4),
])
def test_bad_input_is_refused(bad) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        bad()


# --- properties ----------------------------------------------------------------------------

readings_strategy = st.lists(
    st.tuples(st.integers(0, 6 * 60), st.one_of(st.none(), st.floats(-5, 40))), max_size=60)


@settings(max_examples=200, deadline=None)
@given(readings_strategy, st.sampled_from([300, 900, 1800]), st.sampled_from(list(FAMILIES)),
       st.sampled_from(["supplier", "warehouse", "delivery", "customer"]))
def test_segment_invariants(raw: list[tuple[int, float | None]], sampling_s: int, family: str,
                            party: str) -> None:
    readings: list[Reading] = [(T0 + timedelta(minutes=m), t) for m, t in raw]
    report = segment_report(span(party, 0, 6, readings, sampling_s=sampling_s),
                            FAMILIES[family])
    assert 0 <= report.coverage <= 1
    assert report.known_h + report.unknown_h == pytest.approx(6.0)
    gap_h = sum((b - a).total_seconds() for a, b in report.gaps) / 3600
    assert gap_h == pytest.approx(report.unknown_h)
    assert report.longest_above_limit_h <= report.hours_above_limit + 1e-9
    assert report.hours_above_safety <= report.hours_above_limit + 1e-9
    assert report.shelf_life_consumed >= 0
    if report.mean_c is not None:
        assert report.min_c is not None and report.max_c is not None
        assert report.min_c - 1e-9 <= report.mean_c <= report.max_c + 1e-9
        assert report.mkt_c is not None and report.mkt_c >= report.mean_c - 1e-6


# --- configuration -------------------------------------------------------------------------

def load_config() -> dict[str, Any]:
    with CONFIG.open("rb") as handle:
        return tomllib.load(handle)


def test_shipped_config_matches_the_built_in_families() -> None:
    assert family_parameters_from_settings(load_config(), defaults={}) == FAMILIES
    assert excursion_rules_from_settings(load_config()) == DEFAULT_RULES


def test_a_configured_family_replaces_only_its_default() -> None:
    doc = {"families": {"berries": {
        "shelf_life_ref_h": 120, "limit_c": 5, "safety_limit_c": 9, "source": "our lab, 2026",
        "model": {"kind": "arrhenius", "ea_j_per_mol": 76_600}}, "herbs": {
        "shelf_life_ref_h": 200, "limit_c": 5, "safety_limit_c": 9, "source": "supplier sheet",
        "model": {"kind": "constant_q10", "q10": 3, "ref_c": 1}}, "fish": {
        "shelf_life_ref_h": 336, "limit_c": 2, "safety_limit_c": 4, "source": "Koutsoumanis",
        "model": {"kind": "square_root", "t_min_c": -11.8}}, "tomato": {
        "shelf_life_ref_h": 200, "limit_c": 16, "safety_limit_c": 25, "source": "AH-66",
        "model": {"kind": "q10_bands", "ref_c": 12.5}}}}
    families = family_parameters_from_settings(doc)
    assert families["berries"] == FamilyParameters(120, Arrhenius(76_600), 5, 9, "our lab, 2026")
    assert families["herbs"].model == ConstantQ10(3, 1)
    assert families["fish"].model == SquareRoot(-11.8)
    assert families["tomato"].model == Q10Bands(ref_c=12.5)
    assert families["leafy"] is FAMILIES["leafy"]
    assert family_parameters_from_settings({}) == FAMILIES


def _berries(**changes: Any) -> dict[str, Any]:
    family: dict[str, Any] = {"shelf_life_ref_h": 168, "limit_c": 4, "safety_limit_c": 8,
                              "source": "AH-66", "model": {"kind": "q10_bands"}}
    family.update(changes)
    return {"families": {"berries": {k: v for k, v in family.items() if v is not None}}}


@pytest.mark.parametrize(("doc", "key"), [
    (_berries(source=None), "families.berries.source"),
    (_berries(source="  "), "families.berries.source"),
    (_berries(shelf_life_ref_h=0), "families.berries.shelf_life_ref_h"),
    (_berries(shelf_life_ref_h=True), "families.berries.shelf_life_ref_h"),
    (_berries(limit_c="4"), "families.berries.limit_c"),
    (_berries(safety_limit_c=3), "families.berries.safety_limit_c"),
    (_berries(colour="red"), "families.berries.colour"),
    (_berries(model={"kind": "linear"}), "families.berries.model.kind"),
    (_berries(model="q10"), "families.berries.model"),
    (_berries(model={"kind": "arrhenius"}), "families.berries.model.ea_j_per_mol"),
    (_berries(model={"kind": "constant_q10", "q10": -1}), "families.berries.model.q10"),
    (_berries(model={"kind": "square_root", "t_min_c": 5}), "families.berries.model.t_min_c"),
    (_berries(model={"kind": "q10_bands", "bands": [[0, 10, 3], [5, 20, 2]]}),
     "families.berries.model.bands[1]"),
    (_berries(model={"kind": "q10_bands", "bands": [[0, 10]]}),
     "families.berries.model.bands[0]"),
    ({"families": {"berries": 7}}, "families.berries"),
    ({"families": []}, "families"),
])
def test_config_errors_name_the_key(doc: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"coldchain.toml: key '{key}")):
        family_parameters_from_settings(doc, source="coldchain.toml")


@pytest.mark.parametrize(("doc", "match"), [
    ({"excursions": {"single_max": 1}}, "excursions.single_max"),
    ({"excursions": {"single_max_h": "1"}}, "excursions.single_max_h"),
    ({"excursions": {"safety_use_now_h": 5}}, "safety_discard_h"),
    ({"excursions": {"customer_threshold": "fridge"}}, "customer_threshold"),
])
def test_excursion_settings_errors(doc: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        excursion_rules_from_settings(doc)


def test_excursion_settings_override() -> None:
    rules = excursion_rules_from_settings({"excursions": {"single_max_h": 1, "gap_factor": 3}})
    assert rules == ExcursionRules(single_max_h=1.0, gap_factor=3.0)
