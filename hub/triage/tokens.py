"""Text to model features: jieba words and character n-grams (Chinese), words, word bigrams
and character n-grams (English). One analysis feeds both models.

Features carry a prefix: ``w:`` word, ``b:`` word bigram, ``c:`` character n-gram. The
segmenter is a private :class:`jieba.Tokenizer` with the domain words added, built lazily on
first use (jieba's bundled dictionary; nothing is downloaded).
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
    """The feature strings of one (raw) text."""
    return analyse_normalised(normalise(text))


def analyse_normalised(norm: str) -> list[str]:
    """The feature strings of a text already passed through ``text.normalise``; denied
    category phrases ("没有发霉", "not rotten") are left out (``rules.without_denials``)."""
    norm = without_denials(norm)
    feats: list[str] = []
    cjk_runs = _CJK_RUN.findall(norm)
    if cjk_runs:
        words = [w for w in segmenter().lcut(" ".join(cjk_runs), HMM=False) if w != " "]
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
    return feats


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
