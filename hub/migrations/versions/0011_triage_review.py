"""tickets: the triage review queue and the corrections people make

Revision ID: 0011
Revises: 0010

``tickets.triage_state``: auto, review (the classifier's confidence was below the review
threshold), confirmed or corrected (hub.tickets.triage_review). ``triage_corrections``: each
check, with what the classifier suggested; exported as training rows.
"""
import sqlalchemy as sa
from alembic import op

from hub.models import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("triage_state", sa.String(length=12), nullable=False,
                                   server_default="auto"))
    op.create_table(
        "triage_corrections",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.Integer(), sa.ForeignKey("tickets.id"), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("suggested_category", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("suggested_urgency", sa.String(length=4), nullable=False),
        sa.Column("urgency", sa.String(length=4), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_triage_corrections_ticket_id", "triage_corrections", ["ticket_id"])


def downgrade() -> None:
    op.drop_index("ix_triage_corrections_ticket_id", table_name="triage_corrections")
    op.drop_table("triage_corrections")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("triage_state")
