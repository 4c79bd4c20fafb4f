"""The data the repository carries: sentiment reviews, the hand-labelled evaluation sets."""

from __future__ import annotations

import csv
import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
REVIEW_FILES = ("waimai_10k_train.csv", "online_shopping_fruit_train.csv")
ZH_EVAL = DATA_DIR / "eval" / "zh_labelled.csv"
EN_EVAL = DATA_DIR / "eval" / "en_heldout.jsonl"
ZH_TRAIN = DATA_DIR / "train" / "zh_labelled_train.csv"
ZH_TRAIN_SEED = 20240612
ZH_TRAIN_PER_SOURCE = 350
SENTIMENT_SEED = 20240611
SENTIMENT_TEST_SHARE = 0.2


@dataclass(frozen=True)
class Review:
    """One sentiment-labelled review (label 1 positive, 0 negative)."""

    id: str
    label: int
    text: str


@dataclass(frozen=True)
class Labelled:
    """One hand-labelled complaint text of an evaluation set."""

    id: str
    category: str
    text: str
    split: str  # "dev" / "test" (Chinese) or "heldout" (English)


def reviews() -> list[Review]:
    """Every review row of both CSV files, in file order."""
    rows: list[Review] = []
    for name in REVIEW_FILES:
        with (DATA_DIR / "reviews" / name).open(encoding="utf-8", newline="") as f:
            rows.extend(Review(r["id"], int(r["label"]), r["review"]) for r in csv.DictReader(f))
    return rows


def zh_eval(split: str | None = None) -> list[Labelled]:
    """The hand-labelled Chinese complaints (non-complaint rows skipped), optionally one split."""
    with ZH_EVAL.open(encoding="utf-8", newline="") as f:
        rows = [Labelled(r["id"], r["category"], r["review"], r["split"])
                for r in csv.DictReader(f) if r["category"] != "skip"]
    return [r for r in rows if split is None or r.split == split]


def zh_eval_ids() -> set[str]:
    """Ids of every sampled row (labelled or skipped): kept out of sentiment training."""
    with ZH_EVAL.open(encoding="utf-8", newline="") as f:
        return {r["id"] for r in csv.DictReader(f)}


def zh_train() -> list[Labelled]:
    """The hand-labelled Chinese complaints for *training* (skipped rows left out)."""
    with ZH_TRAIN.open(encoding="utf-8", newline="") as f:
        return [Labelled(r["id"], r["category"], r["review"], "train")
                for r in csv.DictReader(f) if r["category"] != "skip"]


def zh_train_ids() -> set[str]:
    """Ids of every row of the category training file (labelled or skipped)."""
    with ZH_TRAIN.open(encoding="utf-8", newline="") as f:
        return {r["id"] for r in csv.DictReader(f)}


def zh_train_draw() -> list[Review]:
    """The rows drawn for training labels: per source, ``ZH_TRAIN_PER_SOURCE`` negative rows of
    the sentiment *training* part (so never an eval-sample or sentiment held-out row), sampled
    with ``random.Random(ZH_TRAIN_SEED)`` from the id-sorted pool."""
    train, _ = sentiment_split()
    excluded = zh_eval_ids()
    out: list[Review] = []
    for source in ("wm", "os"):
        pool = sorted((r for r in train if r.label == 0 and r.id[:2] == source
                       and r.id not in excluded), key=lambda r: r.id)
        out.extend(random.Random(ZH_TRAIN_SEED).sample(pool, ZH_TRAIN_PER_SOURCE))
    return out


def en_eval() -> list[Labelled]:
    """The hand-written English complaints (held out: never used for training or tuning)."""
    with EN_EVAL.open(encoding="utf-8") as f:
        return [Labelled(d["id"], d["category"], d["text"], "heldout")
                for d in map(json.loads, f) if d]


def sentiment_split() -> tuple[list[Review], list[Review]]:
    """(train, test): seeded split stratified by source and label; eval-sample rows excluded."""
    excluded = zh_eval_ids()
    groups: dict[tuple[str, int], list[Review]] = {}
    for r in reviews():
        if r.id not in excluded:
            groups.setdefault((r.id[:2], r.label), []).append(r)
    rng = random.Random(SENTIMENT_SEED)
    train: list[Review] = []
    test: list[Review] = []
    for key in sorted(groups):
        rows = sorted(groups[key], key=lambda r: r.id)
        rng.shuffle(rows)
        cut = round(len(rows) * SENTIMENT_TEST_SHARE)
        test.extend(rows[:cut])
        train.extend(rows[cut:])
    return train, test


def file_hashes() -> dict[str, str]:
    """sha256 of every data file the models and metrics depend on."""
    paths = [DATA_DIR / "reviews" / n for n in REVIEW_FILES] + [ZH_EVAL, EN_EVAL, ZH_TRAIN]
    return {str(p.relative_to(DATA_DIR)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in paths}
