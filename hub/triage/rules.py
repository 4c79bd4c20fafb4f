"""Explicit rules: food-safety and threat words, unambiguous category phrases, urgency table.

Rules are applied to the normalised text (NFKC, lower case). A phrase preceded closely by a
negation (不 没 未 无 / not, no, n't, never) does not count, so "没凉" or "not rotten" is not a
hit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hub.triage.taxonomy import CATEGORIES, READS_POSITIVE

FOOD_SAFETY = (
    "食物中毒",
    "中毒",
    "拉肚子",
    "闹肚子",
    "腹泻",
    "上吐下泻",
    "呕吐",
    "吐了",
    "过敏",
    "住院",
    "医院",
    "挂水",
    "急诊",
    "肚子疼",
    "发烧",
    "food poisoning",
    "poisoned",
    "diarrhea",
    "diarrhoea",
    "vomit",
    "threw up",
    "allergic",
    "allergy",
    "anaphyla",
    "hospital",
    "made me sick",
    "got sick",
    "stomach ache",
    "stomachache",
)
# Allergy is a food-safety matter (P1) but not spoilage: it comes from an ingredient, nearly
# always a wrong item or an ignored note, so these words do not make a text "spoiled".
ALLERGY = ("过敏", "allergic", "allergy", "anaphyla")
THREATS = (
    "12315",
    "媒体",
    "曝光",
    "起诉",
    "工商",
    "律师",
    "报警",
    "消协",
    "记者",
    "投诉到",
    "法院",
    "市场监管",
    "sue ",
    "suing",
    "lawyer",
    "lawsuit",
    "legal action",
    "the press",
    "journalist",
    "trading standards",
    "consumer council",
    "police",
    "report you",
    "social media",
    "going public",
)
ANGER = (
    "垃圾",
    "气死",
    "骗子",
    "坑人",
    "恶心",
    "无语",
    "再也不",
    "差评",
    "太差",
    "服了",
    "退钱",
    "unacceptable",
    "disgusting",
    "ridiculous",
    "never again",
    "worst",
    "terrible",
    "joke",
    "furious",
    "angry",
    "scam",
    "!!!",
)

# Unambiguous phrases per category. When one is present for a category that comes earlier in
# the precedence order than the model's choice, the rule's category wins.
STRONG: dict[str, tuple[str, ...]] = {
    "spoiled": (
        "发霉",
        "长毛",
        "霉斑",
        "霉点",
        "变质",
        "馊",
        "发臭",
        "腐烂",
        "烂心",
        "过期",
        "虫子",
        "苍蝇",
        "蟑螂",
        "小强",
        "mould",
        "mouldy",
        "moldy",
        "rotten",
        "rotting",
        "spoiled",
        "spoilt",
        "gone off",
        "expired",
        "maggot",
        "cockroach",
        *(word for word in FOOD_SAFETY if word not in ALLERGY),
    ),
    "temperature": (
        "化冻",
        "解冻",
        "都化了",
        "化成水",
        "凉了",
        "冰凉",
        "凉透",
        "冷掉",
        "是凉的",
        "不热",
        "thawed",
        "defrosted",
        "melted",
        "stone cold",
        "lukewarm",
    ),
    "damaged": (
        "压烂",
        "压坏",
        "压扁",
        "压伤",
        "摔坏",
        "磕碰",
        "碰伤",
        "洒了",
        "撒了",
        "漏液",
        "漏出",
        "压碎",
        "压裂",
        "碰坏",
        "磕坏",
        "摔烂",
        "裂了",
        "裂开",
        "破皮",
        "袋子破",
        "盒子破",
        "crushed",
        "squashed",
        "smashed",
        "leaked",
        "leaking",
        "spilled",
        "spilt",
        "cracked",
    ),
    "wrong_item": (
        "送错",
        "发错",
        "错发",
        "不是我点的",
        "不是我的",
        "别人的订单",
        "别人的外卖",
        "给错",
        "拿错",
        "装错",
        "配错",
        "wrong item",
        "wrong order",
        "wrong address",
        "someone else",
        "not my order",
        "instead of",
    ),
    "missing": (
        "少送",
        "漏送",
        "漏发",
        "缺斤少两",
        "没收到",
        "没送",
        "没给筷子",
        "只送来",
        "只送了",
        "只收到",
        "少给",
        "少发",
        "漏掉",
        "never arrived",
        "never received",
        "never came",
        "is missing",
        "was missing",
        "were missing",
        "didn't come",
        "short weight",
        "underweight",
    ),
    "out_of_stock": ("没货", "缺货", "售罄", "卖完", "卖光", "断货", "下架", "没有单份",
                     "out of stock", "sold out"),
    "service": (
        "态度差",
        "态度很差",
        "态度极差",
        "态度不好",
        "态度恶劣",
        "客服不理",
        "客服也不理",
        "不搭理",
        "没人理",
        "没人回复",
        "不理人",
        "爱理不理",
        "拒绝退款",
        "不给退",
        "不让退",
        "骂人",
        "rude",
        "refused to refund",
        "refused my refund",
        "hung up",
    ),
}
_NEG_ZH = "不没未无"
_NEG_EN = re.compile(r"(?:\bnot|\bno|n't|\bnever|\bnothing)\W+(?:\w+\W+)?$")


def _negation_start(norm: str, phrase: str, start: int) -> int | None:
    """Where the negation of the occurrence of ``phrase`` at ``start`` begins; None if that
    occurrence is not negated (food-safety words count even when denied)."""
    if phrase.isascii():
        window = max(0, start - 20)
        match = _NEG_EN.search(norm[window:start])
        return window + match.start() if match else None
    if phrase in FOOD_SAFETY:
        return None
    for at in range(max(0, start - 2), start):
        if norm[at] in _NEG_ZH:
            return at
    return None


def _occurs(norm: str, phrase: str) -> bool:
    """True if ``phrase`` occurs in ``norm`` at least once without a negation just before."""
    start = norm.find(phrase)
    while start != -1:
        if _negation_start(norm, phrase, start) is None:
            return True
        start = norm.find(phrase, start + 1)
    return False


_CATEGORY_PHRASES: dict[str, tuple[str, ...]] = {}  # by first character
# Denied phrases are cut (``without_denials``): every category phrase and food-safety word.
for _phrase in dict.fromkeys([*(p for ps in STRONG.values() for p in ps), *FOOD_SAFETY]):
    _CATEGORY_PHRASES[_phrase[0]] = (*_CATEGORY_PHRASES.get(_phrase[0], ()), _phrase)
_MAYBE_NEGATED = re.compile(f"[{_NEG_ZH}]|no|n't")  # a cheap first test


def without_denials(norm: str) -> str:
    """``norm`` with every denied category phrase cut out, negation included ("没有发霉，就是
    不甜" -> "，就是不甜"; "not rotten, just sour" -> ", just sour"): a problem the customer
    says they do not have is no evidence for its category. The models see this text."""
    if not _MAYBE_NEGATED.search(norm):
        return norm
    spans: list[tuple[int, int]] = []
    for phrase in (p for ch in _CATEGORY_PHRASES.keys() & set(norm)
                   for p in _CATEGORY_PHRASES[ch]):
        start = norm.find(phrase)
        while start != -1:
            negation = _negation_start(norm, phrase, start)
            if negation is not None:
                spans.append((negation, start + len(phrase)))
            start = norm.find(phrase, start + 1)
    if not spans:
        return norm
    out: list[str] = []
    done = 0
    for begin, end in sorted(spans):
        if end <= done:
            continue
        out.append(norm[done:max(begin, done)])
        done = end
    out.append(norm[done:])
    return " ".join(part for part in out if part)


def _index() -> dict[str, tuple[str, ...]]:
    """Every phrase of every list, grouped by its first character (the scan's index)."""
    phrases = dict.fromkeys([*FOOD_SAFETY, *THREATS, *ANGER,
                             *(p for ps in STRONG.values() for p in ps)])
    out: dict[str, list[str]] = {}
    for phrase in phrases:
        out.setdefault(phrase[0], []).append(phrase)
    return {ch: tuple(ps) for ch, ps in out.items()}


_BY_FIRST = _index()
_FIRST = frozenset(_BY_FIRST)


def _found(norm: str) -> frozenset[str]:
    """The phrases (of any list) present without negation: one pass over the text's distinct
    characters, trying only the phrases that start with one of them."""
    return frozenset(phrase for ch in _FIRST.intersection(norm) for phrase in _BY_FIRST[ch]
                     if _occurs(norm, phrase))


def _hits(norm: str, phrases: tuple[str, ...]) -> list[str]:
    """The phrases of one list present in ``norm`` without negation, in list order."""
    found = _found(norm)
    return [p.strip() for p in phrases if p in found]


@dataclass(frozen=True)
class RuleHits:
    """What the rules found in one text."""

    food_safety: tuple[str, ...]
    threats: tuple[str, ...]
    anger: tuple[str, ...]
    strong: dict[str, tuple[str, ...]]

    def keywords(self) -> list[str]:
        """Every phrase that fired, food safety and threats first."""
        out = list(self.food_safety) + list(self.threats)
        for phrases in self.strong.values():
            out.extend(p for p in phrases if p not in out)
        return out


def scan(norm: str) -> RuleHits:
    """Run every phrase list over a normalised text."""
    found = _found(norm)
    if not found:
        return _NO_HITS

    def pick(phrases: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(p.strip() for p in phrases if p in found)

    strong = {cat: h for cat, phrases in STRONG.items() if (h := pick(phrases))}
    return RuleHits(pick(FOOD_SAFETY), pick(THREATS), pick(ANGER), strong)


_NO_HITS = RuleHits((), (), (), {})


def override(model_category: str, hits: RuleHits,
             enabled: tuple[str, ...] | None = None) -> str | None:
    """The rule's category if an unambiguous phrase outranks the model's choice, else None.
    ``enabled`` limits which categories' phrases may override (None: all of them)."""
    rank = CATEGORIES.index(model_category)
    for category in CATEGORIES[:rank]:
        if category in hits.strong and (enabled is None or category in enabled):
            return category
    return None


# Categories that need a remedy for the goods themselves (refund/resend), vs experience only.
GOODS = frozenset({"spoiled", "temperature", "damaged", "wrong_item", "missing"})


def urgency(category: str, sentiment_score: float, hits: RuleHits,
            neutral: bool = False) -> str:
    """The urgency table (docs/triage.md); ``neutral``: the message carries no opinion.

    - P1: a food-safety word (illness, poisoning, allergy, hospital).
    - P2: a threat to escalate publicly or legally (12315, 媒体, 起诉, sue, lawyer, ...);
      or spoiled/temperature (cold-chain, food-safety adjacent) with strong negative
      sentiment (score <= -0.8).
    - P3: any goods problem (spoiled, temperature, damaged, wrong_item, missing), unless the
      message reads positive or neutral and names no unambiguous phrase of its category
      ("great strawberries, thanks" is praise, "is the salmon farmed or wild?" a question,
      not a problem); or angry wording; or strong negative sentiment (score <= -0.8).
    - P4: everything else (late, out_of_stock, service, other with milder wording, and
      neutral or positive messages).
    """
    if hits.food_safety:
        return "P1"
    if hits.threats or (category in ("spoiled", "temperature") and sentiment_score <= -0.8):
        return "P2"
    goods_problem = category in GOODS and (
        category in hits.strong or (sentiment_score < READS_POSITIVE and not neutral))
    if goods_problem or hits.anger or sentiment_score <= -0.8:
        return "P3"
    return "P4"
