"""Values no store of the system can keep, found in parsed JSON where it enters (MQTT
payloads, HTTP bodies): a NUL character (PostgreSQL refuses it in text), a lone UTF-16
surrogate (no UTF-8 encodes it; JSON can spell one as "\\ud800"), NaN or an infinite number
(not JSON; PostgreSQL's json refuses them, and Python's parser reads "NaN" and 1e400).
"""

from __future__ import annotations

import math


def is_text(value: str) -> bool:
    """Whether UTF-8 can encode ``value`` (it holds no lone surrogate)."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, or None."""
    if "\x00" in value:
        return "contains a NUL character"
    if not is_text(value):
        return "holds a lone UTF-16 surrogate, which is not text"
    return None


def unstorable(data: object, root: str) -> tuple[str, str] | None:
    """(where, problem) of the first value of parsed JSON ``data`` that cannot be stored, or
    None. ``where`` is a dotted path ("readings.0.1"), or ``root`` for ``data`` itself."""
    stack: list[tuple[str, object]] = [("", data)]
    while stack:
        path, value = stack.pop()
        problem = None
        if isinstance(value, float) and not math.isfinite(value):
            problem = f"{value} is not a JSON number (NaN or infinite)"
        elif isinstance(value, str):
            problem = text_problem(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                where = f"{path}.{key}" if path else str(key)
                named = text_problem(str(key))
                if named is not None:
                    return where, f"the name {named}"
                stack.append((where, item))
        elif isinstance(value, list):
            stack.extend((f"{path}.{n}" if path else str(n), item)
                         for n, item in enumerate(value))
        if problem is not None:
            return path or root, problem
    return None
