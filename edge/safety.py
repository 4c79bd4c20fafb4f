"""Food-safety rules above any grading model: they scrap or send to a person, whatever it says.

Each rule names itself in the grade (``rule``), so the worker and the auditor see why.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.ports import GradeDecision
from protocols.coldchain import FAMILIES
from protocols.messages import Grade

HIGH_RISK_FAMILIES = frozenset({"berries", "leafy", "poultry"})


@dataclass(frozen=True)
class SafetyRules:
    """Thresholds of the rules; defaults are conservative."""

    max_hours_above_limit: float = 4.0  # food-service 4-hour rule: beyond it, discard
    min_confidence: float = 0.6  # a model less sure than this asks for a check by hand

    def apply(self, decision: GradeDecision, family: str,
              named: dict[str, float | None]) -> GradeDecision:
        """Return the decision, overridden by the first rule that fires."""
        params = FAMILIES.get(family)
        core = named.get("core_temp_c")
        if params is not None and core is not None and core > params.safety_limit_c:
            return _override(decision, Grade.SCRAP, "core_above_safety_limit")
        above = named.get("hours_above_limit")
        if above is not None and above > self.max_hours_above_limit:
            return _override(decision, Grade.SCRAP, "time_above_limit_exceeded")
        if (family in HIGH_RISK_FAMILIES and not named.get("cold_chain_known")
                and decision.grade is Grade.RESELL):
            return _override(decision, Grade.CHECK, "no_cold_chain_record_high_risk")
        if core is None:
            return _override(decision, Grade.CHECK, "no_core_temperature")
        if decision.scores and max(decision.scores.values()) < self.min_confidence:
            return _override(decision, Grade.CHECK, "low_confidence")
        return decision


def _override(decision: GradeDecision, grade: Grade, rule: str) -> GradeDecision:
    if decision.grade is grade and decision.rule is not None:
        return decision  # already there for a reason of its own
    return GradeDecision(grade, decision.model_version, decision.scores, decision.features,
                         rule)
