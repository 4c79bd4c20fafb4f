"""indexes on (gateway_id, ts) of scans, faults and gateway health

Revision ID: 0007
Revises: 0006

The fleet's alarm evaluation reads each gateway's recent scans, faults and health reports every
round; without these it reads the tables whole.
"""
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_INDEXES = [("ix_scans_gateway_ts", "scans"), ("ix_faults_gateway_ts", "faults"),
            ("ix_gateway_health_gateway_ts", "gateway_health")]


def upgrade() -> None:
    for name, table in _INDEXES:
        op.create_index(name, table, ["gateway_id", "ts"])


def downgrade() -> None:
    for name, table in _INDEXES:
        op.drop_index(name, table_name=table)
