"""Compare sentiment models by cross-validation over the training part only.

``python -m hub.triage.compare_sentiment [--network | --learning-curve]`` prints the pooled
5-fold accuracy of each candidate on the sentiment training split (``data.sentiment_split``),
stratified by source and label; the held-out split is never read. Each fold's model is fitted
the way ``hub.triage.train`` fits the shipped one, on the other folds (instead of every review)
plus the English messages (generated and written). The candidates are the shipped model
(``hub.triage.sentiment``: logistic regression with a feature copy per review source, over the
sentiment features), the model it replaced (TF-IDF + logistic regression over the category
features, triage-1.6) and the usual alternatives for short review texts; see "Models" in
docs/triage.md. ``--learning-curve`` instead scores the shipped model with each fold's training
part cut to a half and three quarters (two seeded draws each): how much more data is worth.
``--neighbours`` scores the shipped model mixed with a nearest-neighbour vote.
``--written`` scores the shipped model (which also learns from the English messages written
for training) against the same without them, and with the Chinese ones added: what teaching
it how customers write to support costs on the reviews.
"""

from __future__ import annotations

import argparse
import csv
import random
import time
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

from hub.triage import data
from hub.triage.tokens import analyse, analyse_sentiment, passthrough
from hub.triage.train import generated_english, sentiment_english, written_sentiment

FOLDS = 5
FOLD_SEED = 3
# (train features, labels, test features, each training row's source: "wm", "os", "en")
Fit = Callable[[list[list[str]], Any, list[list[str]], list[str]], Any]


def _tfidf(**options: Any) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(analyzer=passthrough, sublinear_tf=True, min_df=2, **options)


def logistic(c: float) -> Fit:
    """TF-IDF + logistic regression: p(positive) of each test text."""
    from sklearn.linear_model import LogisticRegression

    def fit(x_train: list[list[str]], y: Any, x_test: list[list[str]], _: list[str]) -> Any:
        vec = _tfidf()
        model = LogisticRegression(C=c, max_iter=3000).fit(vec.fit_transform(x_train), y)
        return model.predict_proba(vec.transform(x_test))[:, 1]
    return fit


def nb_logistic(c: float, alpha: float = 1.0) -> Fit:
    """Logistic regression on binary features scaled by their naive-Bayes log-count ratio."""
    import numpy as np
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression

    def fit(x_train: list[list[str]], y: Any, x_test: list[list[str]], _: list[str]) -> Any:
        vec = _tfidf(use_idf=False, binary=True, norm=None)
        a = vec.fit_transform(x_train)
        p, q = alpha + a[y == 1].sum(0), alpha + a[y == 0].sum(0)
        ratio = sparse.diags(np.asarray(np.log((p / p.sum()) / (q / q.sum()))).ravel())
        model = LogisticRegression(C=c, max_iter=3000).fit(a @ ratio, y)
        return model.predict_proba(vec.transform(x_test) @ ratio)[:, 1]
    return fit


def multinomial_nb(alpha: float) -> Fit:
    from sklearn.naive_bayes import MultinomialNB

    def fit(x_train: list[list[str]], y: Any, x_test: list[list[str]], _: list[str]) -> Any:
        vec = _tfidf()
        model = MultinomialNB(alpha=alpha).fit(vec.fit_transform(x_train), y)
        return model.predict_proba(vec.transform(x_test))[:, 1]
    return fit


def network(hidden: int, epochs: int) -> Fit:
    """One hidden layer over the TF-IDF features (a few minutes per fold on one core)."""
    from sklearn.neural_network import MLPClassifier

    def fit(x_train: list[list[str]], y: Any, x_test: list[list[str]], _: list[str]) -> Any:
        vec = _tfidf()
        model = MLPClassifier(hidden_layer_sizes=(hidden,), max_iter=epochs, random_state=0)
        model.fit(vec.fit_transform(x_train), y)
        return model.predict_proba(vec.transform(x_test))[:, 1]
    return fit


