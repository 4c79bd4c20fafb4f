"""Text to model features: jieba words and character n-grams (Chinese), words, word bigrams
and character n-grams (English). One segmentation feeds both models.

Features carry a prefix: ``w:`` word, ``b:`` word bigram, ``c:`` character n-gram. The
sentiment model also sees how a text is written (``sentiment_extras``): ``p:`` a run of
punctuation or symbols ("!!!", "~"), ``q:`` each symbol in it, ``len:`` the length in tens of
characters, ``d:`` Chinese character 4-grams and ``n:`` a word that follows a negation in the
same clause ("不是很新鲜" gives ``n:很`` and ``n:新鲜``). The segmenter is a private
:class:`jieba.Tokenizer` with the domain words added, built lazily on first use (jieba's
bundled dictionary; nothing is downloaded).
"""

from __future__ import annotations

import itertools
import re
import threading
from functools import lru_cache
from typing import Any

from hub.triage.rules import without_denials
from hub.triage.text import normalise

# Domain words jieba should keep whole (HELPDESK.md's list and a few more).
DOMAIN_WORDS = ("发霉", "烂了", "缺斤少两", "漏发", "错发", "冷链", "化冻", "解冻", "长毛", "霉斑",
                "变质", "馊了", "压烂", "压坏", "碰伤", "磕碰", "送错", "少送", "漏送", "没货",
                "缺货", "售罄", "超时", "太慢", "凉了", "化了", "不新鲜", "拉肚子", "食物中毒",
                "退款", "拒绝退款", "态度差", "不送上楼", "分量不足", "斤两不足", "蔫了", "坏果",
                "烂果", "12315", "上吐下泻", "闹肚子")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?|\d+")
_SYMBOLS = re.compile(r"[^\w\s]+")
NEGATIONS = frozenset("不没无别未")  # a word of at most two characters starting with one
# negates the rest of its clause for the sentiment model's ``n:`` features
LENGTH_BUCKETS = 12  # ``len:`` counts tens of characters up to this
_lock = threading.Lock()


@lru_cache(maxsize=1)
def segmenter() -> Any:
    """The shared jieba tokenizer (loaded once, thread-safe initialisation)."""
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    with _lock:
        tokenizer = jieba.Tokenizer()
        tokenizer.initialize()
        for word in DOMAIN_WORDS:
            tokenizer.add_word(word, freq=20000)
    return tokenizer


_CJK_RUN = re.compile("[\u4e00-\u9fff\u3400-\u4dbf]+")


def _char_ngrams(run: str, lo: int, hi: int, out: list[str]) -> None:
    n_chars = len(run)
    for n in range(lo, hi + 1):
        out.extend(["c:" + run[k:k + n] for k in range(n_chars - n + 1)])


def analyse(text: str) -> list[str]:
    """The category model's feature strings of one (raw) text."""
    return analyse_normalised(normalise(text))


def analyse_sentiment(text: str) -> list[str]:
    """The sentiment model's feature strings of one (raw) text."""
    return analyse_both(normalise(text))[1]


def analyse_normalised(norm: str) -> list[str]:
    """The category model's features of a text already passed through ``text.normalise``;
    denied category phrases ("没有发霉", "not rotten") are left out
    (``rules.without_denials``)."""
    return _analyse(without_denials(norm))[0]


def analyse_both(norm: str) -> tuple[list[str], list[str]]:
    """(category features, sentiment features) of a normalised text, segmented once; the
    sentiment features are the category ones plus ``sentiment_extras``."""
    return analyse_cut(without_denials(norm))


def analyse_cut(cut: str) -> tuple[list[str], list[str]]:
    """``analyse_both`` of a normalised text whose denied phrases are already cut
    (``rules.without_denials``), for a caller that hands the cut text on to the network too."""
    cjk_runs = _CJK_RUN.findall(cut)
    feats, tokens = _analyse(cut, cjk_runs)
    return feats, feats + sentiment_extras(cut, cjk_runs, tokens)


def _analyse(norm: str, cjk_runs: list[str] | None = None) -> tuple[list[str], list[str]]:
    """(features, jieba's tokens) of a denial-free normalised text whose CJK runs are
    ``cjk_runs`` (found here when not given). The tokens are the words of the runs with a " "
    between runs (a run is a clause)."""
    feats: list[str] = []
    tokens: list[str] = []
    if cjk_runs is None:
        cjk_runs = _CJK_RUN.findall(norm)
    if cjk_runs:
        tokens = segmenter().lcut(" ".join(cjk_runs), HMM=False)
        words = [w for w in tokens if w != " "]
        feats.extend(["w:" + w for w in words])
        feats.extend([f"b:{a}_{b}" for a, b in itertools.pairwise(words)])
        for chunk in cjk_runs:
            _char_ngrams(chunk, 1, 3, feats)
    latin = _WORD.findall(norm)
    if latin:
        feats.extend(["w:" + w for w in latin])
        feats.extend([f"b:{a}_{b}" for a, b in itertools.pairwise(latin)])
        for w in latin:
            if len(w) > 3:
                _char_ngrams(f"<{w}>", 4, 4, feats)
    return feats, tokens


def sentiment_extras(norm: str, cjk_runs: list[str], tokens: list[str]) -> list[str]:
    """How a normalised text is written, beyond its words (see the module docstring);
    ``cjk_runs`` and ``tokens``: its CJK runs and their segmentation (``_analyse``)."""
    out: list[str] = []
    for run in _SYMBOLS.findall(norm):
        out.append("p:" + run[:4])
        out.extend(["q:" + ch for ch in dict.fromkeys(run)])
    out.append(f"len:{min(len(norm) // 10, LENGTH_BUCKETS)}")
    for run in cjk_runs:
        out.extend(["d:" + run[k:k + 4] for k in range(len(run) - 3)])
    negated = False
    for token in tokens:
        if token == " ":  # the next clause
            negated = False
        elif len(token) <= 2 and token[0] in NEGATIONS:
            negated = True
        elif negated:
            out.append("n:" + token)
    return out


def passthrough(features: list[str]) -> list[str]:
    """Analyzer for vectorizers fed pre-analysed feature lists (picklable by reference)."""
    return features


def readable(feature: str) -> str:
    """A feature as a customer-facing keyword: prefix dropped, bigram joined, markers gone."""
    body = feature[2:]
    if feature.startswith("b:"):
        a, _, b = body.partition("_")
        sep = " " if a.isascii() and b.isascii() else ""
        return a + sep + b
    return body.strip("<>")
