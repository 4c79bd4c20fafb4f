"""the traceability ledger: EPCIS events as Merkle log leaves, their EPCs, signed tree heads

Revision ID: 0006
Revises: 0005

``trace_events`` rows are the log's leaves (seq = leaf index from 0; document = the leaf data);
``trace_event_epcs`` lists the identifiers each event mentions; ``ledger_heads`` keeps the
Ed25519-signed tree heads (hub.ledger, docs/ledger.md).
"""
import sqlalchemy as sa
from alembic import op

from hub.models import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _seq() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite: the rowid


def upgrade() -> None:
    op.create_table(
        "trace_events",
        sa.Column("seq", _seq(), autoincrement=False, nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("event_type", sa.String(length=32), nullable=False),
        sa.Column("event_time", UTCDateTime(), nullable=False),
        sa.Column("biz_step", sa.String(length=120), nullable=True),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("event_id", name="uq_trace_events_event_id"),
    )
    op.create_table(
        "trace_event_epcs",
        sa.Column("seq", _seq(), autoincrement=False, nullable=False),
        sa.Column("epc", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["seq"], ["trace_events.seq"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("seq", "epc"),
    )
    op.create_index("ix_trace_event_epcs_epc", "trace_event_epcs", ["epc"])
    op.create_table(
        "ledger_heads",
        sa.Column("tree_size", _seq(), autoincrement=False, nullable=False),
        sa.Column("root_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("signed_at", UTCDateTime(), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.LargeBinary(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tree_size"),
    )


def downgrade() -> None:
    op.drop_table("ledger_heads")
    op.drop_index("ix_trace_event_epcs_epc", table_name="trace_event_epcs")
    op.drop_table("trace_event_epcs")
    op.drop_table("trace_events")
