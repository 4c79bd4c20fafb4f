"""Compare sentiment models by cross-validation over the training part only.

``python -m hub.triage.compare_sentiment [--network]`` prints the pooled 5-fold accuracy of
each candidate on the sentiment training split (``data.sentiment_split``), stratified by
source and label; the held-out split is never read. Each fold's model is fitted the way
``hub.triage.train`` fits the shipped one: the other folds plus the generated English
messages. The candidates are the shipped model (TF-IDF + logistic regression, C = 5) and the
usual alternatives for short review texts; see "What falls short" in docs/triage.md.
"""

from __future__ import annotations

import argparse
import csv
import time
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

from hub.triage import data, generator
from hub.triage.tokens import analyse, passthrough
from hub.triage.train import GEN_N, GEN_SEED

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


def domain_augmented(c: float) -> Fit:
    """Logistic regression over shared features plus a copy of them per review source
    (food delivery, fruit shop, English), so a word may lean differently in each; a test
    text's source is unknown, and is guessed by a second logistic regression."""
    from sklearn.linear_model import LogisticRegression

    def tagged(features: list[str], source: str) -> list[str]:
        return features + [f"{source}|{f}" for f in features]

    def fit(x_train: list[list[str]], y: Any, x_test: list[list[str]],
            sources: list[str]) -> Any:
        guess_vec = _tfidf()
        guesser = LogisticRegression(C=5.0, max_iter=3000)
        guesser.fit(guess_vec.fit_transform(x_train), sources)
        guessed = guesser.predict(guess_vec.transform(x_test))
        vec = _tfidf()
        model = LogisticRegression(C=c, max_iter=3000).fit(
            vec.fit_transform([tagged(f, s) for f, s in zip(x_train, sources, strict=True)]), y)
        return model.predict_proba(vec.transform(
            [tagged(f, s) for f, s in zip(x_test, guessed, strict=True)]))[:, 1]
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


def generated_english() -> list[data.Review]:
    """The generated English messages the shipped model is trained with (as reviews)."""
    examples = generator.generate(GEN_SEED, GEN_N)
    complaints = [e.text for e in examples if e.language == "en"][:1500]
    thanks = generator.english_positive(GEN_SEED + 1, 1500)
    return ([data.Review(f"en-{i}", 0, t) for i, t in enumerate(complaints)]
            + [data.Review(f"en+{i}", 1, t) for i, t in enumerate(thanks)])


def cross_validated(fit: Fit, rows: Sequence[data.Review], *,
                    always: Sequence[data.Review] = (),
                    leave_out: AbstractSet[str] = frozenset()) -> float:
    """Pooled out-of-fold accuracy (p >= 0.5) of ``fit`` over ``rows``; ``always`` is added to
    every fold's training part, ``leave_out`` (ids) taken out of it."""
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    features = [analyse(r.text) for r in rows]
    labels = np.array([r.label for r in rows])
    english_features = [analyse(r.text) for r in always]
    english_labels = np.array([r.label for r in always], dtype=int)
    strata = [f"{r.id[:2]}{r.label}" for r in rows]
    split = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=FOLD_SEED)
    correct = 0
    for train, test in split.split(np.zeros(len(rows)), strata):
        kept = [i for i in train if rows[i].id not in leave_out]
        p = fit([features[i] for i in kept] + english_features,
                np.concatenate([labels[kept], english_labels]), [features[i] for i in test],
                [rows[i].id[:2] for i in kept] + [r.id[:2] for r in always])
        correct += int(((p >= 0.5).astype(int) == labels[test]).sum())
    return correct / len(rows)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hub.triage.compare_sentiment",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--network", action="store_true",
                        help="also the one-hidden-layer network (about 20 minutes more)")
    args = parser.parse_args(argv)
    rows, _ = data.sentiment_split()
    candidates: list[tuple[str, Fit, AbstractSet[str]]] = [
        ("logistic regression C=5 (shipped)", logistic(5.0), set()),
        ("the same without rows marked not complaints", logistic(5.0), _not_complaints()),
        ("NB-scaled logistic regression C=1", nb_logistic(1.0), set()),
        ("multinomial naive Bayes alpha=0.1", multinomial_nb(0.1), set()),
        ("mean of LR and NB-scaled LR", mean_of(logistic(5.0), nb_logistic(1.0)), set()),
        ("mean of LR and multinomial NB", mean_of(logistic(5.0), multinomial_nb(0.1)), set()),
        ("logistic regression C=10", logistic(10.0), set()),
        ("LR with a feature copy per source, C=5", domain_augmented(5.0), set()),
        ("LR with a feature copy per source, C=10", domain_augmented(10.0), set()),
    ]
    if args.network:
        candidates += [("network, 64 hidden units", network(64, 8), set()),
                       ("mean of LR and the network", mean_of(logistic(5.0), network(64, 8)),
                        set())]
    english = generated_english()
    print(f"{FOLDS}-fold cross-validation over {len(rows)} training reviews", flush=True)
    for name, fit, leave_out in candidates:
        start = time.perf_counter()
        accuracy = cross_validated(fit, rows, always=english, leave_out=leave_out)
        print(f"{name:48s} {accuracy:.4f}  ({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
