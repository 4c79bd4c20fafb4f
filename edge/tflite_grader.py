"""The TFLite grader: the one module that imports a TFLite runtime.

``tflite_runtime`` (Python <= 3.11, numpy < 2) or its successor ``ai_edge_litert`` (same
Interpreter API) — whichever is installed. The interpreter is loaded once; the model file
must match its card's SHA-256 and input shape, else it is refused and the caller keeps the
grader it had. Safety rules (``edge/safety.py``) sit above the model's answer.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from edge.errors import EdgeError
from edge.features import FEATURE_VERSION, NAMES, vector
from edge.ports import GradeDecision
from edge.safety import SafetyRules
from protocols.messages import Grade

logger = logging.getLogger(__name__)
CLASSES = (Grade.RESELL, Grade.DISCOUNT, Grade.SCRAP)
MODELS_DIR = Path(__file__).resolve().parent / "models"


class ModelRefused(EdgeError):
    """A model file that is corrupt, not what its card says, or not for these features."""


def interpreter_class() -> Any:
    """The installed TFLite Interpreter class (tflite_runtime, else ai_edge_litert)."""
    try:
        from tflite_runtime.interpreter import Interpreter
    except ImportError:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as err:
            raise ModelRefused("no TFLite runtime: install coldloop[edge] "
                               "(tflite-runtime or ai-edge-litert)") from err
    return Interpreter


class TfliteGrader:
    """Grades with a TFLite model; every decision carries version, features, scores, rule."""

    def __init__(self, model_path: Path, card_path: Path | None = None,
                 rules: SafetyRules | None = None) -> None:
        card_path = card_path or model_path.with_suffix(".json")
        try:
            card = json.loads(card_path.read_text())
            blob = model_path.read_bytes()
        except (OSError, ValueError) as err:
            raise ModelRefused(f"model {model_path.name}: cannot read it or its card: {err}")\
                from None
        digest = hashlib.sha256(blob).hexdigest()
        if digest != card.get("sha256"):
            raise ModelRefused(f"model {model_path.name}: SHA-256 {digest[:12]}… does not match "
                               f"its card ({str(card.get('sha256'))[:12]}…)")
        if card.get("feature_version") != FEATURE_VERSION or \
                card.get("inputs", {}).get("names") != list(NAMES):
            raise ModelRefused(f"model {model_path.name}: built for features "
                               f"{card.get('feature_version')!r}, this gateway computes "
                               f"{FEATURE_VERSION!r}")
        try:
            self._interpreter = interpreter_class()(model_content=blob)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as err:
            raise ModelRefused(f"model {model_path.name}: the runtime refused it: {err}") \
                from None
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        if list(self._input["shape"]) != [1, len(NAMES)] or \
                list(self._output["shape"]) != [1, len(CLASSES)]:
            raise ModelRefused(f"model {model_path.name}: tensors {list(self._input['shape'])}"
                               f" -> {list(self._output['shape'])}, expected [1, {len(NAMES)}]"
                               f" -> [1, {len(CLASSES)}]")
        self.version = str(card["version"])
        self.scrap_threshold = float(card["outputs"]["scrap_threshold"])
        self.rules = rules or SafetyRules()
        self._dtype = self._input["dtype"]

    @property
    def interpreter(self) -> Any:
        """The loaded interpreter and its input/output tensor indexes (for benchmarks)."""
        return self._interpreter, self._input["index"], self._output["index"]

    def scores(self, named: dict[str, float | None]) -> dict[str, float]:
        """The model's class scores for named features."""
        import numpy as np

        values, clipped = vector(named)
        if clipped:
            logger.info("grader %s: clipped out-of-range %s", self.version, clipped)
        self._interpreter.set_tensor(self._input["index"],
                                     np.array([values], dtype=self._dtype))
        self._interpreter.invoke()
        row = self._interpreter.get_tensor(self._output["index"])[0]
        return {c.value: round(float(s), 4) for c, s in zip(CLASSES, row, strict=True)}

    def grade(self, features: dict[str, float | None]) -> GradeDecision:
        """Grade from named features (see edge/features.py); safety rules have the last word."""
        scores = self.scores(features)
        if scores[Grade.SCRAP.value] >= self.scrap_threshold:
            grade = Grade.SCRAP
        else:
            grade = max((Grade.RESELL, Grade.DISCOUNT), key=lambda g: scores[g.value])
        decision = GradeDecision(grade, self.version, scores, dict(features), None)
        family = next((n.removeprefix("family_") for n in NAMES
                       if n.startswith("family_") and features.get(n)), "")
        return self.rules.apply(decision, family, features)


def load_grader(model_path: Path, fallback: Any) -> Any:
    """Load a TFLite grader, or keep ``fallback`` (logged) when the file is refused."""
    try:
        return TfliteGrader(model_path)
    except ModelRefused as err:
        logger.error("keeping grader %s: %s", getattr(fallback, "version", "?"), err)
        return fallback
