"""agents: who changed an agent's record, when and what (profiles, passwords, shifts by hand)

Revision ID: 0014
Revises: 0013
"""
import sqlalchemy as sa
from alembic import op

from hub.models import UTCDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agent_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("agent_id", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_agent_changes_agent_id", "agent_changes", ["agent_id"])


def downgrade() -> None:
    op.drop_index("ix_agent_changes_agent_id", table_name="agent_changes")
    op.drop_table("agent_changes")
