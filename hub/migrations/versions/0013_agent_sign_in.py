"""agents: a password of their own to sign in to the admin UI (a salted scrypt hash)

Revision ID: 0013
Revises: 0012
"""
import sqlalchemy as sa
from alembic import op

from hub.models import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("password_hash", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("password_set_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("password_set_at")
        batch.drop_column("password_hash")
