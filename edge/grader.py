"""The placeholder grader: explicit temperature and age rules until the TFLite model lands."""

from __future__ import annotations

from edge.ports import GradeDecision
from protocols.messages import Grade


class RuleGrader:
    """Grade by core temperature and time since packing; every decision names its rule."""

    version = "rules-0.1"

    def __init__(self, scrap_above_c: float = 8.0, discount_above_c: float = 5.0,
                 discount_after_h: float = 72.0) -> None:
        self.scrap_above_c = scrap_above_c
        self.discount_above_c = discount_above_c
        self.discount_after_h = discount_after_h

    def grade(self, features: dict[str, float | None]) -> GradeDecision:
        """Grade an item from ``core_temp_c`` and ``hours_since_packed``."""
        temp = features.get("core_temp_c")
        age = features.get("hours_since_packed")
        if temp is None:
            return self._decide(Grade.CHECK, features, "no_core_temperature")
        if temp > self.scrap_above_c:
            return self._decide(Grade.SCRAP, features, "core_temp_above_scrap_limit")
        if temp > self.discount_above_c:
            return self._decide(Grade.DISCOUNT, features, "core_temp_above_discount_limit")
        if age is not None and age > self.discount_after_h:
            return self._decide(Grade.DISCOUNT, features, "older_than_discount_age")
        return self._decide(Grade.RESELL, features, None)

    def _decide(self, grade: Grade, features: dict[str, float | None],
                rule: str | None) -> GradeDecision:
        return GradeDecision(grade, self.version, {grade.value: 1.0}, dict(features), rule)
