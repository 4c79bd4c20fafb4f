"""Limits on values the hub takes from outside: instants and row ids.

An ISO 8601 string such as "0001-01-01T00:00:00+01:00" parses into a datetime that cannot
be moved to UTC, and an epoch of 10**30 seconds into none at all; an id of 2**63 does not fit
a database integer. Each is refused where it enters, naming the field, instead of failing
deep in a query.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)  # exclusive
LATEST_EPOCH_S = int(LATEST.timestamp())
MAX_ROW_ID = 2**31 - 1  # PostgreSQL's INTEGER, the type of every numeric id


def within_range(value: datetime) -> datetime:
    """``value`` if it lies in [1970-01-01, 2100-01-01) UTC; else ``ValueError`` saying so."""
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise ValueError(f"{value.isoformat()} is outside the accepted range "
                         f"{EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d} (UTC)")
    return value


# An aware datetime the hub can store and compare: the type of every time it is sent.
Instant = Annotated[AwareDatetime, AfterValidator(within_range)]
EpochSeconds = Annotated[int, Field(ge=0, lt=LATEST_EPOCH_S)]
RowId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]


def nul_path(data: object) -> str | None:
    """Where in parsed JSON ``data`` a string (or key) holds a NUL character, as "a.b.0",
    or None. PostgreSQL cannot store one in text, so such input is refused on arrival."""
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
