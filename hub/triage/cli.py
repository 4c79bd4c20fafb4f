"""``coldloop classify``: JSON lines in on stdin, triage JSON lines out on stdout.

Each input line is ``{"id": ..., "text": ...}``; each output line, in input order, is
``{"id", "category", "urgency", "sentiment", "sentiment_score", "keywords"}`` or, for a bad
line (not JSON, not an object, missing/invalid id or text), ``{"id": <id or null>,
"error": "...", "line": N}``. Lines are read and written in batches, so input is never held
in memory whole. Exit code 0 if every line was classified, 1 if any line gave an error.
Blank lines are skipped. A line that is not UTF-8, or whose id holds a lone surrogate (no
text: it cannot be written back out), is an error line like any other.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from typing import IO, Any

import click

from protocols.storable import is_text

BATCH = 256


def _parse(line: str, number: int) -> tuple[Any, str | None, str | None]:
    """(id, text, error) for one input line."""
    try:
        obj = json.loads(line)
    except ValueError as err:
        return None, None, f"not JSON: {err}"
    except RecursionError:
        return None, None, "not JSON: nested too deeply to read"
    if not isinstance(obj, dict):
        return None, None, f"not a JSON object but {type(obj).__name__}"
    ident = obj.get("id")
    if "id" not in obj:
        return None, None, "missing id"
    if not isinstance(ident, str | int) or isinstance(ident, bool):
        return None, None, "id must be a string or an integer"
    if isinstance(ident, str) and not is_text(ident):
        return None, None, "id holds a lone UTF-16 surrogate, which is not text"
    if "text" not in obj:
        return ident, None, "missing text"
    from hub.triage.text import validate

    try:
        return ident, validate(obj["text"]), None
    except ValueError as err:
        return ident, None, str(err)


def _flush(batch: list[tuple[int, Any, str | None, str | None]]) -> Iterator[dict[str, Any]]:
    from hub.triage.classifier import classify

    texts = [text for _, _, text, err in batch if err is None and text is not None]
    results = iter(classify(texts)) if texts else iter(())
    for number, ident, _, err in batch:
        if err is not None:
            yield {"id": ident, "error": err, "line": number}
            continue
        t = next(results)
        yield {"id": ident, "category": t.category, "urgency": t.urgency,
               "sentiment": t.sentiment, "sentiment_score": t.sentiment_score,
               "keywords": t.keywords}


def run(lines: Iterable[str | bytes], out: IO[str], batch_size: int = BATCH) -> int:
    """Classify JSON lines (text, or bytes decoded here as UTF-8) to ``out``; return the
    number of error lines."""
    errors = 0
    batch: list[tuple[int, Any, str | None, str | None]] = []

    def emit() -> None:
        nonlocal errors
        for record in _flush(batch):
            errors += "error" in record
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        out.flush()
        batch.clear()

    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        if isinstance(raw, bytes):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as decode_error:
                batch.append((number, None, None, f"line is not UTF-8: {decode_error}"))
                continue
        else:
            line = raw
        ident, text, err = _parse(line, number)
        batch.append((number, ident, text, err))
        if len(batch) >= batch_size:
            emit()
    emit()
    return errors


@click.command("classify")
def classify() -> None:
    """Triage complaints: JSON lines {"id", "text"} on stdin -> JSON lines on stdout.

    Exit code 1 if any line could not be classified (it gets an error line instead).
    """
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(encoding="utf-8")
    errors = run(sys.stdin.buffer, sys.stdout)  # bytes: each line is decoded on its own
    sys.exit(1 if errors else 0)
