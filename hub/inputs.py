"""Limits on values the hub takes over HTTP beyond the instants of ``protocols.instants``:
row ids that fit the database, and no NUL characters (PostgreSQL cannot store one in text).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

MAX_ROW_ID = 2**31 - 1  # PostgreSQL's INTEGER, the type of every numeric id
RowId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]


def nul_path(data: object) -> str | None:
    """Where in parsed JSON ``data`` a string (or key) holds a NUL character, as "a.b.0",
    or None."""
    stack: list[tuple[str, object]] = [("", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return path or "(body)"
        elif isinstance(value, dict):
            for key, item in value.items():
                if "\x00" in str(key):
                    return f"{path}.{key!r}".lstrip(".")
                stack.append((f"{path}.{key}".lstrip("."), item))
        elif isinstance(value, list):
            stack.extend((f"{path}.{n}".lstrip("."), item) for n, item in enumerate(value))
    return None
