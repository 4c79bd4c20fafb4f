"""EPCIS 2.0 events and database helpers shared by the ledger tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from hub import ledger
from hub.ledger import Appended

T0 = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
# RFC 8032 §7.1 test 1 (COLDCHAIN.md): a fixed key, so signatures are reproducible.
SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")


def signing_key() -> Ed25519PrivateKey:
    """The RFC 8032 test key."""
    return Ed25519PrivateKey.from_private_bytes(SECRET)


def event(n: int, temp: float = 3.5, **changes: Any) -> dict[str, Any]:
    """An ObjectEvent of about 600 bytes: two strawberry punnets shipped, with a temperature."""
    document: dict[str, Any] = {
        "eventID": f"urn:uuid:6f7e1d2c-0000-4000-8000-{n:012d}",
        "type": "ObjectEvent",
        "action": "OBSERVE",
        "bizStep": "shipping",
        "disposition": "in_transit",
        "epcList": [f"urn:epc:id:sgtin:0690123.456789.{2 * n}",
                    f"urn:epc:id:sgtin:0690123.456789.{2 * n + 1}"],
        "eventTime": (T0 + timedelta(seconds=n)).isoformat(timespec="milliseconds"),
        "eventTimeZoneOffset": "+08:00",
        "readPoint": {"id": "urn:epc:id:sgln:0690123.00001.dock-3"},
        "bizLocation": {"id": "urn:epc:id:sgln:0690123.00001.0"},
        "sensorElementList": [{
            "sensorMetadata": {"time": T0.isoformat(), "deviceID": "urn:epc:id:giai:0690123.7"},
            "sensorReport": [{"type": "Temperature", "value": temp, "uom": "CEL"}]}],
        "quantityList": [{"epcClass": "urn:epc:class:lgtin:0690123.456789.L2611",
                          "quantity": 2, "uom": "H87"}],
        "note": "Fraises — 500 g",  # non-ASCII: hashed as UTF-8
    }
    document.update(changes)
    return document


def append(factory: sessionmaker[Session], events: Sequence[dict[str, Any]],
           key: Ed25519PrivateKey | None = None, source: str = "hub") -> list[Appended]:
    """Append in one transaction, then sign a head if a key is given."""
    with factory.begin() as session:
        entries = ledger.append_events(session, events, source=source, now=T0)
        if key is not None:
            ledger.sign_head(session, key, T0 + timedelta(minutes=1))
    return entries


def fill(factory: sessionmaker[Session], batches: int, size: int,
         key: Ed25519PrivateKey) -> None:
    """Append ``batches`` batches of ``size`` events, signing a head after each."""
    for b in range(batches):
        append(factory, [event(b * size + i) for i in range(size)], key)


def engine_of(factory: sessionmaker[Session]) -> Engine:
    """The engine behind a session factory."""
    engine: Engine = factory.kw["bind"]
    return engine


def sql(factory: sessionmaker[Session], statement: str, **params: Any) -> None:
    """Run raw SQL, as someone with database access would (the tampering tests)."""
    with engine_of(factory).begin() as conn:
        conn.execute(text(statement), params)


def row(factory: sessionmaker[Session], seq: int) -> dict[str, Any]:
    """A trace_events row by seq, as raw values."""
    with engine_of(factory).connect() as conn:
        found = conn.execute(text("SELECT * FROM trace_events WHERE seq = :seq"),
                             {"seq": seq}).mappings().one()
        return dict(found)
