"""Metrics of a triage model on the repository's evaluation data, recomputed from scratch.

``python -m hub.triage.evaluate`` prints them for the committed model; the training script
uses the same functions, and a test checks that the model card agrees with a recomputation.

- Sentiment accuracy on the seeded, stratified held-out 20% of the review CSVs
  (``data.sentiment_split``): of the ``sentiment`` label, a "neutral" counted wrong (every
  review is for or against), and of the sentiment model alone (p(positive) >= 0.5). The
  shipped sentiment model is fitted on every review, so what is scored is its twin: the same
  configuration fitted on the 80% training split alone (``sentiment_twin``, refitted here in
  about ten seconds). The opinion model never learns from held-out reviews.
- Sentiment on the written messages: negative (the complaints), neutral and positive, the
  ``sentiment`` label against the writer's.
- Urgency on the written messages, against what the urgency table implies from the writers'
  labels: a goods complaint (spoiled, temperature, damaged, wrong_item, missing) is P3 or
  above; a neutral message P4 (the labels say nothing finer).
- Category macro-F1: mean F1 over the categories present in the gold labels, on a given set
  of hand-labelled texts, for the full pipeline (model + rules) and for the keyword baseline.
- Triage review split (printed by the command, not kept in the card): the test samples parted
  at the hub's review threshold, with how often the triage is right in each part.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from hub.triage import data
from hub.triage.baseline import keyword_category
from hub.triage.model import TriageModel, load
from hub.triage.taxonomy import CATEGORIES, SENTIMENTS


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


def sentiment_accuracy(m: TriageModel) -> dict[str, Any]:
    """On the held-out review split: accuracy of the ``sentiment`` label (a "neutral" counts
    as wrong), of the sentiment model's side alone, and the share labelled neutral."""
    from hub.triage.classifier import classify_with
    from hub.triage.model import tfidf
    from hub.triage.tokens import analyse_sentiment

    _, test = data.sentiment_split()
    texts = [r.text for r in test]
    gold = ["positive" if r.label == 1 else "negative" for r in test]
    labels = [t.sentiment for t in classify_with(m, texts)]
    feats = [analyse_sentiment(t) for t in texts]
    probs = m.sentiment.positive(tfidf(m.sentiment.vectorizer, feats))
    sides = ["positive" if p >= 0.5 else "negative" for p in probs]
    n = len(test)
    return {"n": n,
            "accuracy": round(sum(map(str.__eq__, gold, labels)) / n, 4),
            "polarity_accuracy": round(sum(map(str.__eq__, gold, sides)) / n, 4),
            "neutral_share": round(labels.count("neutral") / n, 4)}


def sentiment_metrics(rows: Sequence[tuple[str, str]], m: TriageModel) -> dict[str, Any]:
    """The ``sentiment`` label against the gold of (text, sentiment) rows: accuracy, macro-F1
    and per-class F1 over the sentiments present, and the confusion (gold -> labelled)."""
    from sklearn.metrics import f1_score

    from hub.triage.classifier import classify_with

    gold = [g for _, g in rows]
    labels = [t.sentiment for t in classify_with(m, [t for t, _ in rows])]
    present = [s for s in SENTIMENTS if s in set(gold)]
    per_class = f1_score(gold, labels, labels=present, average=None, zero_division=0)
    return {"n": len(rows),
            "accuracy": round(sum(map(str.__eq__, gold, labels)) / len(rows), 4),
            "macro_f1": round(float(per_class.mean()), 4),
            "per_class_f1": {s: round(float(f), 4) for s, f in zip(present, per_class,
                                                                     strict=True)},
            "confusion": {f"{g}->{p}": n for (g, p), n in sorted(
                Counter(zip(gold, labels, strict=True)).items())}}


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
    the English messages (generated and written) only: the shipped model has learnt from the
    held-out split too, so its accuracy there would measure nothing."""
    from hub.triage.train import fit_sentiment, sentiment_english

    train, _ = data.sentiment_split()
    return dataclasses.replace(
        m, sentiment=fit_sentiment(train + sentiment_english(), m.sentiment.c))


def pipeline_category(texts: list[str]) -> list[str]:
    """Categories from the committed model through the public API."""
    from hub.triage.classifier import classify

    return [t.category for t in classify(texts)]


def evaluate_committed(include_test: bool = True) -> dict[str, Any]:
    """Every metric, recomputed from the committed model and data files."""
    shipped = load()
    out: dict[str, Any] = {
        "sentiment_heldout": sentiment_accuracy(sentiment_twin(shipped)),
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
    for split in ("dev", "test") if include_test else ("dev",):
        for language in ("zh", "en"):
            out[f"sentiment_messages_{language}_{split}"] = sentiment_metrics(
                data.sentiment_messages(split, language), shipped)
        out[f"urgency_messages_{split}"] = urgency_metrics(split, shipped)
    out["annotator_agreement_zh"] = annotator_agreement()
    out["messages_reader_agreement"] = messages_agreement()
    out["neutral_reader_agreement"] = neutral_agreement()
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


def urgency_metrics(split: str, m: TriageModel) -> dict[str, Any]:
    """Of the written evaluation messages of one split (both languages): the share of goods
    complaints answered P1-P3 by ``m``, and of neutral messages answered P4."""
    from hub.triage.classifier import classify_with
    from hub.triage.rules import GOODS

    goods = [x.text for x in data.messages_eval() if x.split == split and x.category in GOODS]
    neutral = [w.text for w in data.neutral_eval() if w.split == split and w.kind == "neutral"]
    goods_urgency = [t.urgency for t in classify_with(m, goods)]
    neutral_urgency = [t.urgency for t in classify_with(m, neutral)]
    return {"goods_complaints": {"n": len(goods), "p1_to_p3": round(
                sum(u != "P4" for u in goods_urgency) / len(goods), 4)},
            "neutral": {"n": len(neutral), "p4": round(
                neutral_urgency.count("P4") / len(neutral), 4)}}


def neutral_agreement() -> dict[str, Any]:
    """How often the blind reader of the written neutral and thank-you messages gave the
    writer's kind, per language (the reader labelled them mixed with complaints)."""
    out: dict[str, Any] = {}
    for language in ("zh", "en"):
        rows = [w for w in data.neutral_eval() if w.language == language]
        out[language] = {"n": len(rows), "agreement": round(
            sum(w.second == w.kind for w in rows) / len(rows), 4),
            "reader": dict(sorted(Counter(f"{w.kind}->{w.second}" for w in rows).items()))}
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
