"""The fixed complaint taxonomy: categories, their precedence, urgency and sentiment labels."""

from __future__ import annotations

#: Complaint categories, in precedence order: when a text raises several problems, the first
#: one in this tuple that it mentions is its category (the labelling guide in docs/triage.md).
CATEGORIES: tuple[str, ...] = (
    "spoiled",
    "temperature",
    "damaged",
    "wrong_item",
    "missing",
    "out_of_stock",
    "late",
    "service",
    "other",
)

#: The languages the classifier reads (``hub.triage.text.language``), with their names: a
#: ticket's language is one of these, and so is each language an agent is listed with.
LANGUAGES: dict[str, str] = {"zh": "Chinese", "en": "English"}

DEFINITIONS: dict[str, str] = {
    "spoiled": "the food itself rotten, mouldy, smelly, wilted, not fresh (not mere taste)",
    "temperature": "arrived at the wrong temperature: thawed, melted, warm when it should be "
                   "cold, cold when it should be hot",
    "damaged": "crushed, bruised, leaking, spilled, broken packaging",
    "wrong_item": "a different item, someone else's order, or the wrong address",
    "missing": "items or weight short, or the order never arrived",
    "out_of_stock": "sold out / unavailable / cancelled for lack of stock",
    "late": "arrived later than promised",
    "service": "behaviour of courier, merchant or support (rude, unhelpful, refused a refund)",
    "other": "taste, price, fees, portion, app problems, anything else",
}

URGENCIES: tuple[str, ...] = ("P1", "P2", "P3", "P4")
SENTIMENTS: tuple[str, ...] = ("negative", "neutral", "positive")
READS_POSITIVE = 0.2  # sentiment_score from which a message reads as praise (urgency table)
