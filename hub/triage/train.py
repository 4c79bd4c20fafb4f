"""Train the triage models and write ``hub/triage/models/`` (artifact + model card).

``python -m hub.triage.train [--final]``. Deterministic (seeded data, deterministic solvers).

- Sentiment: ``hub.triage.sentiment`` (TF-IDF over ``tokens.analyse_sentiment`` features,
  logistic regression with a feature copy per review source) plus generated and written
  English messages (complaints as negative, thanks as positive) so English gets a sentiment. C is
  chosen on a validation split carved from the 80% training split of the review CSVs. The
  shipped model is fitted on every review (training and held-out split: more data, better
  answers); its accuracy is measured by the same configuration fitted on the training split
  alone and scored on the 20% held-out split (``evaluate.sentiment_twin``).
- Opinion: ``hub.triage.opinion`` (is there an opinion at all?), over the same features: the
  written neutral messages against the training split's reviews, written complaints and
  thanks, and generated complaints and thanks; C chosen by cross-validation over those rows.
- Category: TF-IDF + multinomial logistic regression trained on generated complaints
  (``generator.generate``) plus the hand-labelled real reviews of
  ``data/train/zh_labelled_train*.csv`` and the complaint messages written for training
  (``data/train/messages_written.jsonl``), both weighted. C, class weights, the generated/real
  mix, the "other" threshold and which rule categories may override are chosen by 5-fold
  cross-validation over the people-labelled rows (the mean of the out-of-fold macro-F1 of
  the Chinese reviews, the Chinese messages and the English messages); the
  Chinese dev half is only reported (it was used for tuning up to triage-1.3), the test
  samples are scored only with ``--final`` and recorded in the model card.
- Category network: ``hub.triage.network`` (a character CNN, TensorFlow) on the chosen
  configuration's rows; its share of p(category) is chosen by the same cross-validation.
  Training needs ``pip install 'coldloop[train]'``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import time
from collections.abc import Callable
from typing import Any

from hub.triage import data, evaluate, generator, network, opinion, rules, sentiment
from hub.triage.model import CARD_FILE, MODEL_FILE, TriageModel, tfidf
from hub.triage.text import normalise
from hub.triage.tokens import analyse, analyse_sentiment, passthrough

VERSION = "triage-2.7"  # 1.7 and 2.6 were trained and not adopted (docs/triage.md)
GEN_SEED = 11
GEN_N = 24_000
SENT_CS = (5.0, 10.0, 20.0)  # chosen on a validation split carved from the training part
SENT_VALIDATION_SEED = 99
SENT_VALIDATION_SHARE = 1 / 6
OPINION_CS = (4.0, 16.0, 64.0, 256.0)  # chosen by cross-validation over the opinion model's rows
OPINION_GENERATED_ZH = 3_000
CATEGORY_CS = (2.0, 8.0)
GEN_USED = (8_000, 24_000)  # how many generated texts go into the category training set
REAL_WEIGHTS = (1.0, 3.0, 10.0)  # sample weight of one people-labelled row
OTHER_BELOW = (0.0, 0.4, 0.5, 0.6)
CLASS_WEIGHTS = (None, "balanced")  # "balanced": rare categories weigh more in the loss
# the regression's share of p(category), the rest the network's (1.0: no network)
NETWORK_SHARES = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)
NETWORK = {"seed": 1, "epochs": 5, "dim": 64, "filters": 64}  # hub.triage.network.fit
CV_FOLDS = 5  # the category parameters are chosen by cross-validation over the labelled rows
CV_SEED = 5


def _vectorizer() -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(analyzer=passthrough, sublinear_tf=True, min_df=2)


def _logreg(c: float, class_weight: str | None = None) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, class_weight=class_weight, max_iter=3000)


def _predictor(m: TriageModel) -> Callable[[list[str]], list[str]]:
    from hub.triage.classifier import classify_with

    return lambda texts: [t.category for t in classify_with(m, texts)]


def _tensorflow_version() -> str:
    import tensorflow as tf

    return str(tf.__version__)


def _say(text: str) -> None:
    print(text, flush=True)


def generated_english(examples: list[generator.Example] | None = None) -> list[data.Review]:
    """The generated English messages the sentiment model learns from, as reviews of source
    ``en``: 1,500 complaints of ``examples`` (default: the training generator's) as negative,
    1,500 short thanks as positive."""
    if examples is None:
        examples = generator.generate(GEN_SEED, GEN_N)
    complaints = [e.text for e in examples if e.language == "en"][:1500]
    thanks = generator.english_positive(GEN_SEED + 1, 1500)
    return ([data.Review(f"en-{i}", 0, t) for i, t in enumerate(complaints)]
            + [data.Review(f"en+{i}", 1, t) for i, t in enumerate(thanks)])


def written_sentiment(language: str, source: str) -> list[data.Review]:
    """The messages written for training in ``language`` as sentiment rows of ``source``: the
    complaints negative, the thanks positive."""
    complaints = [data.Review(f"{source}~{r.id}", 0, r.text) for r in data.messages_train(language)]
    thanks = [data.Review(f"{source}~{w.id}", 1, w.text) for w in data.neutral_train()
              if w.kind == "positive" and w.language == language]
    return complaints + thanks


def written_english() -> list[data.Review]:
    """The English messages written for training, of source ``en`` (from triage-2.3; the
    Chinese ones are left out, see "What falls short" in docs/triage.md)."""
    return written_sentiment("en", "en")


def sentiment_english(examples: list[generator.Example] | None = None) -> list[data.Review]:
    """Every English row the sentiment model learns from: ``generated_english(examples)`` and
    ``written_english()``."""
    return generated_english(examples) + written_english()


def _source(review_id: str) -> str:
    """The review source of a training row: its id's prefix (``wm``, ``os``, ``en``)."""
    return review_id[:2]


def fit_sentiment(rows: list[data.Review], c: float) -> sentiment.SentimentModel:
    """The sentiment model of ``rows`` (reviews and English messages, each row's source its
    id's prefix)."""
    return sentiment.fit([analyse_sentiment(r.text) for r in rows], [r.label for r in rows],
                         [_source(r.id) for r in rows], c)


def _sentiment_c(train_rows: list[data.Review], english: list[data.Review]
                 ) -> tuple[float, dict[str, float]]:
    """C for the sentiment model, chosen by accuracy on a seeded validation split carved from
    the training reviews (the held-out split is not touched); the generated English messages
    join the fitting part."""
    rows = sorted(train_rows, key=lambda r: r.id)
    random.Random(SENT_VALIDATION_SEED).shuffle(rows)
    cut = round(len(rows) * SENT_VALIDATION_SHARE)
    val, fit = rows[:cut], rows[cut:] + english
    fit_feats = [analyse_sentiment(r.text) for r in fit]
    val_feats = [analyse_sentiment(r.text) for r in val]
    scores: dict[str, float] = {}
    for c in SENT_CS:
        m = sentiment.fit(fit_feats, [r.label for r in fit], [_source(r.id) for r in fit], c)
        p = m.positive(tfidf(m.vectorizer, val_feats))
        right = sum((q >= 0.5) == (r.label == 1) for q, r in zip(p, val, strict=True))
        scores[str(c)] = round(right / len(val), 4)
        _say(f"  sentiment C={c}: validation accuracy {scores[str(c)]} (n={len(val)})")
    best = max(SENT_CS, key=lambda c: (scores[str(c)], -c))
    return best, scores


def opinion_rows(train_rows: list[data.Review], examples: list[generator.Example]
                 ) -> tuple[list[str], list[bool], list[str]]:
    """(texts, neutral?, group) the opinion model learns from: the written neutral messages
    against the training split's reviews (never a held-out one), the complaint messages and
    thank-you messages written for training, the sentiment model's generated English and
    ``OPINION_GENERATED_ZH`` generated Chinese complaints of ``examples`` (short ones too:
    "慢死了" is an opinion)."""
    written = data.neutral_train()
    english = generated_english(examples)
    chinese = [e.text for e in examples if e.language == "zh"][:OPINION_GENERATED_ZH]
    complaints = data.messages_train("zh") + data.messages_train("en")
    parts = [("neutral", True, [w.text for w in written if w.kind == "neutral"]),
             ("thanks", False, [w.text for w in written if w.kind == "positive"]),
             ("complaints", False, [r.text for r in complaints]),
             ("reviews", False, [r.text for r in train_rows]),
             ("generated", False, [r.text for r in english] + chinese)]
    texts = [t for _, _, part in parts for t in part]
    neutral = [flag for _, flag, part in parts for _ in part]
    groups = [group for group, _, part in parts for _ in part]
    return texts, neutral, groups


def _opinion_c(feats: list[list[str]], neutral: list[bool], groups: list[str]
               ) -> tuple[float, dict[str, float]]:
    """C for the opinion model: the best out-of-fold macro-F1 (neutral vs opinion) of a
    5-fold cross-validation stratified by group."""
    import numpy as np
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold

    folds = list(StratifiedKFold(CV_FOLDS, shuffle=True, random_state=CV_SEED).split(
        np.zeros(len(groups)), groups))
    y = np.array(neutral)
    scores: dict[str, float] = {}
    for c in OPINION_CS:
        predicted = np.zeros(len(y), dtype=bool)
        for fit_idx, held in folds:
            m = opinion.fit([feats[i] for i in fit_idx], y[fit_idx].tolist(), c)
            predicted[held] = m.neutral(tfidf(m.vectorizer, [feats[i] for i in held])) \
                >= opinion.NEUTRAL_AT
        scores[str(c)] = round(float(f1_score(y, predicted, average="macro")), 4)
        _say(f"  opinion C={c}: cross-validated macro-F1 {scores[str(c)]}")
    best = max(OPINION_CS, key=lambda c: (scores[str(c)], -c))
    return best, scores


def _fit_network(rows: tuple[list[list[str]], list[str], list[list[str]]], gold: list[str],
                 kept: Any, real_weight: float) -> network.CharCnn:
    """The character network of the generated texts (``rows``: their symbols, their
    categories, then the labelled rows' symbols) and the labelled rows ``kept``, weighted as
    the regression weighs them."""
    gen_symbols, gen_labels, real_symbols = rows
    return network.fit(gen_symbols + [real_symbols[i] for i in kept],
                       gen_labels + [gold[i] for i in kept],
                       [1.0] * len(gen_symbols) + [real_weight] * len(kept), **NETWORK)


def _labelled_rows() -> tuple[list[data.Labelled], list[str]]:
    """The people-labelled category training rows and each one's group: the Chinese reviews
    (``reviews_zh``, corrections included) and the written messages (``messages_zh``,
    ``messages_en``)."""
    reviews = data.zh_train()
    written = {language: data.messages_train(language) for language in ("zh", "en")}
    rows = reviews + written["zh"] + written["en"]
    groups = (["reviews_zh"] * len(reviews) + ["messages_zh"] * len(written["zh"])
              + ["messages_en"] * len(written["en"]))
    return rows, groups


def _folds(rows: list[data.Labelled], groups: list[str]) -> list[Any]:
    """Row indices of each cross-validation fold, stratified by group and category, seeded."""
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    split = StratifiedKFold(n_splits=CV_FOLDS, shuffle=True, random_state=CV_SEED)
    strata = [f"{g}:{r.category}" for g, r in zip(groups, rows, strict=True)]
    return [np.asarray(held) for _, held in split.split(np.zeros(len(rows)), strata)]


def _cv_f1(fold_models: list[TriageModel], rows: list[data.Labelled], folds: list[Any],
           groups: list[str]) -> tuple[float, dict[str, float]]:
    """Macro-F1 of the pooled out-of-fold predictions (each fold's rows classified, model and
    rules, by the model trained without them), per group of rows, and the mean over the
    groups: Chinese reviews and the written Chinese and English messages count alike."""
    predicted = [""] * len(rows)
    for fold_model, held in zip(fold_models, folds, strict=True):
        for i, category in zip(held, _predictor(fold_model)([rows[i].text for i in held]),
                               strict=True):
            predicted[i] = category
    per_group: dict[str, float] = {}
    for group in dict.fromkeys(groups):
        part = [i for i, g in enumerate(groups) if g == group]
        per_group[group] = evaluate.f1_report([rows[i].category for i in part],
                                              [predicted[i] for i in part])["macro_f1"]
    return round(sum(per_group.values()) / len(per_group), 4), per_group


def train(final: bool) -> dict[str, Any]:
    """Fit both models, pick parameters on dev / validation, write the artifact and card."""
    import numpy as np

    start = time.perf_counter()
    train_rows, heldout_rows = data.sentiment_split()
    examples = generator.generate(GEN_SEED, GEN_N)
    english = sentiment_english(examples)
    sent_c, sent_val = _sentiment_c(train_rows, english)
    sent_rows = train_rows + heldout_rows + english
    _say(f"sentiment: C={sent_c}, {len(train_rows) + len(heldout_rows)} reviews "
         f"+ {len(english)} English messages (generated and written)")
    sent_model = fit_sentiment(sent_rows, sent_c)
    op_texts, op_neutral, op_groups = opinion_rows(train_rows, examples)
    op_feats = [analyse_sentiment(t) for t in op_texts]
    _say(f"opinion: {sum(op_neutral)} neutral messages against {len(op_texts) - sum(op_neutral)}"
         " reviews, complaints and thanks")
    op_c, op_cv = _opinion_c(op_feats, op_neutral, op_groups)
    op_model = opinion.fit(op_feats, op_neutral, op_c)

    real, groups = _labelled_rows()
    _say(f"category: generated complaints (seed {GEN_SEED}) + {len(real)} labelled rows "
         f"({', '.join(f'{groups.count(g)} {g}' for g in dict.fromkeys(groups))}"
         f"); choosing by {CV_FOLDS}-fold cross-validation over the labelled rows")
    gen_feats = [analyse(e.text) for e in examples]
    real_feats = [analyse(r.text) for r in real]
    gold = [r.category for r in real]
    folds = _folds(real, groups)
    best: tuple[float, dict[str, Any], list[TriageModel], dict[str, float]] | None = None
    for n_gen in GEN_USED:
        # TF-IDF is fitted once on every text (no labels involved), the classifier per fold.
        cat_vec = _vectorizer()
        x_all = cat_vec.fit_transform(gen_feats[:n_gen] + real_feats)
        y_all = np.array([e.category for e in examples[:n_gen]] + gold)
        for weight in REAL_WEIGHTS:
            w_all = np.array([1.0] * n_gen + [weight] * len(real))
            for c in CATEGORY_CS:
                for balance in CLASS_WEIGHTS:
                    fold_models = []
                    for held in folds:
                        keep = np.ones(n_gen + len(real), dtype=bool)
                        keep[n_gen + held] = False
                        clf = _logreg(c, balance).fit(x_all[keep], y_all[keep],
                                                      sample_weight=w_all[keep])
                        fold_models.append(
                            TriageModel(VERSION, sent_model, op_model, cat_vec, clf, 0.0))
                    for below in OTHER_BELOW:
                        trial = [dataclasses.replace(m, other_below=below) for m in fold_models]
                        f1, per_group = _cv_f1(trial, real, folds, groups)
                        _say(f"  generated={n_gen} real weight={weight} C={c} "
                             f"class_weight={balance} other_below={below}: "
                             f"cross-validated macro-F1 {f1} {per_group}")
                        if best is None or f1 > best[0]:
                            params = {"generated_used": n_gen, "real_weight": weight,
                                      "category_C": c, "category_class_weight": balance,
                                      "other_below": below}
                            best = (f1, params, trial, per_group)
    assert best is not None
    best_f1, chosen, fold_models, best_groups = best
    # The character network, fitted per fold on the chosen configuration's rows; its share of
    # p(category) is chosen by the same cross-validation (a share of 1.0: not used).
    n_gen = chosen["generated_used"]
    net_rows = ([network.symbols(normalise(e.text)) for e in examples[:n_gen]],
                [e.category for e in examples[:n_gen]],
                [network.symbols(normalise(r.text)) for r in real])
    nets = []
    for k, held in enumerate(folds):
        kept = np.setdiff1d(np.arange(len(real)), held)
        nets.append(_fit_network(net_rows, gold, kept, chosen["real_weight"]))
        _say(f"  network fold {k + 1}/{len(folds)} fitted")
    share_f1: dict[str, float] = {}
    best_share, share_models = 1.0, fold_models
    for share in NETWORK_SHARES:
        trial = [dataclasses.replace(m, category_network=net, regression_share=share)
                 for m, net in zip(fold_models, nets, strict=True)]
        f1, per_group = _cv_f1(trial, real, folds, groups)
        share_f1[str(share)] = f1
        _say(f"  regression share {share}: cross-validated macro-F1 {f1} {per_group}")
        if f1 > best_f1:
            best_f1, best_groups, best_share, share_models = f1, per_group, share, trial
    fold_models = share_models
    # Rule overrides: keep a category's phrases only if dropping them does not help.
    enabled = list(rules.STRONG)
    for category in rules.STRONG:
        trial_rules = tuple(c for c in enabled if c != category)
        f1, per_group = _cv_f1(
            [dataclasses.replace(m, rule_categories=trial_rules) for m in fold_models],
            real, folds, groups)
        _say(f"  without the {category} rule: cross-validated macro-F1 {f1} {per_group} "
             f"(with: {best_f1})")
        if f1 > best_f1:
            enabled, best_f1, best_groups = list(trial_rules), f1, per_group
    # The chosen configuration, fitted on every hand-labelled row.
    cat_vec = _vectorizer()
    x_cat = cat_vec.fit_transform(gen_feats[:n_gen] + real_feats)
    y_cat = [e.category for e in examples[:n_gen]] + gold
    weights = np.array([1.0] * n_gen + [chosen["real_weight"]] * len(real))
    clf = _logreg(chosen["category_C"], chosen["category_class_weight"]).fit(
        x_cat, y_cat, sample_weight=weights)
    net = None
    if best_share < 1.0:
        net = _fit_network(net_rows, gold, np.arange(len(real)), chosen["real_weight"])
        if tuple(net.classes) != tuple(clf.classes_):
            raise RuntimeError(f"network classes {net.classes} differ from {clf.classes_}")
    model = TriageModel(VERSION, sent_model, op_model, cat_vec, clf,
                        chosen["other_below"], rule_categories=tuple(enabled),
                        category_network=net, regression_share=best_share)
    model.save(MODEL_FILE)
    from hub.triage import model as model_store

    model_store.load.cache_clear()
    metrics = evaluate.evaluate_committed(include_test=final)
    card = {
        "version": VERSION,
        "created_by": "python -m hub.triage.train" + (" --final" if final else ""),
        "artifact": MODEL_FILE.name,
        "data_sha256": data.file_hashes(),
        "params": {"generator_seed": GEN_SEED, "generator_n": GEN_N,
                   "sentiment_C": sent_c, "sentiment_C_grid": list(SENT_CS),
                   "sentiment_validation_accuracy": sent_val,
                   "sentiment_validation_seed": SENT_VALIDATION_SEED,
                   "opinion_C": op_c, "opinion_C_grid": list(OPINION_CS),
                   "opinion_cv_macro_f1": op_cv,
                   "opinion_training_rows": {g: op_groups.count(g)
                                             for g in dict.fromkeys(op_groups)},
                   **chosen, "cv_folds": CV_FOLDS, "cv_seed": CV_SEED,
                   "cv_macro_f1": best_f1, "cv_macro_f1_per_group": best_groups,
                   "rule_categories": list(enabled),
                   "regression_share": best_share, "regression_share_grid": list(NETWORK_SHARES),
                   "regression_share_cv_macro_f1": share_f1,
                   # another TensorFlow build trains a slightly different network
                   "network": {**NETWORK, "tensorflow": _tensorflow_version()},
                   "category_C_grid": list(CATEGORY_CS), "generated_used_grid": list(GEN_USED),
                   "real_weight_grid": list(REAL_WEIGHTS), "other_below_grid": list(OTHER_BELOW),
                   "class_weight_grid": list(CLASS_WEIGHTS),
                   "real_training_rows": groups.count("reviews_zh"),
                   "written_training_rows": {g: groups.count(g)
                                             for g in ("messages_zh", "messages_en")},
                   "sentiment_training_rows": len(sent_rows),
                   "sentiment_split_seed": data.SENTIMENT_SEED,
                   "sentiment_test_share": data.SENTIMENT_TEST_SHARE},
        "metrics": metrics,
        "how_measured": {
            "sentiment_heldout": "on the seeded stratified 20% held-out split of "
                                 "hub/triage/data/reviews (eval-sample rows excluded from "
                                 "both splits): accuracy of the sentiment label (a neutral "
                                 "counts as wrong) and polarity_accuracy of the sentiment "
                                 "model alone (p>=0.5), with the shipped sentiment "
                                 "configuration fitted on the 80% training split only (the "
                                 "shipped model is fitted on both splits; the opinion model "
                                 "on the training split only); not used to choose C (a "
                                 "validation split of the training part was)",
            "sentiment_messages_zh_dev": "the sentiment label against the writer's on the "
                                         "written evaluation messages, dev half: complaints "
                                         "(negative), neutral messages and thanks",
            "sentiment_messages_en_dev": "as sentiment_messages_zh_dev, English",
            "sentiment_messages_zh_test": "the same messages' test half: scored only with "
                                          "--final, not used for any choice",
            "sentiment_messages_en_test": "as sentiment_messages_zh_test, English",
            "urgency_messages_dev": "the written evaluation messages' dev half, both "
                                    "languages: the share of goods complaints (by the "
                                    "writer's category) answered P1-P3, and of neutral "
                                    "messages answered P4",
            "urgency_messages_test": "as urgency_messages_dev, the test half (--final only)",
            "neutral_reader_agreement": "a reader's labels (negative / neutral / positive) "
                                        "of the written neutral and thank-you evaluation "
                                        "messages, read mixed with complaints, against the "
                                        "writer's",
            "category_zh_dev": "hand-labelled real reviews, dev half: used for tuning up to "
                               "triage-1.3 (and read while writing rule phrases), so "
                               "optimistic; parameters are now chosen by cross-validation "
                               "over the training rows",
            "category_zh_test": "hand-labelled real reviews, test half: scored once "
                                "(--final), not used for any choice",
            "category_zh_test2": "a second hand-labelled sample drawn from the sentiment "
                                 "held-out split (never trained on), not used for any choice",
            "category_zh_test_all": "test and test2 together",
            "annotator_agreement_zh": "a second annotator's labels of the dev+test sample, "
                                      "made without seeing the first's, scored against them",
            "category_en_heldout": "hand-written English complaints, never used for training "
                                   "or tuning",
            "category_messages_zh_dev": "complaint messages written in the style of the hub's "
                                        "channels (app, hotline, social, chat) by writers who "
                                        "saw no training data, dev half: read for error "
                                        "analysis, never trained on",
            "category_messages_en_dev": "as category_messages_zh_dev, English",
            "category_messages_zh_test": "the same messages' test half: scored only with "
                                         "--final, not used for any choice",
            "category_messages_en_test": "as category_messages_zh_test, English",
            "messages_reader_agreement": "a reader's labels of every written evaluation "
                                         "message, made without seeing the writer's, scored "
                                         "against the writer's",
            "macro_f1": "mean per-class F1 over the categories present in the gold labels; "
                        "full pipeline (model + rules)",
        },
        "train_seconds": round(time.perf_counter() - start, 1),
    }
    CARD_FILE.write_text(json.dumps(card, ensure_ascii=False, indent=1) + "\n",
                         encoding="utf-8")
    return card


def main() -> None:
    """Train, write, print the measured metrics."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--final", action="store_true",
                        help="also score the untouched Chinese test half (do this once)")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import tensorflow  # noqa: F401  (the category network's training)
    except ImportError:
        parser.exit(2, "training needs TensorFlow: pip install 'coldloop[train]'\n")
    card = train(args.final)
    m = card["metrics"]
    _say(f"sentiment held-out accuracy: {m['sentiment_heldout']['accuracy']}")
    for key in ("category_zh_dev", "category_zh_test", "category_zh_test2",
                "category_zh_test_all", "category_en_heldout"):
        if key in m:
            _say(f"{key}: macro-F1 {m[key]['model']['macro_f1']} "
                 f"(keyword baseline {m[key]['keyword_baseline']['macro_f1']})")
    _say(f"wrote {MODEL_FILE} ({MODEL_FILE.stat().st_size // 1024} KiB) and {CARD_FILE.name}")


if __name__ == "__main__":
    main()
