"""The character network's symbols and its numpy forward pass (hub.triage.network).

The forward pass computes every convolution width with one matrix product over windows of the
widest width; these tests hold it to a direct convolution written out position by position.
Training (TensorFlow) checks the same forward pass against Keras each time it runs.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from numpy.typing import NDArray

from hub.triage import network
from hub.triage.model import load
from hub.triage.network import MAX_SYMBOLS, PAD, UNKNOWN, WIDTHS, CharCnn, symbols

DIM, FILTERS, CLASSES = 3, 2, ("a", "b", "c")


def random_net(seed: int, vocabulary: dict[str, int]) -> CharCnn:
    rng = np.random.default_rng(seed)
    reach = max(WIDTHS)
    embedding = rng.standard_normal((len(vocabulary) + 2, DIM)).astype(np.float32)
    embedding[PAD] = 0.0
    kernel = np.zeros((reach * DIM, FILTERS * len(WIDTHS)), dtype=np.float32)
    for k, width in enumerate(WIDTHS):  # a width reads the window's last symbols only
        kernel[(reach - width) * DIM:, k * FILTERS:(k + 1) * FILTERS] = rng.standard_normal(
            (width * DIM, FILTERS))
    return CharCnn(vocabulary, CLASSES, embedding, kernel,
                   rng.standard_normal(FILTERS * len(WIDTHS)).astype(np.float32),
                   rng.standard_normal((FILTERS * len(WIDTHS), 3)).astype(np.float32),
                   rng.standard_normal(3).astype(np.float32))


def direct(net: CharCnn, text: list[str]) -> NDArray[np.float64]:
    """The same network, one position and one width at a time."""
    reach = max(WIDTHS)
    ids = [net.vocabulary.get(s, UNKNOWN) for s in text]
    pooled = []
    for k, width in enumerate(WIDTHS):
        cols = slice(k * FILTERS, (k + 1) * FILTERS)
        best = np.full(FILTERS, -np.inf)
        for t in range(len(ids)):
            h = net.bias[cols].astype(np.float64).copy()
            for j in range(width):  # symbol t - width + 1 + j, zero before the text
                at = t - width + 1 + j
                if at >= 0:
                    rows = slice((reach - width + j) * DIM, (reach - width + j + 1) * DIM)
                    h += net.embedding[ids[at]] @ net.kernel[rows, cols]
            best = np.maximum(best, np.maximum(h, 0.0))
        pooled.append(best)
    scores = np.concatenate(pooled) @ net.out_kernel + net.out_bias
    e = np.exp(scores - scores.max())
    probabilities: NDArray[np.float64] = e / e.sum()
    return probabilities


VOCAB = {s: n + 2 for n, s in enumerate("草莓烂了太慢不新鲜冷")}
TEXTS = [list("草莓烂了"), list("太慢"), list("不新鲜"), list("冷"), list("草莓不冷了太慢太慢"),
         list("没见过的字"), ["x"] * 40]


def test_forward_pass_matches_a_direct_convolution() -> None:
    for seed in range(5):
        net = random_net(seed, VOCAB)
        got = net.probabilities(TEXTS)
        want = np.array([direct(net, t) for t in TEXTS])
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_a_texts_answer_does_not_depend_on_its_batch() -> None:
    net = random_net(7, VOCAB)
    alone = np.vstack([net.probabilities([t]) for t in TEXTS])
    together = net.probabilities(TEXTS[::-1])[::-1]
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-7)
    assert net.probabilities([]).shape == (0, 3)
    # nothing to read ("没有发霉" once its denial is cut): the output layer's bias alone
    e = np.exp(net.out_bias - net.out_bias.max())
    np.testing.assert_allclose(net.probabilities([[]])[0], e / e.sum(), rtol=1e-5)


def test_lookup_tables_are_rebuilt_not_stored() -> None:
    net = random_net(4, VOCAB)
    before = net.probabilities(TEXTS)
    copy = pickle.loads(pickle.dumps(net))
    assert "_tables" in net.__dict__ and "_tables" not in copy.__dict__
    np.testing.assert_array_equal(copy.probabilities(TEXTS), before)


def test_order_matters() -> None:
    """Unlike a bag of characters, the network tells "不冷" from "冷不"."""
    net = random_net(3, VOCAB)
    a, b = net.probabilities([list("不冷"), list("冷不")])
    assert not np.allclose(a, b)


def test_symbols() -> None:
    assert symbols("草莓烂了!! 3 boxes, don't") == ["草", "莓", "烂", "了", "!", "!", "3", "boxes",
                                                  ",", "don't"]
    assert symbols("") == []
    # a denied problem is cut out, as for the regression
    assert symbols("没有发霉，就是不甜") == ["，", "就", "是", "不", "甜"]
    assert len(symbols("烂" * 1000)) == MAX_SYMBOLS


def test_encode_pads_and_marks_unknown_symbols() -> None:
    ids = network.encode({"a": 2}, [["a", "z"], []], 3)
    assert ids.tolist() == [[2, UNKNOWN, PAD], [PAD, PAD, PAD]]


def test_committed_network_answers_in_the_regressions_class_order() -> None:
    m = load()
    if m.category_network is None:
        pytest.fail("the committed model has no category network")
    assert tuple(m.category_network.classes) == tuple(m.category_classifier.classes_)
    assert 0.0 < m.regression_share < 1.0
    p = m.category_network.probabilities([symbols("草莓全烂了，发霉"), symbols("three days late")])
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
