"""Limits on values the hub takes over HTTP beyond the instants of ``protocols.instants``:
row ids that fit the database, and text a database can store (no NUL, no lone surrogate).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

MAX_ROW_ID = 2**31 - 1  # PostgreSQL's INTEGER, the type of every numeric id
RowId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]


def unstorable(data: object) -> tuple[str, str] | None:
    """(where, problem) of the first string (or key) in parsed JSON ``data`` that no
    database can store: one holding a NUL character (PostgreSQL refuses it in text) or a lone
    UTF-16 surrogate (no UTF-8 encodes it). ``where`` is a path such as "a.b.0"."""
    stack: list[tuple[str, object]] = [("", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            problem = _text_problem(value)
            if problem is not None:
                return path or "(body)", problem
        elif isinstance(value, dict):
            for key, item in value.items():
                where = f"{path}.{key}".lstrip(".")
                problem = _text_problem(str(key))
                if problem is not None:
                    return where, f"the name {problem}"
                stack.append((where, item))
        elif isinstance(value, list):
            stack.extend((f"{path}.{n}".lstrip("."), item) for n, item in enumerate(value))
    return None


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character"
    try:
        text.encode()
    except UnicodeEncodeError:
        return "holds a lone UTF-16 surrogate, which is not text"
    return None
