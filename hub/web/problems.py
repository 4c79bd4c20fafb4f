"""Validation errors in words: each invalid field of a request and what was wrong with it."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


def describe(err: ValidationError, what: str) -> dict[str, str]:
    """Each invalid field of ``err`` (dotted path) with its problem in words; ``what`` names
    a field in the messages ("field", "form field")."""
    problems: dict[str, str] = {}
    for issue in err.errors(include_url=False):
        name = ".".join(str(part) for part in issue["loc"]) or "(body)"
        kind = issue["type"]
        if kind == "missing":
            problem = f"required {what} is missing"
        elif kind == "extra_forbidden":
            problem = f"unknown {what}"
        else:
            got = issue.get("input")
            shown = json_type(got) if isinstance(got, dict | list) else repr(got)
            if len(shown) > 40:
                shown = shown[:37] + "..."
            problem = f"{issue['msg'][0].lower()}{issue['msg'][1:]} (got {shown})"
        problems.setdefault(name, problem)
    return problems


def json_type(value: Any) -> str:
    """A JSON value's type in words ("an object", "a string", ...)."""
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
             int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)
