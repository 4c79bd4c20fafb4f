"""The instants the system accepts from outside: 1970-01-01 to 2100-01-01 UTC.

An ISO 8601 string such as "0001-01-01T00:00:00+01:00" parses into a datetime that cannot be
moved to UTC, and an epoch of 1e30 seconds into none at all; both once failed deep in the
hub's store (one such message blocked ingest; a telemetry reading at -1e30 s ran it out of
memory). Every time a message or request carries is checked against this range where it
enters, and refused naming the field. A gateway whose clock never synced reads 1970, which
is inside.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)  # exclusive
LATEST_EPOCH_S = int(LATEST.timestamp())


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


# An aware datetime inside the range: the type of every time a message or request carries.
Instant = Annotated[AwareDatetime, AfterValidator(within_range)]
# The same range as epoch seconds (the mini-program's create_time, telemetry readings).
EpochSeconds = Annotated[int, Field(ge=0, lt=LATEST_EPOCH_S)]
EpochTime = Annotated[float, Field(ge=0, lt=LATEST_EPOCH_S)]
