"""The one-screen keyword-list baseline the model is compared with (not used at run time)."""

from __future__ import annotations

from hub.triage.taxonomy import CATEGORIES
from hub.triage.text import normalise

KEYWORDS: dict[str, tuple[str, ...]] = {
    "spoiled": ("烂", "坏", "霉", "臭", "不新鲜", "变质", "rotten", "mould", "mold", "smell",
                "not fresh", "spoiled", "off"),
    "temperature": ("凉", "冷", "化了", "解冻", "cold", "warm", "melted", "thawed"),
    "damaged": ("压", "碎", "洒", "撒", "破", "crushed", "broken", "leak", "spill", "damaged"),
    "wrong_item": ("送错", "发错", "不是我", "wrong", "instead"),
    "missing": ("少", "没收到", "没有送", "missing", "never arrived", "short"),
    "out_of_stock": ("没货", "缺货", "卖完", "out of stock", "sold out"),
    "late": ("慢", "超时", "小时", "late", "slow", "hour"),
    "service": ("态度", "客服", "骑手", "rude", "refund", "support", "driver"),
}


def keyword_category(text: str) -> str:
    """The first category, in precedence order, with a keyword in the text; else "other"."""
    norm = normalise(text)
    for category in CATEGORIES[:-1]:
        if any(k in norm for k in KEYWORDS[category]):
            return category
    return "other"
