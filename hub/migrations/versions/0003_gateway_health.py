"""gateway health reports

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

from hub.models import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gateway_health",
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("gateway_id", sa.String(length=32), nullable=False),
        sa.Column("ts", UTCDateTime(), nullable=False),
        sa.Column("clock", sa.String(length=16), nullable=False),
        sa.Column("historical", sa.Boolean(), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("message_id"),
    )
    op.create_index("ix_gateway_health_gateway_id", "gateway_health", ["gateway_id"])


def downgrade() -> None:
    op.drop_index("ix_gateway_health_gateway_id", table_name="gateway_health")
    op.drop_table("gateway_health")
