"""tickets: the survey's optional "would you recommend us" answer (0-10), for the NPS

Revision ID: 0012
Revises: 0011
"""
import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ticket_surveys") as batch:
        batch.add_column(sa.Column("recommend", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ticket_surveys") as batch:
        batch.drop_column("recommend")
