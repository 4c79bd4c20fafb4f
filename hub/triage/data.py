"""The data the repository carries: sentiment reviews, the hand-labelled evaluation sets."""

from __future__ import annotations

import csv
import hashlib
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
REVIEW_FILES = ("waimai_10k_train.csv", "online_shopping_fruit_train.csv")
ZH_EVAL = DATA_DIR / "eval" / "zh_labelled.csv"
EN_EVAL = DATA_DIR / "eval" / "en_heldout.jsonl"
ZH_TRAIN = DATA_DIR / "train" / "zh_labelled_train.csv"
ZH_TRAIN_SEED = 20240612
ZH_TRAIN_PER_SOURCE = 350
ZH_TRAIN_MORE = DATA_DIR / "train" / "zh_labelled_train_more.csv"
ZH_TRAIN_MORE_SEED = 20240613
ZH_TRAIN_MORE_PER_SOURCE = 300
ZH_TRAIN_CUED_SEED = 20240614
ZH_TRAIN_CUED_N = 400
# Words that make a rare-category complaint likely (service, out_of_stock, damaged, missing,
# wrong_item): the targeted training draw samples among rows containing one of them.
RARE_CUES = re.compile("客服|态度|骑手|送餐员|小哥|快递员|商家|老板|没货|缺货|卖完|售罄|下架|"
                       "没有了|换成|少了|漏|没收到|没送|压|碎|破|洒|错|退款|不理|不回")
ZH_TRAIN_THIRD = DATA_DIR / "train" / "zh_labelled_train_third.csv"
ZH_TRAIN_THIRD_SEED = 20240616
ZH_TRAIN_THIRD_RANDOM = 600
ZH_TRAIN_THIRD_CUED = 600
ZH_TRAIN_REST = DATA_DIR / "train" / "zh_labelled_train_rest.csv"
ZH_TEST2 = DATA_DIR / "eval" / "zh_labelled_test2.csv"
ZH_TEST2_SEED = 20240615
ZH_TEST2_PER_SOURCE = 250
ZH_TRAIN_FILES = (ZH_TRAIN, ZH_TRAIN_MORE, ZH_TRAIN_THIRD, ZH_TRAIN_REST)
# People's triage checks exported from a hub (``coldloop hub triage-corrections``), reviewed
# and committed; read with the hand-labelled training rows when present.
CORRECTIONS = DATA_DIR / "train" / "corrections.csv"
ZH_SECOND = DATA_DIR / "eval" / "zh_labelled_second.csv"  # a second annotator, on ZH_EVAL
# Complaint messages written in the style of the hub's channels (app, hotline, social, chat),
# each labelled by its writer and again by a reader who saw neither label nor writer.
MESSAGES_EVAL = DATA_DIR / "eval" / "messages_written.jsonl"
MESSAGES_SPLIT_SEED = 20261127
# Complaint messages written for training, by other writers, in other contexts.
MESSAGES_TRAIN = DATA_DIR / "train" / "messages_written.jsonl"
# Messages without an opinion (questions, requests, information) and thank-you messages,
# written in the hub's channel styles for evaluation (kind checked by a blind reader), and by
# other writers in other contexts for training.
NEUTRAL_EVAL = DATA_DIR / "eval" / "neutral_written.jsonl"
NEUTRAL_TRAIN = DATA_DIR / "train" / "neutral_written.jsonl"
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
    """The hand-labelled Chinese complaints for *training*, both rounds (skipped rows left
    out)."""
    rows: list[Labelled] = []
    for path in _train_files():
        with path.open(encoding="utf-8", newline="") as f:
            rows.extend(Labelled(r["id"], r["category"], r["review"], "train")
                        for r in csv.DictReader(f) if r["category"] != "skip")
    return rows


TRAINING_HEADER = ["id", "category", "review"]


def read_training_file(path: Path) -> dict[str, dict[str, str]]:
    """The rows of a category training CSV (id, category, review) by id; ``ValueError``
    naming the line of anything else: another header, a row of other than three fields, an
    empty id or review, an unknown category, an id given twice, bytes that are not UTF-8."""
    from hub.triage.taxonomy import CATEGORIES

    known = {*CATEGORIES, "skip"}
    rows: dict[str, dict[str, str]] = {}
    try:
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header != TRAINING_HEADER:
                raise ValueError(f"{path}: its header is {header}, not id,category,review")
            for row in reader:
                where = f"{path}, line {reader.line_num}"
                if len(row) != 3:
                    raise ValueError(f"{where}: {len(row)} fields, not 3 (id,category,review)")
                ident, category, review = row
                if not ident.strip() or not review.strip():
                    raise ValueError(f"{where}: the id and the review must not be empty")
                if category not in known:
                    raise ValueError(f"{where}: category {category!r} is not one of "
                                     f"{', '.join(sorted(known))}")
                if ident in rows:
                    raise ValueError(f"{where}: id {ident!r} is given twice")
                rows[ident] = dict(zip(TRAINING_HEADER, row, strict=True))
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not UTF-8 text: {err}") from None
    except csv.Error as err:
        raise ValueError(f"{path}: not a CSV file: {err}") from None
    return rows


