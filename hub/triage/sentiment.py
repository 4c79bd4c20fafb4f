"""Sentiment: logistic regression with a copy of the features per review source.

A word may lean one way in one kind of review and the other way in another: "冰" (ice-cold)
praises fruit and damns a hot meal. The model therefore learns a shared weight per feature
plus one per source (food delivery ``wm``, fruit shop ``os``, English messages ``en``), by
fitting one logistic regression over ``[x, x·[source = s] for each s] / √2`` (feature
augmentation, Daumé III 2007). A text to classify has no known source: a second logistic
regression over the same features gives p(source), and p(positive) is the p(source)-weighted
mean of the sources' answers. See "Models" in docs/triage.md for how it was chosen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

SOURCE_C = 5.0  # regularisation of the source guesser


@dataclass(frozen=True)
class SentimentModel:
    """A fitted source-adapted sentiment model (plain arrays: fast and picklable)."""

    vectorizer: Any  # fitted TfidfVectorizer over pre-analysed features
    sources: tuple[str, ...]  # the review sources seen in training, in column order
    source_coef: NDArray[np.float64]  # (features, sources)
    source_intercept: NDArray[np.float64]  # (sources,)
    coef: NDArray[np.float64]  # (features, sources): shared + per-source weight, over √2
    intercept: float
    c: float  # regularisation of the sentiment regression (evaluation refits with it)

    def positive(self, x: Any) -> NDArray[np.float64]:
        """p(positive) of each row of ``x`` (TF-IDF rows from ``vectorizer``)."""
        guess = np.asarray(x @ self.source_coef) + self.source_intercept
        guess -= guess.max(axis=1, keepdims=True)
        np.exp(guess, out=guess)
        guess /= guess.sum(axis=1, keepdims=True)
        answer = 1.0 / (1.0 + np.exp(-(np.asarray(x @ self.coef) + self.intercept)))
        positive: NDArray[np.float64] = (guess * answer).sum(axis=1)
        return positive


def augmented(x: Any, sources: NDArray[np.int64], n_sources: int) -> Any:
    """``[x, x·[source = s] for each s] / √2``: every row keeps unit norm."""
    from scipy import sparse

    blocks = [x] + [sparse.diags((sources == k).astype(float)) @ x for k in range(n_sources)]
    return sparse.hstack(blocks).tocsr() / np.sqrt(2.0)


def fit(features: list[list[str]], labels: Any, sources: list[str], c: float
        ) -> SentimentModel:
    """Fit on pre-analysed texts (``tokens.analyse_sentiment``), their 0/1 labels and each
    text's source (the shipped model: ``wm`` food delivery, ``os`` fruit shop, ``en`` English
    messages); ``c`` regularises the sentiment regression."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from hub.triage.tokens import passthrough

    if len(sources) != len(features):
        raise ValueError(f"{len(features)} texts but {len(sources)} sources")
    vectorizer = TfidfVectorizer(analyzer=passthrough, sublinear_tf=True, min_df=2)
    x = vectorizer.fit_transform(features)
    names = tuple(sorted(set(sources)))
    index = np.array([names.index(s) for s in sources], dtype=np.int64)
    width = x.shape[1]
    if len(names) == 1:  # one source: nothing to guess
        source_coef, source_intercept = np.zeros((width, 1)), np.zeros(1)
    else:
        guesser = LogisticRegression(C=SOURCE_C, max_iter=3000).fit(x, index)
        source_coef, source_intercept = guesser.coef_.T, guesser.intercept_
        if len(names) == 2:  # sklearn's binary form: a logit for the second source only
            source_coef = np.column_stack([np.zeros(width), source_coef[:, 0]])
            source_intercept = np.array([0.0, source_intercept[0]])
    model = LogisticRegression(C=c, max_iter=3000).fit(augmented(x, index, len(names)), labels)
    blocks = model.coef_[0].reshape(len(names) + 1, width)  # shared, then one per source
    coef = (blocks[0][:, None] + blocks[1:].T) / np.sqrt(2.0)
    return SentimentModel(vectorizer, names, np.ascontiguousarray(source_coef),
                          np.array(source_intercept, dtype=float), np.ascontiguousarray(coef),
                          float(model.intercept_[0]), c)