def source_adapted(c: float) -> Fit:
    """The shipped model (``hub.triage.sentiment``): logistic regression over shared features
    plus a copy of them per review source, the source of a text to classify guessed by a
    second logistic regression."""
    from hub.triage import sentiment
    from hub.triage.model import tfidf

    def fit(x_train: list[list[str]], y: Any, x_test: list[list[str]],
            sources: list[str]) -> Any:
        model = sentiment.fit(x_train, y, sources, c)
        return model.positive(tfidf(model.vectorizer, x_test))
    return fit


def with_neighbours(c: float, k: int, share: float) -> Fit:
    """The shipped model's p(positive) mixed with its ``k`` nearest training texts' labels
    (cosine over its TF-IDF vectors, weighted by similarity): ``share`` of the answer is the
    neighbours'."""
    import numpy as np

    from hub.triage import sentiment
    from hub.triage.model import tfidf

    def fit(x_train: list[list[str]], y: Any, x_test: list[list[str]],
            sources: list[str]) -> Any:
        model = sentiment.fit(x_train, y, sources, c)
        test = tfidf(model.vectorizer, x_test)
        similar = (test @ tfidf(model.vectorizer, x_train).T).toarray()
        nearest = np.argpartition(-similar, k, axis=1)[:, :k]
        weights = np.take_along_axis(similar, nearest, axis=1)
        votes = (weights * np.asarray(y)[nearest]).sum(axis=1) / np.maximum(
            weights.sum(axis=1), 1e-12)
        return (1 - share) * model.positive(test) + share * votes
    return fit


def mean_of(*fits: Fit) -> Fit:
    """The average of several models' probabilities."""
    import numpy as np

    def fit(x_train: list[list[str]], y: Any, x_test: list[list[str]],
            sources: list[str]) -> Any:
        return np.mean([f(x_train, y, x_test, sources) for f in fits], axis=0)
    return fit


def _not_complaints() -> set[str]:
    """Training negatives the category annotators marked as not complaints (``skip``)."""
    ids: set[str] = set()
    for path in data.ZH_TRAIN_FILES:
        with path.open(encoding="utf-8", newline="") as f:
            ids |= {r["id"] for r in csv.DictReader(f) if r["category"] == "skip"}
    return ids


def cross_validated(fit: Fit, rows: Sequence[data.Review], *,
                    always: Sequence[data.Review] = (),
                    leave_out: AbstractSet[str] = frozenset(),
                    features: Callable[[str], list[str]] = analyse) -> float:
    """Pooled out-of-fold accuracy (p >= 0.5) of ``fit`` over ``rows`` seen through
    ``features``; ``always`` is added to every fold's training part, ``leave_out`` (ids) taken
    out of it."""
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    texts = [features(r.text) for r in rows]
    labels = np.array([r.label for r in rows])
    english_features = [features(r.text) for r in always]
    english_labels = np.array([r.label for r in always], dtype=int)
    strata = [f"{r.id[:2]}{r.label}" for r in rows]
    split = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=FOLD_SEED)
    correct = 0
    for train, test in split.split(np.zeros(len(rows)), strata):
        kept = [i for i in train if rows[i].id not in leave_out]
        p = fit([texts[i] for i in kept] + english_features,
                np.concatenate([labels[kept], english_labels]), [texts[i] for i in test],
                [rows[i].id[:2] for i in kept] + [r.id[:2] for r in always])
        correct += int(((p >= 0.5).astype(int) == labels[test]).sum())
    return correct / len(rows)


