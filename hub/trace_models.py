"""The traceability ledger's tables: EPCIS events as Merkle leaves, their EPCs, signed heads.

Rows are only ever inserted (hub.ledger); ``coldloop trace verify`` re-checks them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.models import Base

# SQLite keeps INTEGER PRIMARY KEY as the rowid (fast, 64-bit); elsewhere a BIGINT.
SeqType = BigInteger().with_variant(Integer(), "sqlite")


class TraceEvent(Base):
    """One EPCIS 2.0 event, leaf ``seq`` of the Merkle log; ``document`` is the leaf data."""

    __tablename__ = "trace_events"
    __table_args__ = (UniqueConstraint("event_id", name="uq_trace_events_event_id"),)

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=False)
    event_id: Mapped[str] = mapped_column(String(200))  # EPCIS eventID, unique
    event_type: Mapped[str] = mapped_column(String(32))  # ObjectEvent, AggregationEvent...
    event_time: Mapped[datetime]
    biz_step: Mapped[str | None] = mapped_column(String(120))
    source: Mapped[str] = mapped_column(String(64))  # "hub", or "import:<name>"
    # Canonical JSON (sorted keys, no spaces, UTF-8 unescaped): leaf hash = SHA-256(0x00 || it).
    document: Mapped[str] = mapped_column(Text)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    recorded_at: Mapped[datetime]


class TraceEventEpc(Base):
    """An EPC, class or other identifier an event mentions: finds an item's events fast."""

    __tablename__ = "trace_event_epcs"

    seq: Mapped[int] = mapped_column(SeqType, ForeignKey("trace_events.seq", ondelete="CASCADE"),
                                     primary_key=True, autoincrement=False)
    epc: Mapped[str] = mapped_column(String(200), primary_key=True, index=True)


class LedgerHead(Base):
    """A signed tree head: the root of the first ``tree_size`` events, signed with Ed25519."""

    __tablename__ = "ledger_heads"

    tree_size: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    signed_at: Mapped[datetime]  # millisecond precision: the signed timestamp
    key_id: Mapped[str] = mapped_column(String(64))  # hex of SHA-256(raw public key)[:16]
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))
