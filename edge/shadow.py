"""Shadow runs: a delivered model grades live scans beside the current one before it decides.

The current grader's answer is the one the worker sees and the one recorded; the candidate's
answer travels with the grade (``shadow``) and is counted. After enough scans the candidate is
promoted if it agreed often enough, else dropped (and its file rolled back).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from edge.ports import GradeDecision, Grader

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShadowVerdict:
    """How a candidate model did beside the current one."""

    candidate: str
    scans: int
    agreement: float
    promoted: bool


class ShadowGrader:
    """A Grader that may carry a candidate on the side."""

    def __init__(self, current: Grader, scans_needed: int = 50, min_agreement: float = 0.9,
                 on_verdict: Callable[[ShadowVerdict], None] | None = None) -> None:
        self.current = current
        self.scans_needed = scans_needed
        self.min_agreement = min_agreement
        self.on_verdict = on_verdict
        self._candidate: Grader | None = None
        self._scans = self._agreed = 0
        self._lock = threading.Lock()

    @property
    def version(self) -> str:
        """The version in force."""
        return self.current.version

    @property
    def candidate(self) -> Grader | None:
        """The model on trial, if any."""
        return self._candidate

    def offer(self, candidate: Grader) -> None:
        """Put a model on trial (replacing any other on trial)."""
        with self._lock:
            self._candidate, self._scans, self._agreed = candidate, 0, 0
        logger.info("model %s on trial beside %s", candidate.version, self.current.version)

    def grade(self, features: dict[str, float | None]) -> GradeDecision:
        """Grade with the current model; let the candidate grade the same scan on the side."""
        decision = self.current.grade(features)
        with self._lock:
            candidate = self._candidate
            if candidate is None:
                return decision
            other = candidate.grade(features)
            self._scans += 1
            self._agreed += other.grade is decision.grade
            verdict = None
            if self._scans >= self.scans_needed:
                agreement = self._agreed / self._scans
                verdict = ShadowVerdict(candidate.version, self._scans, agreement,
                                        agreement >= self.min_agreement)
                if verdict.promoted:
                    self.current = candidate
                self._candidate = None
        shadow: dict[str, str | bool] = {"model": other.model_version,
                                         "grade": other.grade.value,
                                         "agrees": other.grade is decision.grade}
        if verdict is not None:
            logger.warning("model %s %s after %d scans (agreement %.0f%%)", verdict.candidate,
                           "promoted" if verdict.promoted else "rejected", verdict.scans,
                           100 * verdict.agreement)
            if self.on_verdict is not None:
                self.on_verdict(verdict)
        return replace(decision, shadow=shadow)
