"""The sentiment comparison scores each candidate by cross-validation, as it says."""

from __future__ import annotations

import random

import pytest

from hub.triage import data
from hub.triage.compare_sentiment import (
    cross_validated,
    logistic,
    mean_of,
    multinomial_nb,
    nb_logistic,
    source_adapted,
)

GOOD = ["新鲜好吃", "很快送到了很满意", "味道不错下次还买", "包装完好非常新鲜", "送得快很好"]
BAD = ["烂了一半", "送得太慢了", "发霉了不能吃", "少送了一份", "态度很差"]


def reviews(n: int, noise: float = 0.0, seed: int = 1) -> list[data.Review]:
    """``n`` short reviews per label; a share ``noise`` of them carry the wrong label."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        for label, texts in ((1, GOOD), (0, BAD)):
            wrong = rng.random() < noise
            rows.append(data.Review(f"ts{label}{i:04d}", 1 - label if wrong else label,
                                    f"{rng.choice(texts)}，{rng.choice(texts)}"))
    return rows


@pytest.mark.parametrize("fit", [logistic(5.0), nb_logistic(1.0), multinomial_nb(0.1),
                                 mean_of(logistic(5.0), multinomial_nb(0.1))])
def test_a_separable_set_is_learnt(fit) -> None:  # type: ignore[no-untyped-def]
    assert cross_validated(fit, reviews(40)) == 1.0


def test_wrong_labels_cost_what_they_should() -> None:
    # a fifth of the labels flipped: a model that learns the words is right on about 80 %
    accuracy = cross_validated(logistic(5.0), reviews(100, noise=0.2))
    assert 0.7 < accuracy < 0.9


def test_rows_left_out_are_not_trained_on() -> None:
    rows = reviews(40)
    good = {r.id for r in rows if r.label == 1}
    thanks = [data.Review("thanks", 1, "谢谢")]  # the only positive text left to learn from
    # every positive review is then answered negative: half the rows right
    assert cross_validated(logistic(5.0), rows, always=thanks, leave_out=good) == 0.5


def test_the_always_rows_join_every_fold() -> None:
    rows = reviews(40)
    good = {r.id for r in rows if r.label == 1}
    always = [data.Review(f"x{i}", 1, t) for i, t in enumerate(GOOD)]
    assert cross_validated(logistic(5.0), rows, always=always, leave_out=good) == 1.0


def test_a_word_may_lean_one_way_per_source() -> None:
    # "冰" (ice-cold) is praise for fruit and a complaint for a hot meal: one weight per word
    # cannot fit both, a copy of the features per source can (the source shows in the text)
    rows = []
    for i in range(40):
        rows += [data.Review(f"os1{i:03d}", 1, f"冰，这是第{i % 7}次买，水果"),
                 data.Review(f"os0{i:03d}", 0, f"热，这是第{i % 7}次买，水果"),
                 data.Review(f"wm1{i:03d}", 1, f"热，这是第{i % 7}次点，外卖"),
                 data.Review(f"wm0{i:03d}", 0, f"冰，这是第{i % 7}次点，外卖")]
    assert cross_validated(source_adapted(5.0), rows) == 1.0
    assert cross_validated(logistic(5.0), rows) < 0.75