def _train_files() -> tuple[Path, ...]:
    return (*ZH_TRAIN_FILES, *([CORRECTIONS] if CORRECTIONS.exists() else []))


def evaluation_texts() -> set[str]:
    """Every text of the evaluation sets, whitespace-normalised: never a training row."""
    texts = [r.text for r in (*zh_eval(), *zh_test2(), *en_eval())]
    texts += [m.text for m in messages_eval()] + [w.text for w in neutral_eval()]
    return {" ".join(t.split()) for t in texts}


def zh_train_ids() -> set[str]:
    """Ids of every row of the category training files (labelled or skipped)."""
    ids: set[str] = set()
    for path in ZH_TRAIN_FILES:
        with path.open(encoding="utf-8", newline="") as f:
            ids.update(r["id"] for r in csv.DictReader(f))
    return ids


def zh_test2() -> list[Labelled]:
    """The second Chinese test sample (``zh_test2_draw``), skipped rows left out."""
    with ZH_TEST2.open(encoding="utf-8", newline="") as f:
        return [Labelled(r["id"], r["category"], r["review"], "test2")
                for r in csv.DictReader(f) if r["category"] != "skip"]


@dataclass(frozen=True)
class Message:
    """One written complaint message of the channel-style evaluation set."""

    id: str
    language: str  # "zh" / "en"
    channel: str
    category: str  # the writer's label (the gold)
    second: str  # the blind reader's label
    split: str  # "dev" / "test"
    text: str


def messages_eval() -> list[Message]:
    """Every row of the written channel-style evaluation set."""
    with MESSAGES_EVAL.open(encoding="utf-8") as f:
        return [Message(**json.loads(line)) for line in f if line.strip()]


def messages_split(rows: list[Message]) -> dict[str, str]:
    """The documented dev/test split of the written evaluation messages: within each (language,
    writer's category) group, id-sorted, shuffled with ``MESSAGES_SPLIT_SEED``, the first half
    is dev."""
    return _halves([(m.id, (m.language, m.category)) for m in rows])


def _halves(rows: list[tuple[str, tuple[str, str]]]) -> dict[str, str]:
    """dev/test of (id, group) pairs: each group id-sorted, shuffled with
    ``MESSAGES_SPLIT_SEED``, its first half dev."""
    groups: dict[tuple[str, str], list[str]] = {}
    for row_id, group in rows:
        groups.setdefault(group, []).append(row_id)
    rng = random.Random(MESSAGES_SPLIT_SEED)
    split: dict[str, str] = {}
    for key in sorted(groups):
        ids = sorted(groups[key])
        rng.shuffle(ids)
        for n, row_id in enumerate(ids):
            split[row_id] = "dev" if n < len(ids) // 2 else "test"
    return split


def messages(split: str, language: str) -> list[Labelled]:
    """The written evaluation messages of one split and language, as labelled texts."""
    return [Labelled(m.id, m.category, m.text, m.split) for m in messages_eval()
            if m.split == split and m.language == language]


def messages_train(language: str) -> list[Labelled]:
    """The complaint messages written for training, in one language."""
    with MESSAGES_TRAIN.open(encoding="utf-8") as f:
        return [Labelled(d["id"], d["category"], d["text"], "train")
                for d in map(json.loads, filter(str.strip, f)) if d["language"] == language]


@dataclass(frozen=True)
class Written:
    """One written message labelled by sentiment only: "neutral" (no opinion) or "positive"."""

    id: str
    language: str  # "zh" / "en"
    channel: str  # the channel style (evaluation) or the writer's context (training)
    kind: str  # the writer's label: "neutral" / "positive"
    second: str  # the blind reader's label (evaluation only; "" in training)
    split: str  # "dev" / "test" (evaluation) or "train"
    text: str


def neutral_eval() -> list[Written]:
    """Every row of the written neutral / thank-you evaluation set."""
    with NEUTRAL_EVAL.open(encoding="utf-8") as f:
        return [Written(**json.loads(line)) for line in f if line.strip()]


def neutral_split(rows: list[Written]) -> dict[str, str]:
    """Their dev/test split: halves within each (language, kind), as ``messages_split``."""
    return _halves([(w.id, (w.language, w.kind)) for w in rows])


