"""``coldloop classify``: JSON lines in, JSON lines out, error lines, exit codes."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

pytest.importorskip("jieba")
pytest.importorskip("sklearn")

from hub.console import main
from hub.triage import cli

FIELDS = {"id", "category", "urgency", "sentiment", "sentiment_score", "keywords"}


def _run(stdin: str) -> tuple[int, list[dict[str, object]]]:
    result = CliRunner().invoke(main, ["classify"], input=stdin)
    lines = [json.loads(x) for x in result.output.splitlines() if x.strip()]
    return result.exit_code, lines


def test_order_kept_and_fields() -> None:
    texts = ["草莓发霉了", "delivery was late", "少送了一份", "冰淇淋化了", "太咸了"]
    stdin = "".join(json.dumps({"id": f"t{k}", "text": t}, ensure_ascii=False) + "\n"
                    for k, t in enumerate(texts))
    code, out = _run(stdin)
    assert code == 0
    assert [o["id"] for o in out] == [f"t{k}" for k in range(len(texts))]
    assert all(set(o) == FIELDS for o in out)
    assert out[0]["category"] == "spoiled"


def test_bad_lines_give_error_lines_and_exit_1() -> None:
    stdin = "\n".join([
        json.dumps({"id": 1, "text": "送餐太慢了"}),
        "{not json",
        json.dumps([1, 2]),
        json.dumps({"text": "no id"}),
        json.dumps({"id": 5}),
        json.dumps({"id": 6, "text": ""}),
        json.dumps({"id": 7, "text": 3}),
        json.dumps({"id": {"x": 1}, "text": "bad id"}),
        json.dumps({"id": 9, "text": "the milk was sour"}),
    ]) + "\n"
    code, out = _run(stdin)
    assert code == 1
    assert len(out) == 9
    assert out[0]["category"] == "late" and out[-1]["id"] == 9 and "category" in out[-1]
    errors = out[1:8]
    assert all("error" in e for e in errors)
    assert [e["line"] for e in errors] == [2, 3, 4, 5, 6, 7, 8]
    assert [e["id"] for e in errors] == [None, None, None, 5, 6, 7, None]
    assert "not JSON" in str(errors[0]["error"])
    assert "empty" in str(errors[4]["error"])


def test_undecodable_and_unwritable_lines_are_error_lines_too() -> None:
    """Bytes that are not UTF-8, a lone surrogate in the id or the text, JSON nested past
    the recursion limit: each gives its error line, and the lines around it are classified
    (they once ended the run with a traceback and no output)."""
    stdin = b"\n".join([
        "\ufeff".encode() + json.dumps({"id": 1, "text": "送餐太慢了"}).encode(),  # a BOM
        b"\xff\xfe not utf-8",
        b'{"id": "\\ud800", "text": "late"}',
        b'{"id": 4, "text": "\\udc00 late"}',
        b"[" * 100_000 + b"]" * 100_000,
        json.dumps({"id": 6, "text": "草莓發霉了"}).encode(),  # Traditional
    ]) + b"\n"
    result = CliRunner().invoke(main, ["classify"], input=stdin)
    out = [json.loads(x) for x in result.output.splitlines()]
    assert result.exit_code == 1
    assert [(o["id"], o.get("category"), o.get("line")) for o in out] == [
        (1, "late", None), (None, None, 2), (None, None, 3), (4, None, 4), (None, None, 5),
        (6, "spoiled", None)]
    assert "line is not UTF-8" in out[1]["error"]
    assert "id holds a lone UTF-16 surrogate" in out[2]["error"]
    assert "text holds a lone UTF-16 surrogate at character 0" in out[3]["error"]
    assert "nested too deeply" in out[4]["error"]


def test_empty_input() -> None:
    assert _run("") == (0, [])
    assert _run("\n\n") == (0, [])


def test_unicode_round_trip() -> None:
    stdin = json.dumps({"id": "ü-草莓", "text": "草莓🍓都烂了！！！"}, ensure_ascii=False) + "\n"
    code, out = _run(stdin)
    assert code == 0
    assert out[0]["id"] == "ü-草莓"
    assert out[0]["category"] == "spoiled"


def test_streams_in_batches() -> None:
    """Output for the first batch is written before later input is read."""
    import io

    seen: list[int] = []
    out = io.StringIO()

    def lines() -> Iterator[str]:
        for k in range(5):
            seen.append(out.getvalue().count("\n"))
            yield json.dumps({"id": k, "text": "送餐太慢了"}) + "\n"

    assert cli.run(lines(), out, batch_size=2) == 0
    assert seen == [0, 0, 2, 2, 4]
    assert out.getvalue().count("\n") == 5
