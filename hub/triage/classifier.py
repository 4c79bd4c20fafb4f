"""Complaint triage: category, urgency, sentiment and the keywords behind them.

``classify(texts)`` does a batch (one vectorisation, one matrix product per model);
``classify_one(text)`` is the single-text form. Both raise ``ValueError`` naming the problem
for a non-string, empty or over-long text. The model is loaded lazily on first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hub.triage import model as model_store
from hub.triage import rules
from hub.triage.text import language, normalise, validate
from hub.triage.tokens import analyse, readable

NEUTRAL_BAND = 0.2  # |sentiment_score| below this is "neutral" (p(positive) in 0.4..0.6)
RULE_CONFIDENCE = 0.9  # confidence reported when an unambiguous phrase decided the category
MAX_KEYWORDS = 6


@dataclass(frozen=True)
class Triage:
    """The triage of one complaint text."""

    category: str
    urgency: str
    sentiment: str
    sentiment_score: float
    keywords: list[str]
    confidence: float
    language: str
    model_version: str


def sentiment_label(score: float) -> str:
    """negative / neutral / positive from a score in -1..1 (neutral band ``NEUTRAL_BAND``)."""
    if score <= -NEUTRAL_BAND:
        return "negative"
    if score >= NEUTRAL_BAND:
        return "positive"
    return "neutral"


def _keywords(indices: NDArray[Any], values: NDArray[Any], weights: NDArray[Any],
              names: NDArray[Any], rule_words: list[str]) -> list[str]:
    """Rule hits first, then the features (one CSR row) that pushed most towards the category."""
    contrib = values * weights[indices]
    out = list(rule_words)
    for k in np.argsort(-contrib):
        if contrib[k] <= 0 or len(out) >= MAX_KEYWORDS:
            break
        name = str(names[indices[k]])
        if name.startswith("c:"):
            continue  # character n-grams are fragments; words and bigrams read as keywords
        word = readable(name)
        if len(word) < 2 or word in _STOP:
            continue
        if any(word in kept or kept in word for kept in out):
            continue
        out.append(word)
    return out[:MAX_KEYWORDS]


_STOP = frozenset({"the", "was", "and", "were", "is", "my", "it", "of", "to", "了", "的", "都",
                   "我", "是", "就", "也", "还", "吃了", "arrived"})
_NAMES: dict[int, NDArray[Any]] = {}


def _feature_names(m: model_store.TriageModel) -> NDArray[Any]:
    """The category vectorizer's feature names, built once per loaded model."""
    key = id(m.category_vectorizer)
    if key not in _NAMES:
        _NAMES[key] = m.category_vectorizer.get_feature_names_out()
    return _NAMES[key]


def classify(texts: Sequence[str]) -> list[Triage]:
    """Triage every text, in order. Raises ValueError (with the index) for a bad text."""
    if isinstance(texts, str):
        raise ValueError("classify() takes a sequence of texts; use classify_one() for one")
    for n, text in enumerate(texts):
        try:
            validate(text)
        except ValueError as err:
            raise ValueError(f"text {n}: {err}") from None
    if not texts:
        return []
    return classify_with(model_store.load(), texts)


def classify_with(m: model_store.TriageModel, texts: Sequence[str]) -> list[Triage]:
    """Triage already-validated texts with a given model (training and evaluation use it)."""
    feats = [analyse(t) for t in texts]
    x_sent = m.sentiment_vectorizer.transform(feats)
    x_cat = m.category_vectorizer.transform(feats).tocsr()
    p_pos = m.sentiment_classifier.predict_proba(x_sent)[:, 1]
    p_cat = m.category_classifier.predict_proba(x_cat)
    classes = list(m.category_classifier.classes_)
    coef = m.category_classifier.coef_
    names = _feature_names(m)
    out = []
    for n, text in enumerate(texts):
        hits = rules.scan(normalise(text))
        k = int(np.argmax(p_cat[n]))
        category = classes[k]
        confidence = float(p_cat[n, k])
        if confidence < m.other_below and category != "other":
            category, k = "other", classes.index("other")  # unsure: the catch-all
            confidence = float(p_cat[n, k])
        ruled = rules.override(category, hits)
        rule_words = list(hits.food_safety) + list(hits.threats)
        if ruled is not None:
            category = ruled
            k = classes.index(ruled)
            confidence = max(float(p_cat[n, k]), RULE_CONFIDENCE)
            rule_words += [w for w in hits.strong[ruled] if w not in rule_words]
        score = round(float(2.0 * p_pos[n] - 1.0), 4)
        out.append(Triage(
            category=category,
            urgency=rules.urgency(category, score, hits),
            sentiment=sentiment_label(score),
            sentiment_score=score,
            keywords=_keywords(x_cat.indices[x_cat.indptr[n]:x_cat.indptr[n + 1]],
                               x_cat.data[x_cat.indptr[n]:x_cat.indptr[n + 1]],
                               coef[k], names, rule_words),
            confidence=round(confidence, 4),
            language=language(text),
            model_version=m.version,
        ))
    return out


def classify_one(text: str) -> Triage:
    """Triage one text. Raises ValueError for a non-string, empty or over-long text."""
    validate(text)
    return classify([text])[0]
