"""The committed grading model, loaded with the edge runtime, with safety rules on top."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from edge.features import ScanFacts, features
from edge.grader import RuleGrader
from edge.tflite_grader import MODELS_DIR, ModelRefused, TfliteGrader, load_grader
from protocols.messages import Grade

MODEL = MODELS_DIR / "grader-1.tflite"


def _facts(family: str, core: float | None, *, used: float | None, above: float = 0.0,
           degree: float = 0.0, hours: float = 20.0, damaged: bool = False) -> ScanFacts:
    return ScanFacts(family, hours, core, 0.0, above if used is not None else None,
                     degree if used is not None else None, used, damaged)


@pytest.fixture(scope="module")
def grader() -> TfliteGrader:
    return TfliteGrader(MODEL)


@pytest.mark.parametrize(("facts", "grade"), [
    (_facts("berries", 1.5, used=0.15), Grade.RESELL),
    (_facts("leafy", 2.0, used=0.68, hours=200.0), Grade.DISCOUNT),
    (_facts("berries", 3.0, used=1.3, above=2.0, degree=12.0, hours=90.0), Grade.SCRAP),
    (_facts("tropical", 14.0, used=0.1, damaged=True), Grade.DISCOUNT),
])
def test_known_cases(grader: TfliteGrader, facts: ScanFacts, grade: Grade) -> None:
    decision = grader.grade(features(facts))
    assert decision.grade is grade, decision
    assert decision.model_version == "grader-1" and set(decision.scores) == {
        "resell", "discount", "scrap"}
    assert decision.features["core_temp_c"] == facts.core_temp_c


@pytest.mark.parametrize(("facts", "rule"), [
    (_facts("berries", 9.0, used=0.15), "core_above_safety_limit"),
    (_facts("poultry", 2.0, used=0.15, above=5.0, degree=3.0), "time_above_limit_exceeded"),
    (_facts("leafy", 1.5, used=None), "no_cold_chain_record_high_risk"),
    (_facts("fruit_veg", None, used=0.1), "no_core_temperature"),
])
def test_safety_rules_override_the_model(grader: TfliteGrader, facts: ScanFacts,
                                         rule: str) -> None:
    decision = grader.grade(features(facts))
    assert decision.rule == rule
    assert decision.grade in (Grade.SCRAP, Grade.CHECK)


def test_card_reports_what_the_issue_asks(grader: TfliteGrader) -> None:
    card = json.loads(MODEL.with_suffix(".json").read_text())
    metrics = card["metrics_held_out"]
    assert metrics["recall"]["scrap"] >= 0.98
    assert sum(map(sum, metrics["confusion_matrix"]["counts"])) > 1000


@pytest.mark.parametrize(("damage", "message"), [
    (lambda p: p.write_bytes(p.read_bytes()[:-100]), "does not match its card"),
    (lambda p: p.write_bytes(b"not a model"), "does not match its card"),
    (lambda p: p.with_suffix(".json").write_text("{"), "cannot read it or its card"),
])
def test_corrupt_or_mismatched_model_is_refused_and_the_old_grader_kept(
        tmp_path: Path, damage: Callable[[Path], object], message: str) -> None:
    copy = tmp_path / MODEL.name
    shutil.copy(MODEL, copy)
    shutil.copy(MODEL.with_suffix(".json"), copy.with_suffix(".json"))
    damage(copy)
    with pytest.raises(ModelRefused, match=message):
        TfliteGrader(copy)
    fallback = RuleGrader()
    assert load_grader(copy, fallback) is fallback


def test_a_model_for_other_features_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / MODEL.name
    shutil.copy(MODEL, copy)
    card = json.loads(MODEL.with_suffix(".json").read_text())
    card["feature_version"] = "features-0"
    copy.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(ModelRefused, match="built for features 'features-0'"):
        TfliteGrader(copy)
