"""The trained artifact: two TF-IDF + logistic-regression models over shared features.

Stored as one joblib file in ``hub/triage/models/`` with a JSON model card beside it; loaded
lazily once per process.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

MODELS_DIR = Path(__file__).resolve().parent / "models"
MODEL_FILE = MODELS_DIR / "triage.joblib"
CARD_FILE = MODELS_DIR / "model_card.json"
_lock = threading.Lock()


@dataclass(frozen=True)
class TriageModel:
    """Sentiment and category vectorizer/classifier pairs and the version string."""

    version: str
    sentiment_vectorizer: Any
    sentiment_classifier: Any
    category_vectorizer: Any
    category_classifier: Any
    other_below: float = 0.0  # category probability below which the answer is "other"

    def save(self, path: Path = MODEL_FILE) -> None:
        """Write the artifact (compressed joblib)."""
        import joblib

        path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(self.__dict__, path, compress=3)


@lru_cache(maxsize=4)
def load(path: Path = MODEL_FILE) -> TriageModel:
    """The artifact at ``path``, loaded once (thread-safe)."""
    import joblib

    with _lock:
        return TriageModel(**joblib.load(path))


def card(path: Path = CARD_FILE) -> dict[str, Any]:
    """The model card (version, data hashes, metrics with how they were measured)."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data