def neutral_train() -> list[Written]:
    """The neutral and thank-you messages written for training, both languages."""
    with NEUTRAL_TRAIN.open(encoding="utf-8") as f:
        return [Written(d["id"], d["language"], d["context"], d["kind"], "", "train", d["text"])
                for d in map(json.loads, filter(str.strip, f))]


def sentiment_messages(split: str, language: str) -> list[tuple[str, str]]:
    """(text, sentiment) of the written evaluation messages of one split and language: the
    complaints (negative), the neutral messages and the thank-you messages."""
    complaints = [(m.text, "negative") for m in messages_eval()
                  if m.split == split and m.language == language]
    return complaints + [(w.text, w.kind) for w in neutral_eval()
                         if w.split == split and w.language == language]


def zh_second_labels() -> dict[str, str]:
    """The second annotator's labels of every ``ZH_EVAL`` row (made without seeing the first)."""
    with ZH_SECOND.open(encoding="utf-8", newline="") as f:
        return {r["id"]: r["category"] for r in csv.DictReader(f)}


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


def _negatives(part: list[Review], source: str, excluded: set[str]) -> list[Review]:
    return sorted((r for r in part if r.label == 0 and r.id[:2] == source
                   and r.id not in excluded), key=lambda r: r.id)


def zh_train_more_draw() -> list[Review]:
    """The second round of training rows: per source ``ZH_TRAIN_MORE_PER_SOURCE`` negative rows
    of the sentiment training part not drawn before (``random.Random(ZH_TRAIN_MORE_SEED)``),
    then ``ZH_TRAIN_CUED_N`` rows among the rest that contain a ``RARE_CUES`` word."""
    train, _ = sentiment_split()
    excluded = zh_eval_ids() | {r.id for r in zh_train_draw()}
    out: list[Review] = []
    for source in ("wm", "os"):
        pool = _negatives(train, source, excluded)
        out.extend(random.Random(ZH_TRAIN_MORE_SEED).sample(pool, ZH_TRAIN_MORE_PER_SOURCE))
    excluded |= {r.id for r in out}
    cued = [r for r in _negatives(train, "wm", excluded) + _negatives(train, "os", excluded)
            if RARE_CUES.search(r.text)]
    out.extend(random.Random(ZH_TRAIN_CUED_SEED).sample(cued, ZH_TRAIN_CUED_N))
    return out


def zh_train_third_draw() -> list[Review]:
    """The third round of training rows, from the sentiment training part minus every row drawn
    before: ``ZH_TRAIN_THIRD_RANDOM`` at random, then ``ZH_TRAIN_THIRD_CUED`` among the rest that
    contain a ``RARE_CUES`` word (``random.Random(ZH_TRAIN_THIRD_SEED)``, both sources pooled)."""
    train, _ = sentiment_split()
    excluded = (zh_eval_ids() | {r.id for r in zh_train_draw()}
                | {r.id for r in zh_train_more_draw()})
    pool = _negatives(train, "wm", excluded) + _negatives(train, "os", excluded)
    rng = random.Random(ZH_TRAIN_THIRD_SEED)
    out = rng.sample(pool, ZH_TRAIN_THIRD_RANDOM)
    taken = {r.id for r in out}
    cued = [r for r in pool if r.id not in taken and RARE_CUES.search(r.text)]
    out.extend(rng.sample(cued, ZH_TRAIN_THIRD_CUED))
    return out


def zh_train_rest_draw() -> list[Review]:
    """Every negative row of the sentiment training part not drawn by an earlier round, in id
    order (the fourth round labelled them all)."""
    train, _ = sentiment_split()
    excluded = (zh_eval_ids() | {r.id for r in zh_train_draw()}
                | {r.id for r in zh_train_more_draw()} | {r.id for r in zh_train_third_draw()})
    return _negatives(train, "wm", excluded) + _negatives(train, "os", excluded)


def zh_test2_draw() -> list[Review]:
    """A second Chinese test sample: per source ``ZH_TEST2_PER_SOURCE`` negative rows of the
    sentiment *held-out* part (never a category training row), ``random.Random(ZH_TEST2_SEED)``."""
    _, test = sentiment_split()
    out: list[Review] = []
    for source in ("wm", "os"):
        pool = _negatives(test, source, set())
        out.extend(random.Random(ZH_TEST2_SEED).sample(pool, ZH_TEST2_PER_SOURCE))
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
    paths = [DATA_DIR / "reviews" / n for n in REVIEW_FILES] + [
        ZH_EVAL, EN_EVAL, *_train_files(), ZH_TEST2, ZH_SECOND, MESSAGES_EVAL, MESSAGES_TRAIN,
        NEUTRAL_EVAL, NEUTRAL_TRAIN]
    return {str(p.relative_to(DATA_DIR)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in paths}
