"""fleet alarms, and the alarms gateways report in their state

Revision ID: 0005
Revises: 0004

``fleet_alarms`` holds the alarms hub.alarms raises and clears; a partial unique index keeps
one open alarm per (kind, subject). ``gateways.alarms`` keeps GatewayState.alarms.
"""
import sqlalchemy as sa
from alembic import op

from hub.models import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_OPEN = sa.text("cleared_at IS NULL")


def upgrade() -> None:
    # Batch mode: SQLite cannot alter a table in place beyond the simplest ADD COLUMN.
    with op.batch_alter_table("gateways") as batch:
        batch.add_column(sa.Column("alarms", sa.JSON(), nullable=False,
                                   server_default=sa.text("'[]'")))
    op.create_table(
        "fleet_alarms",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=80), nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("gateway_id", sa.String(length=32), nullable=False),
        sa.Column("site", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("raised_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("cleared_at", UTCDateTime(), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=64), nullable=True),
        sa.Column("acknowledged_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ux_fleet_alarms_open", "fleet_alarms", ["kind", "subject"], unique=True,
                    sqlite_where=_OPEN, postgresql_where=_OPEN)
    op.create_index("ix_fleet_alarms_raised_at", "fleet_alarms", ["raised_at"])
    op.create_index("ix_fleet_alarms_gateway_id", "fleet_alarms", ["gateway_id"])


def downgrade() -> None:
    op.drop_index("ix_fleet_alarms_gateway_id", table_name="fleet_alarms")
    op.drop_index("ix_fleet_alarms_raised_at", table_name="fleet_alarms")
    op.drop_index("ux_fleet_alarms_open", table_name="fleet_alarms")
    op.drop_table("fleet_alarms")
    with op.batch_alter_table("gateways") as batch:
        batch.drop_column("alarms")
