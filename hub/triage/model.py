"""The trained artifact: the sentiment, opinion and category models (TF-IDF + logistic
regression each), all three over one segmentation of the text, and the character network
whose answer is mixed with the category regression's.

Stored as one joblib file in ``hub/triage/models/`` with a JSON model card beside it; loaded
lazily once per process.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Sequence
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
    """The sentiment and opinion models, the category vectorizer/classifier pair, the
    category network and the version string."""

    version: str
    sentiment: Any  # hub.triage.sentiment.SentimentModel
    opinion: Any  # hub.triage.opinion.OpinionModel
    category_vectorizer: Any
    category_classifier: Any
    other_below: float = 0.0  # category probability below which the answer is "other"
    # categories whose unambiguous phrases may override the model (None: every rule category)
    rule_categories: tuple[str, ...] | None = None
    category_network: Any = None  # hub.triage.network.CharCnn, or None
    regression_share: float = 1.0  # p(category) = share · regression + (1 − share) · network

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


def category_probabilities(m: TriageModel, x: Any, cuts: Sequence[str]) -> Any:
    """p(category) of each text, columns in ``m.category_classifier.classes_`` order: the
    regression's answer on TF-IDF rows ``x``, mixed with the network's on ``cuts`` (the
    normalised texts with denied phrases cut, ``rules.without_denials``) when the model has
    one."""
    p = probabilities(m.category_classifier, x)
    if m.category_network is None or m.regression_share >= 1.0:
        return p
    from hub.triage.network import symbols_cut

    net = m.category_network.probabilities([symbols_cut(c) for c in cuts])
    return m.regression_share * p + (1.0 - m.regression_share) * net


def card(path: Path = CARD_FILE) -> dict[str, Any]:
    """The model card (version, data hashes, metrics with how they were measured)."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def tfidf(vectorizer: Any, feats: Sequence[list[str]]) -> Any:
    """``vectorizer.transform(feats)`` for a fitted sublinear-tf, l2-normalised
    ``TfidfVectorizer`` over pre-analysed feature lists, computed in bulk with numpy: one
    C-level dict lookup per feature, then counts, idf and norms as array operations (no
    per-feature Python loop, no per-call sklearn checks). Same CSR matrix (tests check it)."""
    import numpy as np
    import scipy.sparse as sp

    vocab = vectorizer.vocabulary_
    n_docs, n_feats = len(feats), len(vocab)
    lengths = np.fromiter(map(len, feats), dtype=np.int64, count=n_docs)
    flat = [f for doc in feats for f in doc]
    cols = np.fromiter(map(vocab.get, flat, itertools.repeat(-1)), dtype=np.int64,
                       count=len(flat))
    rows = np.repeat(np.arange(n_docs, dtype=np.int64), lengths)
    keep = cols >= 0
    keys, counts = np.unique(rows[keep] * n_feats + cols[keep], return_counts=True)
    doc, col = np.divmod(keys, n_feats)
    data = (np.log(counts) + 1.0) * vectorizer.idf_[col]
    norms = np.sqrt(np.bincount(doc, weights=data * data, minlength=n_docs))
    norms[norms == 0.0] = 1.0
    data /= norms[doc]
    indptr = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(np.bincount(doc, minlength=n_docs), out=indptr[1:])
    return sp.csr_matrix((data, col, indptr), shape=(n_docs, n_feats))


def probabilities(classifier: Any, x: Any) -> Any:
    """``classifier.predict_proba(x)`` of a fitted ``LogisticRegression`` (binary: logistic;
    multinomial: softmax) without sklearn's per-call input validation."""
    import numpy as np

    scores = np.asarray(x @ classifier.coef_.T) + classifier.intercept_
    if scores.shape[1] == 1:
        p1 = 1.0 / (1.0 + np.exp(-scores[:, 0]))
        return np.column_stack([1.0 - p1, p1])
    scores -= scores.max(axis=1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=1, keepdims=True)
    return scores