def learning_curve(rows: Sequence[data.Review], english: Sequence[data.Review],
                   shares: Sequence[float] = (0.5, 0.75), draws: Sequence[int] = (1, 2)
                   ) -> None:
    """Print the shipped model's cross-validated accuracy with each fold's training reviews
    cut to ``shares`` of them (a seeded draw per seed in ``draws``), then with all of them."""
    for share in shares:
        for seed in draws:
            rng = random.Random(seed)
            dropped = {r.id for r in rows if rng.random() >= share}
            accuracy = cross_validated(source_adapted(5.0), rows, always=english,
                                       leave_out=dropped, features=analyse_sentiment)
            print(f"training reviews x{share:<5} (draw {seed})  {accuracy:.4f}", flush=True)
    accuracy = cross_validated(source_adapted(5.0), rows, always=english,
                               features=analyse_sentiment)
    print(f"training reviews x1.0   (all)      {accuracy:.4f}", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hub.triage.compare_sentiment",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--network", action="store_true",
                        help="also the one-hidden-layer network (about 20 minutes more)")
    parser.add_argument("--learning-curve", action="store_true",
                        help="only the shipped model, with less training data (about 3 "
                             "minutes)")
    parser.add_argument("--neighbours", action="store_true",
                        help="only the shipped model, alone and mixed with its nearest "
                             "training texts' labels (about 5 minutes)")
    parser.add_argument("--written", action="store_true",
                        help="only the shipped model, with and without the written training "
                             "messages (about 4 minutes)")
    args = parser.parse_args(argv)
    rows, _ = data.sentiment_split()
    if args.neighbours:
        print(f"{FOLDS}-fold cross-validation over {len(rows)} training reviews", flush=True)
        for name, fit in (("shipped model", source_adapted(5.0)),
                          *((f"+ {k} nearest, share {share}", with_neighbours(5.0, k, share))
                            for k in (10, 20) for share in (0.1, 0.2, 0.3))):
            accuracy = cross_validated(fit, rows, always=sentiment_english(),
                                       features=analyse_sentiment)
            print(f"{name:48s} {accuracy:.4f}", flush=True)
        return
    if args.written:
        english = sentiment_english()
        print(f"{FOLDS}-fold cross-validation over {len(rows)} training reviews", flush=True)
        for name, always in (("without the written English (triage-2.2)", generated_english()),
                             ("shipped model", english),
                             ("+ written Chinese, as their own source",
                              english + written_sentiment("zh", "ms")),
                             ("+ written Chinese, as food delivery",
                              english + written_sentiment("zh", "wm"))):
            accuracy = cross_validated(source_adapted(5.0), rows, always=always,
                                       features=analyse_sentiment)
            print(f"{name:48s} {accuracy:.4f}", flush=True)
        return
    if args.learning_curve:
        print(f"{FOLDS}-fold cross-validation over {len(rows)} training reviews, "
              "each fold trained on a share of the others", flush=True)
        learning_curve(rows, sentiment_english())
        return
    words, written = analyse, analyse_sentiment  # category features; the same + how written
    candidates: list[tuple[str, Fit, AbstractSet[str], Callable[[str], list[str]]]] = [
        ("source-adapted LR C=5 (shipped)", source_adapted(5.0), set(), written),
        ("source-adapted LR C=10", source_adapted(10.0), set(), written),
        ("source-adapted LR C=5, category features", source_adapted(5.0), set(), words),
        ("logistic regression C=5", logistic(5.0), set(), written),
        ("LR C=5, category features (triage-1.6)", logistic(5.0), set(), words),
        ("the same without rows marked not complaints", logistic(5.0), _not_complaints(),
         words),
        ("NB-scaled logistic regression C=1", nb_logistic(1.0), set(), words),
        ("multinomial naive Bayes alpha=0.1", multinomial_nb(0.1), set(), words),
        ("mean of LR and NB-scaled LR", mean_of(logistic(5.0), nb_logistic(1.0)), set(), words),
        ("mean of LR and multinomial NB", mean_of(logistic(5.0), multinomial_nb(0.1)), set(),
         words),
        ("logistic regression C=10", logistic(10.0), set(), words),
    ]
    if args.network:
        candidates += [("network, 64 hidden units", network(64, 8), set(), words),
                       ("mean of LR and the network", mean_of(logistic(5.0), network(64, 8)),
                        set(), words)]
    english = sentiment_english()
    print(f"{FOLDS}-fold cross-validation over {len(rows)} training reviews", flush=True)
    for name, fit, leave_out, features in candidates:
        start = time.perf_counter()
        accuracy = cross_validated(fit, rows, always=english, leave_out=leave_out,
                                   features=features)
        print(f"{name:48s} {accuracy:.4f}  ({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
