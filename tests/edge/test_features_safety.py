"""Grading features (one module for training and serving) and the safety rules above models."""

from __future__ import annotations

import pytest

from edge.features import FEATURE_VERSION, NAMES, ScanFacts, features, vector
from edge.ports import GradeDecision
from edge.safety import SafetyRules
from protocols.messages import Grade

FACTS = ScanFacts(family="berries", hours_since_packed=30.0, core_temp_c=3.0,
                  hours_above_limit=0.5, degree_hours=1.2, shelf_life_used_frac=0.4)


def _decision(grade: Grade = Grade.RESELL, score: float = 0.9) -> GradeDecision:
    return GradeDecision(grade, "model-1", {grade.value: score}, {}, None)


def test_features_are_named_and_vectorised_in_a_fixed_order() -> None:
    named = features(FACTS)
    values, clipped = vector(named)
    assert list(named) == list(NAMES) and len(values) == len(NAMES)
    assert values[NAMES.index("family_berries")] == 1.0 and clipped == []
    assert FEATURE_VERSION == "features-1"


def test_out_of_range_values_are_clipped_and_reported() -> None:
    values, clipped = vector(features(ScanFacts("leafy", 99999.0, 80.0)))
    assert clipped == ["core_temp_c", "hours_since_packed"]
    assert values[NAMES.index("core_temp_c")] == 50.0


def test_unknowns_are_zero_for_the_model_but_flagged() -> None:
    named = features(ScanFacts("berries", 10.0, None))
    values, _ = vector(named)
    assert named["core_temp_c"] is None and values[NAMES.index("core_temp_c")] == 0.0
    assert named["cold_chain_known"] == 0.0


@pytest.mark.parametrize(("facts", "grade", "rule"), [
    (ScanFacts("berries", 30.0, 9.5, 0.5, 1.0, 0.4), Grade.SCRAP, "core_above_safety_limit"),
    (ScanFacts("poultry", 30.0, 3.0, 6.0, 20.0, 0.4), Grade.SCRAP, "time_above_limit_exceeded"),
    (ScanFacts("berries", 30.0, 3.0), Grade.CHECK, "no_cold_chain_record_high_risk"),
    (ScanFacts("tropical", 30.0, None), Grade.CHECK, "no_core_temperature"),
])
def test_every_safety_rule_overrides_a_confident_resell(facts: ScanFacts, grade: Grade,
                                                        rule: str) -> None:
    decided = SafetyRules().apply(_decision(), facts.family, features(facts))
    assert (decided.grade, decided.rule) == (grade, rule)


def test_an_unsure_model_asks_for_a_check_by_hand() -> None:
    decided = SafetyRules().apply(_decision(score=0.45), "berries", features(FACTS))
    assert (decided.grade, decided.rule) == (Grade.CHECK, "low_confidence")


def test_a_sure_model_on_a_safe_item_is_left_alone() -> None:
    decision = _decision()
    assert SafetyRules().apply(decision, "berries", features(FACTS)) is decision
