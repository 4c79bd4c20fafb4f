"""A character CNN that reads the text in order, beside the category regression.

The category regression sees a bag of words and n-grams; this network reads the text as a
sequence of symbols (a Chinese character, an English word, a digit run, a punctuation mark)
through convolutions one to five symbols wide, a max over the text and a softmax over the
categories (Kim 2014, on characters). It learns from the same rows as the regression, and
the two answers are mixed: ``p = w · p(regression) + (1 − w) · p(network)``, ``w`` chosen by
cross-validation (``hub.triage.train``). See "Models" in docs/triage.md.

Training needs TensorFlow (``pip install 'coldloop[train]'``, as for the grader); the fitted
weights are stored as plain arrays and the forward pass here is numpy, so classifying needs
neither TensorFlow nor a GPU.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hub.triage.rules import without_denials

WIDTHS = (1, 2, 3, 4, 5)  # convolution widths, in symbols
MAX_SYMBOLS = 150  # a longer text is read up to here
CHECKED = 512  # training texts on which the numpy forward pass is checked against Keras
LENGTH_GROUP = 16  # texts per forward pass, grouped by length (small: stays in cache)
PAD, UNKNOWN = 0, 1  # symbol ids with no vocabulary entry
_SYMBOL = re.compile(r"[a-z]+(?:'[a-z]+)?|\d+|[\u4e00-\u9fff\u3400-\u4dbf]|[^\w\s]")


def symbols(norm: str) -> list[str]:
    """The symbols the network reads, of a text passed through ``text.normalise``. Denied
    category phrases are left out, as for the regression (``rules.without_denials``): the
    network does not learn "没有发霉" from the few denials among its training texts."""
    return symbols_cut(without_denials(norm))


def symbols_cut(cut: str) -> list[str]:
    """``symbols`` of a normalised text whose denied phrases are already cut."""
    return _SYMBOL.findall(cut)[:MAX_SYMBOLS]


@dataclass(frozen=True)
class CharCnn:
    """Fitted weights (float32): symbol embedding, one convolution per width, output layer."""

    vocabulary: dict[str, int]  # symbol -> embedding row (0 padding, 1 unknown)
    classes: tuple[str, ...]
    embedding: NDArray[np.float32]  # (symbols, dim)
    kernel: NDArray[np.float32]  # (max width · dim, filters · widths): every width at once
    bias: NDArray[np.float32]  # (filters · widths,)
    out_kernel: NDArray[np.float32]  # (filters · widths, classes)
    out_bias: NDArray[np.float32]  # (classes,)

    def probabilities(self, texts: Sequence[list[str]]) -> NDArray[np.float32]:
        """p(category) of each text (``symbols`` lists), columns in ``classes`` order. Texts
        of like length are computed together, so that short ones carry little padding."""
        out = np.empty((len(texts), len(self.classes)), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda n: len(texts[n]))
        for start in range(0, len(order), LENGTH_GROUP):
            group = order[start:start + LENGTH_GROUP]
            out[group] = self._forward([texts[n] for n in group])
        return out

    @cached_property
    def _tables(self) -> list[tuple[int, NDArray[np.float32]]]:
        """The convolutions as lookups: for symbol ``j`` of the window (the last is
        ``reach − 1``), the first kernel column it feeds (a width reads only the window's last
        symbols) and every vocabulary symbol's product with those kernel rows. Built once per
        process, never stored."""
        dim = self.embedding.shape[1]
        filters = self.kernel.shape[1] // len(WIDTHS)
        reach = max(WIDTHS)
        tables = []
        for j in range(reach):
            first = (reach - 1 - j) * filters
            rows = self.kernel[j * dim:(j + 1) * dim, first:]
            tables.append((first, np.ascontiguousarray(self.embedding @ rows)))
        return tables

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_tables", None)  # derived; rebuilt on first use
        return state

    def _forward(self, texts: Sequence[list[str]]) -> NDArray[np.float32]:
        ids = encode(self.vocabulary, texts, max(1, max(map(len, texts), default=1)))
        n, length = ids.shape
        reach = max(WIDTHS)
        # the window of the last ``reach`` symbols ending at each position (causal padding:
        # PAD's embedding row is zero, so its products are too)
        padded = np.zeros((n, length + reach - 1), dtype=np.int64)
        padded[:, reach - 1:] = ids
        h = np.empty((n * length, self.kernel.shape[1]), dtype=np.float32)
        h[:] = self.bias
        for j, (first, table) in enumerate(self._tables):
            h[:, first:] += table[padded[:, j:j + length].reshape(-1)]
        np.maximum(h, 0.0, out=h)
        h = h.reshape(n, length, -1)
        h *= (ids != PAD)[:, :, None]  # padding never wins the max (activations are >= 0)
        scores: NDArray[np.float32] = h.max(axis=1) @ self.out_kernel + self.out_bias
        scores -= scores.max(axis=1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=1, keepdims=True)
        return scores


def encode(vocabulary: dict[str, int], texts: Sequence[list[str]], width: int
           ) -> NDArray[np.int64]:
    """Symbol ids, one row of ``width`` per text, padded with ``PAD``."""
    out = np.zeros((len(texts), width), dtype=np.int64)
    get = vocabulary.get
    for n, text in enumerate(texts):
        out[n, :len(text)] = [get(s, UNKNOWN) for s in text[:width]]
    return out


def fit(texts: Sequence[list[str]], labels: Sequence[str], weights: Sequence[float], *,
        seed: int, epochs: int, dim: int, filters: int) -> CharCnn:
    """Train on ``symbols`` lists, their categories and per-row weights (classes balanced on
    top, as the regression's ``class_weight="balanced"``). Deterministic for a seed."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    counts = Counter(s for text in texts for s in text)
    vocabulary = {s: n + 2 for n, s in enumerate(sorted(s for s, k in counts.items() if k >= 2))}
    classes = tuple(sorted(set(labels)))
    y = np.array([classes.index(c) for c in labels], dtype=np.int64)
    w = np.asarray(weights, dtype=np.float64)
    per_class = np.bincount(y, weights=w, minlength=len(classes))
    w = w * (w.sum() / (len(classes) * per_class))[y]
    ids = encode(vocabulary, texts, MAX_SYMBOLS)

    inputs = tf.keras.Input(shape=(None,), dtype="int64")
    embedded = tf.keras.layers.Embedding(len(vocabulary) + 2, dim, name="embedding")(inputs)
    mask = tf.keras.layers.Lambda(
        lambda t: tf.cast(tf.not_equal(t, PAD), tf.float32)[:, :, None])(inputs)
    convs = [tf.keras.layers.Conv1D(filters, width, padding="causal", activation="relu",
                                    name=f"conv{width}")(embedded) for width in WIDTHS]
    joined = tf.keras.layers.Concatenate()(convs)
    pooled = tf.keras.layers.Lambda(lambda t: tf.reduce_max(t[0] * t[1], axis=1))(
        [joined, mask])
    dropped = tf.keras.layers.Dropout(0.5)(pooled)
    outputs = tf.keras.layers.Dense(len(classes), activation="softmax", name="out")(dropped)
    model = tf.keras.Model(inputs, outputs)
    model.compile(optimizer=tf.keras.optimizers.Adam(2e-3),
                  loss="sparse_categorical_crossentropy")
    model.fit(ids, y, sample_weight=w, epochs=epochs, batch_size=64, shuffle=True, verbose=0)
    net = _export(model, vocabulary, classes, dim, filters)
    # the numpy forward pass must answer as Keras does
    sample = list(texts[:CHECKED])
    keras = model.predict(encode(vocabulary, sample, MAX_SYMBOLS), verbose=0)
    gap = float(np.abs(net.probabilities(sample) - keras).max())
    if gap > 1e-4:
        raise RuntimeError(f"numpy forward pass differs from Keras by {gap:.2e}")
    return net


def _export(model: Any, vocabulary: dict[str, int], classes: tuple[str, ...], dim: int,
            filters: int) -> CharCnn:
    """The Keras model's weights as one kernel over the widest window: a narrower
    convolution reads only the window's last symbols, its other rows are zero."""
    reach = max(WIDTHS)
    kernel = np.zeros((reach * dim, filters * len(WIDTHS)), dtype=np.float32)
    bias = np.zeros(filters * len(WIDTHS), dtype=np.float32)
    for k, width in enumerate(WIDTHS):
        weights, b = model.get_layer(f"conv{width}").get_weights()  # (width, dim, filters)
        rows = slice((reach - width) * dim, reach * dim)
        kernel[rows, k * filters:(k + 1) * filters] = weights.reshape(width * dim, filters)
        bias[k * filters:(k + 1) * filters] = b
    out_kernel, out_bias = model.get_layer("out").get_weights()
    embedding = model.get_layer("embedding").get_weights()[0]
    embedding[PAD] = 0.0  # the forward pass pads on the left with PAD; Keras with zeros
    return CharCnn(vocabulary, classes, embedding.astype(np.float32), kernel, bias,
                   out_kernel.astype(np.float32), out_bias.astype(np.float32))
