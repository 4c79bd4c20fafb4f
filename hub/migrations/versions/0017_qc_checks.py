"""qc_checks: quality control's inbox of complex cases and what they found

Revision ID: 0017
Revises: 0016
"""
import sqlalchemy as sa
from alembic import op

from hub.models import UTCDateTime

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qc_checks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("order_id", sa.String(length=32), nullable=True),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("finding", sa.Text(), nullable=True),
        sa.Column("done_at", UTCDateTime(), nullable=True),
        sa.Column("done_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ticket_id", name="uq_qc_checks_ticket"),
    )
    op.create_index("ix_qc_checks_status", "qc_checks", ["status"])


def downgrade() -> None:
    op.drop_index("ix_qc_checks_status", table_name="qc_checks")
    op.drop_table("qc_checks")
