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
from hub.triage.opinion import NEUTRAL_AT
from hub.triage.text import as_written, language, plain_form, simplified, validate
from hub.triage.tokens import analyse_cut, readable

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


def sentiment_label(p_positive: float, p_neutral: float) -> str:
    """negative / neutral / positive: "neutral" when the opinion model finds no opinion
    (p(neutral) >= ``NEUTRAL_AT``), otherwise the sentiment model's side."""
    if p_neutral >= NEUTRAL_AT:
        return "neutral"
    return "positive" if p_positive >= 0.5 else "negative"


def sentiment_score(p_positive: float, p_neutral: float) -> float:
    """-1..1: how negative or positive, shrunk towards 0 as the message is less likely to
    carry an opinion at all."""
    return round((1.0 - p_neutral) * (2.0 * p_positive - 1.0), 4)


def _keywords(indices: NDArray[Any], values: NDArray[Any], weights: NDArray[Any],
              info: tuple[NDArray[Any], list[str]], rule_words: list[str]) -> list[str]:
    """Rule hits first, then the features (one CSR row) that pushed most towards the category.

    ``info`` is (mask of features that can be keywords, their readable form), built once per
    model: character n-grams are fragments, so only words and bigrams (not stop words, at least
    two characters) read as keywords."""
    mask, readable_names = info
    out = list(rule_words)
    ok = mask[indices]
    if not ok.any() or len(out) >= MAX_KEYWORDS:
        return out[:MAX_KEYWORDS]
    idx = indices[ok]
    contrib = values[ok] * weights[idx]
    for k in np.argsort(-contrib, kind="stable"):
        if contrib[k] <= 0 or len(out) >= MAX_KEYWORDS:
            break
        word = readable_names[idx[k]]
        if any(word in kept or kept in word for kept in out):
            continue
        out.append(word)
    return out[:MAX_KEYWORDS]


_STOP = frozenset({"the", "was", "and", "were", "is", "my", "it", "of", "to", "了", "的", "都",
                   "我", "是", "就", "也", "还", "吃了", "arrived"})
_INFO: dict[int, tuple[NDArray[Any], list[str]]] = {}


def _feature_info(m: model_store.TriageModel) -> tuple[NDArray[Any], list[str]]:
    """Which category features can be keywords, and how they read; built once per model."""
    key = id(m.category_vectorizer)
    if key not in _INFO:
        names = m.category_vectorizer.get_feature_names_out()
        words = [readable(str(n)) for n in names]
        mask = np.array([not str(n).startswith("c:") and len(w) >= 2 and w not in _STOP
                         for n, w in zip(names, words, strict=True)], dtype=bool)
        _INFO[key] = (mask, words)
    return _INFO[key]


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
    plains = [plain_form(t) for t in texts]
    norms = [simplified(p) for p in plains]  # normalise(t), keeping the step before
    cuts = [rules.without_denials(n) for n in norms]
    cat_feats, sent_feats = zip(*map(analyse_cut, cuts), strict=True)
    x_cat = model_store.tfidf(m.category_vectorizer, cat_feats)
    p_pos = m.sentiment.positive(model_store.tfidf(m.sentiment.vectorizer, sent_feats))
    p_neutral = m.opinion.neutral(model_store.tfidf(m.opinion.vectorizer, sent_feats)).tolist()
    p_cat = model_store.category_probabilities(m, x_cat, cuts)
    classes = list(m.category_classifier.classes_)
    coef = m.category_classifier.coef_
    info = _feature_info(m)
    p_pos = p_pos.tolist()
    out = []
    for n, text in enumerate(texts):
        hits = rules.scan(norms[n])
        k = int(np.argmax(p_cat[n]))
        category = classes[k]
        confidence = float(p_cat[n, k])
        if confidence < m.other_below and category != "other":
            category, k = "other", classes.index("other")  # unsure: the catch-all
            confidence = float(p_cat[n, k])
        ruled = rules.override(category, hits, m.rule_categories)
        rule_words = list(hits.food_safety) + list(hits.threats)
        if ruled is not None:
            category = ruled
            k = classes.index(ruled)
            confidence = max(float(p_cat[n, k]), RULE_CONFIDENCE)
            rule_words += [w for w in hits.strong[ruled] if w not in rule_words]
        score = sentiment_score(p_pos[n], p_neutral[n])
        out.append(Triage(
            category=category,
            urgency=rules.urgency(category, score, hits, p_neutral[n] >= NEUTRAL_AT),
            sentiment=sentiment_label(p_pos[n], p_neutral[n]),
            sentiment_score=score,
            keywords=as_written(_keywords(x_cat.indices[x_cat.indptr[n]:x_cat.indptr[n + 1]],
                                          x_cat.data[x_cat.indptr[n]:x_cat.indptr[n + 1]],
                                          coef[k], info, rule_words), plains[n], norms[n]),
            confidence=round(confidence, 4),
            language=language(text),
            model_version=m.version,
        ))
    return out


def classify_one(text: str) -> Triage:
    """Triage one text. Raises ValueError for a non-string, empty or over-long text."""
    validate(text)
    return classify([text])[0]
