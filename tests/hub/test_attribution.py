"""hub.attribution: each responsible party, missing data, conflicting data, confidence."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_sim.coldchain import FAULTS, ColdChainHistory, generate_history
from hub.attribution import (
    DEFAULT_POLICY,
    AttributionPolicy,
    attribute,
    attribute_order,
    policy_from_settings,
)
from hub.segments import (
    ChainReport,
    CustodySpan,
    Party,
    Placement,
    QcCheck,
    Reading,
    Sensor,
    chain_report,
)
from protocols.config import ConfigError

PACKED = datetime(2026, 11, 19, 8, 0, tzinfo=UTC)
DELIVERED = PACKED + timedelta(hours=24)
PARTY_OF: dict[str, Party] = {"supplier": "supplier", "warehouse": "warehouse",
                              "truck": "delivery", "customer": "customer"}
PRODUCT = Sensor("probe-1", "product", True)
# Which party each simulated fault belongs to.
EXPECTED = {"supplier_warm": "supplier", "warehouse_door": "warehouse",
            "truck_reefer": "delivery", "customer_doorstep": "customer"}


def history(fault: str, seed: int = 1, family: str = "berries",
            hours: float = 24) -> ColdChainHistory:
    return generate_history(random.Random(seed), family, PACKED,
                            PACKED + timedelta(hours=hours), fault)


def spans_of(hist: ColdChainHistory, *, sensor: Sensor = PRODUCT,
             sensors: dict[Party, Sensor] | None = None, drop: Sequence[Party] = (),
             blank: Sequence[tuple[Party, float, float]] = ()) -> list[CustodySpan]:
    """CustodySpans of a simulated history: ``drop`` empties a party's readings, ``blank``
    removes the readings of a party between two fractions of its span."""
    spans = []
    for seg in hist.segments:
        party = PARTY_OF[seg.custodian]
        readings: list[Reading] = [] if party in drop else list(seg.readings)
        for who, lo, hi in blank:
            if who == party:
                total = seg.end - seg.start
                readings = [(t, v) for t, v in readings
                            if not seg.start + lo * total < t < seg.start + hi * total]
        spans.append(CustodySpan(party, f"{seg.custodian}-7", "site", seg.start, seg.end,
                                 readings, (sensors or {}).get(party, sensor), sampling_s=900))
    return spans


def chain(hist: ColdChainHistory, family: str = "berries", qc: Sequence[QcCheck] = (),
          **kw: Any) -> ChainReport:
    return chain_report(spans_of(hist, **kw), family, item="IT-1", qc_checks=qc)


def hourly_span(party: Party, start: datetime, temps: Sequence[float],
                sensor: Sensor = PRODUCT) -> CustodySpan:
    readings: list[Reading] = [(start + timedelta(hours=i), t) for i, t in enumerate(temps)]
    return CustodySpan(party, f"{party}-1", "site", start, start + timedelta(hours=len(temps)),
                       readings, sensor, sampling_s=3600)


def codes(result: Any) -> list[str]:
    return list(result.codes)


# --- each responsible party ----------------------------------------------------------------

@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("fault", sorted(EXPECTED))
def test_each_simulated_fault_finds_its_party(fault: str, seed: int) -> None:
    result = attribute(chain(history(fault, seed)))
    party = EXPECTED[fault]
    assert result.party == party
    assert result.explained_by_temperature
    assert 0.6 <= result.confidence <= 1
    assert result.scores[party] == max(result.scores.values())
    breach = [r for r in result.toward(party) if r.code == "profile_breach"]  # type: ignore[arg-type]
    assert breach and breach[0].segment is not None
    assert result.reasons[0].item == "IT-1"


@pytest.mark.parametrize("family", ["leafy", "tropical", "fruit_veg", "poultry"])
@pytest.mark.parametrize("fault", sorted(EXPECTED))
def test_other_families_find_the_party_too(family: str, fault: str) -> None:
    assert attribute(chain(history(fault, 5, family), family)).party == EXPECTED[fault]


def test_truck_reason_has_the_numbers() -> None:
    result = attribute(chain(history("truck_reefer", 3)))
    breach = next(r for r in result.reasons if r.code == "profile_breach")
    assert breach.text.startswith("delivery segment (truck-7) 2.8 h above 4 °C")
    assert "peak 11.9 °C" in breach.text and breach.segment == 2
    assert result.summary.startswith("delivery (")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_no_fault_is_not_explained_by_temperature(seed: int) -> None:
    result = attribute(chain(history("none", seed)))
    assert result.party == "undetermined"
    assert not result.explained_by_temperature
    assert "not_explained_by_temperature" in codes(result)
    reason = next(r for r in result.reasons if r.code == "not_explained_by_temperature")
    assert "mechanical damage" in reason.text and "initial infection" in reason.text
    assert all(score == 0 for score in result.scores.values())
    assert result.confidence == 1.0  # a complete, clean record: sure it is not temperature
    assert {r.party for r in result.reasons if r.code == "within_profile"} == {
        "supplier", "warehouse", "delivery", "customer"}


def test_damage_complaint_points_to_handling_with_low_confidence() -> None:
    result = attribute(chain(history("none")), complaint_category="damaged")
    assert result.party == "delivery"
    assert not result.explained_by_temperature
    assert 0 < result.confidence <= 0.5
    assert {r.party for r in result.reasons if r.code == "damage_hint"} == {"delivery",
                                                                           "customer"}


def test_damage_complaint_with_a_temperature_fault_lowers_confidence() -> None:
    hist = history("truck_reefer")
    plain = attribute(chain(hist))
    damaged = attribute(chain(hist), complaint_category="Damaged")
    assert damaged.party == "delivery"
    assert "category_conflict" in codes(damaged)
    assert damaged.confidence < plain.confidence


def test_supplier_failed_intake_qc() -> None:
    hist = history("none")
    intake = hist.segments[1].start + timedelta(minutes=20)
    result = attribute(chain(hist, qc=[QcCheck(intake, "warehouse", False, 1.2, "grey mould")]))
    assert result.party == "supplier"
    failed = next(r for r in result.reasons if r.code == "qc_failed")
    assert failed.direction == "toward" and "grey mould" in failed.text
    assert {r.party for r in result.reasons if r.code == "qc_failed_before"} == {
        "warehouse", "delivery", "customer"}


def test_supplier_with_little_shelf_life_left_at_receipt() -> None:
    """The COLDCHAIN.md strawberry: 48 h at 0 °C and 4 h at 20 °C before the warehouse."""
    start = PACKED
    supplier = CustodySpan("supplier", "farm", "field", start, start + timedelta(hours=52),
                           [(start, 0.0), (start + timedelta(hours=48), 20.0)], PRODUCT,
                           sampling_s=86400)
    warehouse = hourly_span("warehouse", start + timedelta(hours=52), [1.0] * 12)
    result = attribute(chain_report([supplier, warehouse], "berries"))
    assert result.party == "supplier"
    receipt = next(r for r in result.reasons if r.code == "low_shelf_life_at_receipt")
    assert receipt.text.startswith("arrived at warehouse intake with 54% shelf life left")
    assert "at least 75% is expected" in receipt.text


def test_customer_kept_the_item_past_its_shelf_life() -> None:
    hist = history("none")
    result = attribute(chain(hist), complaint_at=DELIVERED + timedelta(days=9))
    assert result.party == "customer"
    reason = result.toward("customer")[0]
    assert reason.code == "kept_past_shelf_life"
    assert reason.text.startswith("complaint 9.0 d after delivery")
    soon = attribute(chain(hist), complaint_at=DELIVERED + timedelta(hours=3))
    assert soon.party == "undetermined" and soon.away("customer")


def test_doorstep_customer_even_when_complaining_soon() -> None:
    result = attribute(chain(history("customer_doorstep")),
                       complaint_at=DELIVERED + timedelta(hours=3))
    assert result.party == "customer"
    assert "complaint_soon_after_delivery" in codes(result)


# --- missing data --------------------------------------------------------------------------

def test_segment_without_readings_is_a_reason_and_lowers_confidence() -> None:
    hist = history("warehouse_door")
    full = attribute(chain(hist))
    missing = attribute(chain(hist, drop=["delivery"]))
    assert missing.party == "warehouse"
    reason = next(r for r in missing.reasons if r.code == "no_record")
    assert reason.text == "no temperature record for the delivery segment (truck-7) (6.0 h)"
    assert reason.party == "delivery" and reason.confidence_factor < 1
    assert "coverage" in codes(missing)
    assert missing.confidence < full.confidence


def test_too_little_data_is_undetermined() -> None:
    result = attribute(chain(history("truck_reefer"), drop=["warehouse"]))
    assert result.party == "undetermined" and result.confidence == 0
    assert "too_little_data" in codes(result)
    assert result.scores["delivery"] > 0  # the evidence is still shown


def test_an_unlogged_customer_does_not_hide_an_upstream_breach() -> None:
    hist = history("truck_reefer", 3)
    home = hist.segments[-1]
    long_stay = dataclasses.replace(home, end=home.end + timedelta(hours=40))  # logger: 2 h
    unlogged = dataclasses.replace(hist, segments=(*hist.segments[:-1], long_stay))

    full = attribute(chain(hist))
    result = attribute(chain(unlogged))

    assert chain(unlogged).coverage < 0.5  # most of the whole chain is unknown ...
    assert result.party == "delivery"  # ... but not the part before delivery
    assert "too_little_data" not in codes(result)
    assert any(r.code == "record_gap" and r.party == "customer" for r in result.reasons)
    assert result.confidence < full.confidence


def test_a_gap_hiding_the_fault_blames_nobody_but_says_so() -> None:
    result = attribute(chain(history("truck_reefer", 3), blank=[("delivery", 0.5, 1.01)]))
    assert result.party == "undetermined"
    gap = next(r for r in result.reasons if r.code == "record_gap")
    assert gap.party == "delivery" and gap.text.startswith("no temperature record for 3.0 h")
    assert result.confidence < 1


def test_a_gap_elsewhere_lowers_confidence() -> None:
    hist = history("truck_reefer", 3)
    full = attribute(chain(hist))
    gappy = attribute(chain(hist, blank=[("warehouse", 0.2, 0.6)]))
    assert gappy.party == "delivery"
    assert any(r.code == "record_gap" and r.party == "warehouse" for r in gappy.reasons)
    assert gappy.confidence < full.confidence


def test_nothing_recorded_at_all() -> None:
    result = attribute(chain(history("truck_reefer"), drop=list(PARTY_OF.values())))
    assert result.party == "undetermined" and result.confidence == 0
    assert codes(result).count("no_record") == 4


# --- conflicting data ----------------------------------------------------------------------

def _shift(span: CustodySpan, *, start: timedelta = timedelta(0),
           end: timedelta = timedelta(0)) -> CustodySpan:
    return dataclasses.replace(span, start=span.start + start, end=span.end + end)


def test_overlapping_custody_lowers_confidence() -> None:
    hist = history("truck_reefer", 3)
    spans = spans_of(hist)
    spans[1] = _shift(spans[1], end=timedelta(hours=1))  # the warehouse claims 1 h of the truck
    full = attribute(chain(hist))
    result = attribute(chain_report(spans, "berries"))
    assert result.party == "delivery"
    overlap = next(r for r in result.reasons if r.code == "custody_overlap")
    assert "both claim custody for 1.0 h" in overlap.text
    assert result.confidence < full.confidence


def test_clock_skew_holes_are_small_reasons() -> None:
    hist = history("warehouse_door")
    spans = spans_of(hist)
    spans[2] = _shift(spans[2], start=timedelta(minutes=2))
    result = attribute(chain_report(spans, "berries"))
    assert result.party == "warehouse"
    gap = next(r for r in result.reasons if r.code == "custody_gap")
    assert "2 min" in gap.text and "clock skew" in gap.text
    assert 0.9 < gap.confidence_factor < 1


def test_qc_passed_but_the_supplier_record_says_otherwise() -> None:
    hist = history("supplier_warm")
    intake = hist.segments[1].start + timedelta(minutes=10)
    clean = attribute(chain(hist))
    result = attribute(chain(hist, qc=[QcCheck(intake, "warehouse", True, 2.0)]))
    assert result.party == "supplier"
    conflict = next(r for r in result.reasons if r.code == "qc_conflict")
    assert "QC passed" in conflict.text and "supplier segment" in conflict.text
    assert result.confidence < clean.confidence


def test_qc_passed_but_the_first_warehouse_reading_is_high() -> None:
    start = PACKED
    spans = [hourly_span("supplier", start, [1.0, 1.0, 1.0]),
             hourly_span("warehouse", start + timedelta(hours=3), [9.5, 3.0, 1.0, 1.0, 1.0]),
             hourly_span("delivery", start + timedelta(hours=8), [2.0, 2.0])]
    qc = [QcCheck(start + timedelta(hours=3, minutes=5), "warehouse", True)]
    result = attribute(chain_report(spans, "berries", qc_checks=qc))
    texts = [r.text for r in result.reasons if r.code == "qc_conflict"]
    assert any("first warehouse reading was already 9.5 °C" in t for t in texts)
    assert "qc_passed" not in codes(result)
    arrived = next(r for r in result.reasons if r.code == "arrived_warm")
    assert arrived.party == "supplier" and arrived.direction == "toward"


def test_qc_passed_with_a_clean_record_points_away() -> None:
    hist = history("warehouse_door")
    intake = hist.segments[1].start + timedelta(minutes=10)
    result = attribute(chain(hist, qc=[QcCheck(intake, "warehouse", True, 1.1)]))
    assert result.party == "warehouse"
    assert [r.code for r in result.away("supplier")] == [
        "within_profile", "shelf_life_at_receipt", "qc_passed"]


def test_two_parties_broke_their_profile() -> None:
    door, reefer = history("warehouse_door", 2), history("truck_reefer", 2)
    spans = spans_of(door)
    spans[2] = spans_of(reefer)[2]  # same times: the generator cuts both the same way
    result = attribute(chain_report(spans, "berries"))
    single = attribute(chain(reefer))
    assert result.party == "delivery"
    assert result.toward("warehouse") and result.toward("delivery")
    assert "several_parties" in codes(result)
    assert result.confidence < single.confidence


def test_two_parties_over_their_allowance() -> None:
    """Within 4 °C throughout, but 60 h in the warehouse and 20 h on the truck at 3-3.5 °C."""
    start = PACKED
    spans = [hourly_span("supplier", start, [1.0] * 4),
             hourly_span("warehouse", start + timedelta(hours=4), [3.0] * 60),
             hourly_span("delivery", start + timedelta(hours=64), [3.5] * 20)]
    result = attribute(chain_report(spans, "berries"))
    over = {r.party: r for r in result.reasons if r.code == "over_allowance"}
    assert set(over) == {"warehouse", "delivery"}
    assert over["warehouse"].text.startswith("the warehouse used 50% of the shelf life "
                                             "(allowance 30%)")
    assert result.party == "warehouse"
    assert "several_parties" in codes(result)
    assert result.confidence < 0.6


# --- sensors -------------------------------------------------------------------------------

@pytest.mark.parametrize("fault", sorted(EXPECTED))
def test_air_and_unknown_placement_lower_confidence(fault: str) -> None:
    hist = history(fault, 2)
    party = EXPECTED[fault]
    product = attribute(chain(hist))
    air = attribute(chain(hist, sensor=Sensor("cabin", "air", True)))
    unknown = attribute(chain(hist, sensor=Sensor("?", "unknown", True)))
    assert product.party == air.party == unknown.party == party
    assert unknown.confidence < air.confidence < product.confidence
    placement = next(r for r in air.reasons if r.code == "sensor_placement")
    assert "in air, not in the product" in placement.text


def test_calibration_unknowns_lower_confidence() -> None:
    hist = history("warehouse_door", 2)
    calibrated = attribute(chain(hist))
    unknown = attribute(chain(hist, sensor=Sensor("probe-1", "product", None)))
    uncalibrated = attribute(chain(hist, sensor=Sensor("probe-1", "product", False)))
    assert uncalibrated.confidence < unknown.confidence < calibrated.confidence
    assert "sensor_calibration_unknown" in codes(unknown)
    assert "sensor_uncalibrated" in codes(uncalibrated)


# --- orders, policy ------------------------------------------------------------------------

def test_order_attribution() -> None:
    chains = [dataclasses.replace(chain(history("truck_reefer", s)), item=f"IT-{s}")
              for s in (1, 2)]
    chains.append(dataclasses.replace(chain(history("none", 3)), item="IT-3"))
    result = attribute_order(chains)
    assert result.party == "delivery"
    assert result.reasons[0].code == "order_items" and "IT-3: undetermined" in \
        result.reasons[0].text
    single = [attribute(c).confidence for c in chains[:2]]
    assert result.confidence == pytest.approx(sum(single) / 3, abs=1e-3)
    assert {r.item for r in result.reasons[1:]} == {"IT-1", "IT-2", "IT-3"}


def test_policy_changes_the_allowances() -> None:
    start = PACKED
    spans = [hourly_span("warehouse", start, [3.0] * 40),
             hourly_span("delivery", start + timedelta(hours=40), [2.0] * 4)]
    report = chain_report(spans, "berries")
    assert attribute(report).party == "warehouse"  # 33 % > 30 %
    lenient = AttributionPolicy(allowances={"warehouse": 0.4, "delivery": 0.15})
    assert attribute(report, policy=lenient).party == "undetermined"


def test_policy_from_settings() -> None:
    assert policy_from_settings({}) == DEFAULT_POLICY
    policy = policy_from_settings({"attribution": {"min_score": 0.8,
                                                   "allowances": {"delivery": 0.2}}})
    assert policy.min_score == 0.8
    assert policy.allowances == {"supplier": 0.25, "warehouse": 0.30, "delivery": 0.2}
    bad: list[tuple[dict[str, Any], str]] = [
        ({"attribution": {"allowances": {"shop": 0.1}}}, "attribution.allowances.shop"),
        ({"attribution": {"allowances": {"delivery": 1.5}}}, "attribution.allowances.delivery"),
        ({"attribution": {"min_scor": 1}}, "attribution.min_scor"),
        ({"attribution": {"min_score": "high"}}, "attribution.min_score"),
        ({"attribution": {"min_coverage": 2}}, "min_coverage"),
        ({"attribution": []}, "attribution"),
    ]
    for doc, key in bad:
        with pytest.raises(ConfigError, match=key):
            policy_from_settings(doc)


def test_naive_complaint_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        attribute(chain(history("none")), complaint_at=datetime(2026, 11, 21))


# --- properties ----------------------------------------------------------------------------

def _insert(spans: list[CustodySpan], position: int, extra: CustodySpan) -> list[CustodySpan]:
    """Insert ``extra`` before ``spans[position]`` and shift the later spans by its length."""
    length = extra.end - extra.start
    moved = [dataclasses.replace(s, start=s.start + length, end=s.end + length,
                                 readings=[(t + length, v) for t, v in s.readings])
             for s in spans[position:]]
    start = spans[position].start if position < len(spans) else spans[-1].end
    extra = dataclasses.replace(extra, start=start, end=start + length,
                                readings=[(start + (t - extra.start), v)
                                          for t, v in extra.readings])
    return [*spans[:position], extra, *moved]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(FAULTS), st.integers(0, 50), st.integers(0, 4),
       st.sampled_from(["supplier", "warehouse", "delivery", "customer"]),
       st.lists(st.floats(0.0, 3.0), min_size=2, max_size=8))
def test_an_in_profile_segment_never_draws_the_blame(fault: str, seed: int, position: int,
                                                     party: Party, temps: list[float]) -> None:
    spans = spans_of(history(fault, seed))
    extra = hourly_span(party, PACKED, temps)
    before = attribute(chain_report(spans, "berries"))
    after = attribute(chain_report(_insert(spans, position, extra), "berries"))
    if after.party == party:
        assert before.party == party


placements: st.SearchStrategy[Placement] = st.sampled_from(["product", "air", "unknown"])
calibrations = st.sampled_from([True, False, None])


@st.composite
def random_spans(draw: st.DrawFn) -> list[CustodySpan]:
    spans: list[CustodySpan] = []
    parties: tuple[Party, ...] = ("supplier", "warehouse", "delivery", "customer")
    for party in parties:
        if draw(st.booleans()) and spans:
            continue
        start = PACKED + timedelta(minutes=draw(st.integers(0, 48 * 60)))
        minutes = draw(st.integers(10, 20 * 60))
        every = draw(st.sampled_from([5, 15, 60]))
        readings: list[Reading] = [
            (start + timedelta(minutes=m), draw(st.one_of(st.none(), st.floats(-2, 35))))
            for m in range(0, minutes + 1, every) if draw(st.integers(0, 9)) > 1]
        sensor = Sensor("s", draw(placements), draw(calibrations))
        spans.append(CustodySpan(party, party, "x", start, start + timedelta(minutes=minutes),
                                 readings, sensor, sampling_s=every * 60))
    return spans


@settings(max_examples=150, deadline=None)
@given(random_spans(), st.sampled_from(["berries", "tropical", "poultry"]),
       st.sampled_from([None, "damaged", "spoiled", "temperature"]),
       st.one_of(st.none(), st.integers(-24, 24 * 12)),
       st.lists(st.tuples(st.integers(0, 60 * 60), st.sampled_from(
           ["warehouse", "delivery", "customer"]), st.booleans(),
           st.one_of(st.none(), st.floats(-2, 30))), max_size=2))
def test_confidence_and_scores_stay_in_range(spans: list[CustodySpan], family: str,
                                             category: str | None, complaint_h: int | None,
                                             qcs: list[tuple[int, Party, bool, float | None]]
                                             ) -> None:
    checks = [QcCheck(PACKED + timedelta(minutes=m), p, ok, core) for m, p, ok, core in qcs]
    report = chain_report(spans, family, qc_checks=checks)
    complaint = None if complaint_h is None else report.end + timedelta(hours=complaint_h)
    result = attribute(report, complaint_at=complaint, complaint_category=category)
    assert 0 <= result.confidence <= 1
    assert all(score >= 0 for score in result.scores.values())
    assert set(result.scores) == {"supplier", "warehouse", "delivery", "customer"}
    if result.party != "undetermined":
        assert result.scores[result.party] >= DEFAULT_POLICY.min_score
        assert result.scores[result.party] == max(result.scores.values())
    for reason in result.reasons:
        assert reason.text and 0 < reason.confidence_factor <= 1
        assert reason.segment is None or 0 <= reason.segment < len(report.segments)
        assert (reason.weight > 0) == (reason.direction == "toward")
