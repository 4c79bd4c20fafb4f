"""Metrics of a triage model on the repository's evaluation data, recomputed from scratch.

``python -m hub.triage.evaluate`` prints them for the committed model; the training script
uses the same functions, and a test checks that the model card agrees with a recomputation.

- Sentiment accuracy: binary (p(positive) >= 0.5) on the seeded, stratified held-out 20% of
  the review CSVs (``data.sentiment_split``). The shipped sentiment model is fitted on every
  review, so what is scored is its twin: the same configuration fitted on the 80% training
  split alone (``sentiment_twin``, refitted here in about ten seconds).
- Category macro-F1: mean F1 over the categories present in the gold labels, on a given set
  of hand-labelled texts, for the full pipeline (model + rules) and for the keyword baseline.
- Triage review split (printed by the command, not kept in the card): the test samples parted
  at the hub's review threshold, with how often the triage is right in each part.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import Any

from hub.triage import data
from hub.triage.baseline import keyword_category
from hub.triage.model import TriageModel, load
from hub.triage.taxonomy import CATEGORIES


def f1_report(gold: Sequence[str], predicted: Sequence[str]) -> dict[str, Any]:
    """Macro-F1 (over gold classes), accuracy, and per-class F1 with support."""
    from sklearn.metrics import f1_score

    labels = [c for c in CATEGORIES if c in set(gold)]
    per_class = f1_score(gold, predicted, labels=labels, average=None, zero_division=0)
    return {
        "n": len(gold),
        "macro_f1": round(float(per_class.mean()), 4),
        "accuracy": round(sum(g == p for g, p in zip(gold, predicted, strict=True))
                          / len(gold), 4),
        "per_class_f1": {c: round(float(f), 4) for c, f in zip(labels, per_class, strict=True)},
        "support": {c: sum(1 for g in gold if g == c) for c in labels},
    }


def category_metrics(rows: Sequence[data.Labelled],
                     predict: Callable[[list[str]], list[str]]) -> dict[str, Any]:
    """The pipeline's and the keyword baseline's F1 report on ``rows``."""
    texts = [r.text for r in rows]
    gold = [r.category for r in rows]
    return {"model": f1_report(gold, predict(texts)),
            "keyword_baseline": f1_report(gold, [keyword_category(t) for t in texts])}


def sentiment_accuracy(predict_positive: Callable[[list[str]], Sequence[float]]
                       ) -> dict[str, Any]:
    """Accuracy on the held-out review split, and how many fall in the neutral band."""
    from hub.triage.classifier import NEUTRAL_BAND

    _, test = data.sentiment_split()
    probs = predict_positive([r.text for r in test])
    right = sum((p >= 0.5) == (r.label == 1) for p, r in zip(probs, test, strict=True))
    neutral = sum(abs(2 * p - 1) < NEUTRAL_BAND for p in probs)
    return {"n": len(test), "accuracy": round(right / len(test), 4),
            "neutral_share": round(neutral / len(test), 4)}


def review_split(rows: Sequence[data.Labelled], below: float | None = None) -> dict[str, Any]:
    """How often the triage is right when confident and when it sends a ticket to review.

    ``below`` is the confidence under which a ticket goes to people for a check (default: the
    hub's default ``TicketConfig.triage_review_below``).
    """
    from hub.tickets.policy import TRIAGE_REVIEW_BELOW
    from hub.triage.classifier import classify

    threshold = TRIAGE_REVIEW_BELOW if below is None else below
    triaged = classify([r.text for r in rows])
    parts: dict[str, list[bool]] = {"confident": [], "to_review": []}
    for row, triage in zip(rows, triaged, strict=True):
        part = "to_review" if triage.confidence < threshold else "confident"
        parts[part].append(triage.category == row.category)
    return {"below": threshold, "n": len(rows),
            **{name: {"n": len(right), "share": round(len(right) / len(rows), 4),
                      "accuracy": round(sum(right) / len(right), 4) if right else None}
               for name, right in parts.items()}}


def sentiment_twin(m: TriageModel) -> TriageModel:
    """``m`` with its sentiment model refitted, same configuration, on the training split and
    the generated English messages only: the shipped model has learnt from the held-out split
    too, so its accuracy there would measure nothing."""
    from hub.triage.train import fit_sentiment, generated_english

    train, _ = data.sentiment_split()
    return dataclasses.replace(
        m, sentiment=fit_sentiment(train + generated_english(), m.sentiment.c))


def pipeline_category(texts: list[str]) -> list[str]:
    """Categories from the committed model through the public API."""
    from hub.triage.classifier import classify

    return [t.category for t in classify(texts)]


def evaluate_committed(include_test: bool = True) -> dict[str, Any]:
    """Every metric, recomputed from the committed model and data files."""
    from hub.triage.classifier import classify_with

    twin = sentiment_twin(load())
    out: dict[str, Any] = {
        "sentiment_heldout": sentiment_accuracy(
            lambda texts: [(t.sentiment_score + 1) / 2 for t in classify_with(twin, texts)]),
        "category_zh_dev": category_metrics(data.zh_eval("dev"), pipeline_category),
        "category_en_heldout": category_metrics(data.en_eval(), pipeline_category),
        "category_messages_zh_dev": category_metrics(data.messages("dev", "zh"),
                                                     pipeline_category),
        "category_messages_en_dev": category_metrics(data.messages("dev", "en"),
                                                     pipeline_category),
    }
    if include_test:
        test, test2 = data.zh_eval("test"), data.zh_test2()
        out["category_zh_test"] = category_metrics(test, pipeline_category)
        out["category_zh_test2"] = category_metrics(test2, pipeline_category)
        out["category_zh_test_all"] = category_metrics(test + test2, pipeline_category)
        for language in ("zh", "en"):
            out[f"category_messages_{language}_test"] = category_metrics(
                data.messages("test", language), pipeline_category)
    out["annotator_agreement_zh"] = annotator_agreement()
    out["messages_reader_agreement"] = messages_agreement()
    return out


def messages_agreement() -> dict[str, Any]:
    """How far the blind reader of the written messages agrees with their writers, per
    language (the writer's label is the gold): what a model can be expected to reach."""
    from sklearn.metrics import cohen_kappa_score

    out: dict[str, Any] = {}
    for language in ("zh", "en"):
        rows = [m for m in data.messages_eval() if m.language == language]
        placed = [m for m in rows if m.second != "skip"]
        report = f1_report([m.category for m in placed], [m.second for m in placed])
        report["cohen_kappa"] = round(float(cohen_kappa_score(
            [m.category for m in placed], [m.second for m in placed])), 4)
        report["skipped_by_reader"] = len(rows) - len(placed)
        out[language] = report
    return out


def annotator_agreement() -> dict[str, Any]:
    """How far a second annotator, labelling the dev+test sample without seeing the first's
    labels, agrees with the first: a ceiling for any model scored against one person's labels.
    Rows either annotator skipped are left out; the first annotator's labels are the gold."""
    from sklearn.metrics import cohen_kappa_score

    second = data.zh_second_labels()
    rows = [r for r in data.zh_eval() if second[r.id] != "skip"]
    gold = [r.category for r in rows]
    other = [second[r.id] for r in rows]
    report = f1_report(gold, other)
    report["cohen_kappa"] = round(float(cohen_kappa_score(gold, other)), 4)
    report["skip_disagreements"] = sum(
        (second[i] == "skip") != (first == "skip") for i, first in _first_labels().items())
    return report


def _first_labels() -> dict[str, str]:
    import csv

    with data.ZH_EVAL.open(encoding="utf-8", newline="") as f:
        return {r["id"]: r["category"] for r in csv.DictReader(f)}


def review_splits() -> dict[str, Any]:
    """:func:`review_split` of the Chinese test samples, the English held-out texts and the
    written messages' test half."""
    return {"zh_test_all": review_split(data.zh_eval("test") + data.zh_test2()),
            "en_heldout": review_split(data.en_eval()),
            "messages_test": review_split(data.messages("test", "zh")
                                          + data.messages("test", "en"))}


if __name__ == "__main__":
    print(json.dumps(evaluate_committed() | {"triage_review": review_splits()},
                     ensure_ascii=False, indent=1))
