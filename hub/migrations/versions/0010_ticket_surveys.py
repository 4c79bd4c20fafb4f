"""tickets: the customer's satisfaction survey, sent when a ticket is resolved

Revision ID: 0010
Revises: 0009

``ticket_surveys``: one row per survey link sent (hub.tickets.surveys); the token is the
link's secret, answered at most once before it expires.
"""
import sqlalchemy as sa
from alembic import op

from hub.models import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ticket_surveys",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.Integer(), sa.ForeignKey("tickets.id"), nullable=False),
        sa.Column("token", sa.String(length=43), nullable=False, unique=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("answered_at", UTCDateTime(), nullable=True),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("cancel_reason", sa.String(length=64), nullable=True),
    )
    op.create_index("ix_ticket_surveys_ticket_id", "ticket_surveys", ["ticket_id"])


def downgrade() -> None:
    op.drop_index("ix_ticket_surveys_ticket_id", table_name="ticket_surveys")
    op.drop_table("ticket_surveys")
