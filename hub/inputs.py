"""Limits on values the hub takes over HTTP beyond ``protocols.instants`` and
``protocols.storable``: row ids that fit the database."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

MAX_ROW_ID = 2**31 - 1  # PostgreSQL's INTEGER, the type of every numeric id
RowId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]
