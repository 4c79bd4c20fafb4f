"""Reefer-truck temperature logs uploaded by drivers' devices: stored once per upload."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.errors import InvalidInput
from hub.models import StoredMessage
from hub.telemetry import NewBatch, store_batches

MAX_READINGS = 10_000


@dataclass(frozen=True)
class TruckReading:
    """One logged temperature of a truck compartment."""

    compartment: str
    ts: datetime
    temp_c: float | None


def upload_id(truck_id: str, upload: str) -> str:
    """The idempotency key of one upload."""
    return f"truck:{truck_id}:{upload}"


def store_truck_log(session: Session, *, truck_id: str, upload: str,
                    readings: Sequence[TruckReading], now: datetime) -> tuple[int, bool]:
    """Store an upload's readings unless already stored; return (count, was_duplicate)."""
    if not readings:
        raise InvalidInput("a temperature log needs at least one reading")
    if len(readings) > MAX_READINGS:
        raise InvalidInput(f"a temperature log holds at most {MAX_READINGS} readings, "
                           f"got {len(readings)}; split it into several uploads")
    key = upload_id(truck_id, upload)
    if session.scalar(select(StoredMessage.message_id).where(StoredMessage.message_id == key)):
        return len(readings), True
    source = f"truck:{truck_id}"[:32]
    session.add(StoredMessage(message_id=key, gateway_id=source, kind="truck_log",
                              received_at=now))
    session.flush()
    rows = [(f"{truck_id}/{r.compartment}"[:32], r.ts.timestamp(), r.temp_c)
            for r in sorted(readings, key=lambda r: r.ts)]
    document = json.dumps({"truck": truck_id, "upload": upload, "readings": rows}).encode()
    store_batches(session, [NewBatch(batch_id=key, source=source, site="", readings=rows,
                                     document=document, received_at=now)])
    return len(readings), False
