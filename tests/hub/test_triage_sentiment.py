"""The source-adapted sentiment model and the features it reads."""

from __future__ import annotations

import numpy as np
import pytest

from hub.triage import sentiment
from hub.triage.model import tfidf
from hub.triage.text import normalise
from hub.triage.tokens import analyse, analyse_both, analyse_sentiment, passthrough


def _rows(n: int) -> tuple[list[list[str]], list[int], list[str]]:
    """"冰" praises fruit and damns a meal; the rest of the words tell the source apart."""
    texts, labels, sources = [], [], []
    for i in range(n):
        for text, label, source in ((f"冰，第{i % 7}次买水果", 1, "os"),
                                    (f"热，第{i % 7}次买水果", 0, "os"),
                                    (f"热，第{i % 7}次点外卖", 1, "wm"),
                                    (f"冰，第{i % 7}次点外卖", 0, "wm"),
                                    (f"great, order {i % 7}", 1, "en"),
                                    (f"awful, order {i % 7}", 0, "en")):
            texts.append(analyse_sentiment(text))
            labels.append(label)
            sources.append(source)
    return texts, labels, sources


def test_a_word_may_lean_one_way_per_source() -> None:
    texts, labels, sources = _rows(30)
    model = sentiment.fit(texts, labels, sources, 5.0)
    assert model.sources == ("en", "os", "wm")
    probe = ["冰，又买水果", "冰，又点外卖", "热，又买水果", "热，又点外卖", "great", "awful"]
    p = model.positive(tfidf(model.vectorizer, [analyse_sentiment(t) for t in probe]))
    assert (p >= 0.5).tolist() == [True, False, False, True, True, False]


@pytest.mark.parametrize("kept", [("os",), ("os", "wm"), ("en", "os", "wm")])
def test_positive_is_the_source_weighted_mean_of_the_augmented_regression(
        kept: tuple[str, ...]) -> None:
    """The stored arrays answer what sklearn's two regressions answer, for one source (nothing
    to guess), two (sklearn's binary form) and three."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    texts, labels, sources = _rows(12)
    keep = [i for i, s in enumerate(sources) if s in kept]
    texts, labels, sources = ([texts[i] for i in keep], [labels[i] for i in keep],
                              [sources[i] for i in keep])
    model = sentiment.fit(texts, labels, sources, 3.0)
    assert model.sources == kept
    vec = TfidfVectorizer(analyzer=passthrough, sublinear_tf=True, min_df=2)
    x = vec.fit_transform(texts)
    n = len(kept)
    index = np.array([kept.index(s) for s in sources])
    reg = LogisticRegression(C=3.0, max_iter=3000).fit(sentiment.augmented(x, index, n), labels)
    probe = x[::5]
    rows = probe.shape[0]
    per_source = np.column_stack([
        reg.predict_proba(sentiment.augmented(probe, np.full(rows, k), n))[:, 1]
        for k in range(n)])
    if n == 1:
        weights = np.ones((rows, 1))
    else:
        guesser = LogisticRegression(C=sentiment.SOURCE_C, max_iter=3000).fit(x, index)
        weights = guesser.predict_proba(probe)
    expected = (weights * per_source).sum(axis=1)
    assert np.allclose(model.positive(probe), expected, atol=1e-9)


def test_every_text_needs_a_source() -> None:
    texts, labels, sources = _rows(3)
    with pytest.raises(ValueError, match="18 texts but 17 sources"):
        sentiment.fit(texts, labels, sources[:-1], 5.0)


def test_how_a_text_is_written() -> None:
    feats = analyse_sentiment("不是很新鲜!!!送得快")
    assert {"n:很", "n:新鲜", "p:!!!", "q:!", "len:1", "d:是很新鲜"} <= set(feats)
    assert "n:快" not in feats  # a negation ends with its clause
    assert not any(f.startswith("n:") for f in analyse_sentiment("不，新鲜"))


@pytest.mark.parametrize("text", ["草莓发霉了，不新鲜", "没有发霉，就是不甜", "late again!!",
                                  "等了2个小时"])
def test_the_category_model_sees_what_it_saw_before(text: str) -> None:
    category, sent = analyse_both(normalise(text))
    assert category == analyse(text)
    assert sent[:len(category)] == category


def test_the_shipped_model_learnt_from_every_review_and_the_measured_twin_did_not() -> None:
    """The shipped sentiment model is fitted on both review splits; the model whose held-out
    accuracy the card records is the same configuration fitted without the held-out split.
    With min_df 2, a feature seen twice only when the held-out reviews are added is in the
    shipped vocabulary and not in the twin's."""
    from hub.triage import data, evaluate
    from hub.triage.model import load
    from hub.triage.train import sentiment_english

    shipped = load()
    twin = evaluate.sentiment_twin(shipped).sentiment
    assert twin.c == shipped.sentiment.c
    assert set(twin.vectorizer.vocabulary_) < set(shipped.sentiment.vectorizer.vocabulary_)
    train, heldout = data.sentiment_split()
    seen_in_training = {f for r in train + sentiment_english() for f in analyse_sentiment(r.text)}
    assert set(twin.vectorizer.vocabulary_) <= seen_in_training
    only_heldout = {f for r in heldout for f in analyse_sentiment(r.text)} - seen_in_training
    assert only_heldout & set(shipped.sentiment.vectorizer.vocabulary_)


def test_the_sentiment_model_learns_the_written_english_not_the_written_chinese() -> None:
    """From triage-2.3 the English complaints (negative) and thanks (positive) written for
    training are sentiment rows of source "en"; the Chinese ones lowered the cross-validated
    accuracy on the reviews and are not."""
    from hub.triage import data
    from hub.triage.text import language
    from hub.triage.train import sentiment_english, written_english

    written = written_english()
    assert {r.id[:3] for r in written} == {"en~"}
    assert {language(r.text) for r in written} == {"en"}
    complaints = {r.text for r in data.messages_train("en")}
    thanks = {w.text for w in data.neutral_train() if w.kind == "positive" and w.language == "en"}
    assert {r.text for r in written if r.label == 0} == complaints
    assert {r.text for r in written if r.label == 1} == thanks
    assert set(written) <= set(sentiment_english())
