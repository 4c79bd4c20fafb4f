"""Opinion: does a message say anything good or bad at all?

The sentiment model learnt from reviews, and every review is for or against, so it reads a
plain question ("请问可以开发票吗", "can I change my delivery address?") as strongly negative.
This model answers the question before it: p(neutral), the probability that the message
carries no opinion (a question, a request, information, a logistics reply), learnt from
written neutral messages against reviews, complaints and thanks. It reads the sentiment
model's features (one analysis per text serves both). See "Models" in docs/triage.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

NEUTRAL_AT = 0.5  # p(neutral) from which a message is labelled "neutral"


@dataclass(frozen=True)
class OpinionModel:
    """A fitted neutral-versus-opinion logistic regression (plain arrays)."""

    vectorizer: Any  # fitted TfidfVectorizer over pre-analysed sentiment features
    coef: NDArray[np.float64]  # (features,)
    intercept: float
    c: float

    def neutral(self, x: Any) -> NDArray[np.float64]:
        """p(neutral) of each row of ``x`` (TF-IDF rows from ``vectorizer``)."""
        logit = np.asarray(x @ self.coef).ravel() + self.intercept
        p: NDArray[np.float64] = 1.0 / (1.0 + np.exp(-logit))
        return p


def fit(features: Sequence[list[str]], neutral: Sequence[bool], c: float) -> OpinionModel:
    """Fit on pre-analysed texts (``tokens.analyse_sentiment``) and whether each is neutral.
    Classes are weighted to balance: neutral messages are the few."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from hub.triage.tokens import passthrough

    if len(features) != len(neutral):
        raise ValueError(f"{len(features)} texts but {len(neutral)} labels")
    vectorizer = TfidfVectorizer(analyzer=passthrough, sublinear_tf=True, min_df=2)
    x = vectorizer.fit_transform(features)
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=3000).fit(
        x, np.asarray(neutral, dtype=int))
    return OpinionModel(vectorizer, np.ascontiguousarray(model.coef_[0]),
                        float(model.intercept_[0]), c)
