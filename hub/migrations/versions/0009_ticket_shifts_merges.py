"""tickets: shifts set by hand, manual assignment notes, evidence moved by a merge

Revision ID: 0009
Revises: 0008

``agents.shift_set_by_hand_at``: when a person last started or ended the agent's shift; the
planned windows (hub.tickets.shifts) leave the agent alone until their next change after it.
``ticket_assignments.note``: the reason a person gave for a manual assignment.
``ticket_evidence.merged_from``: the ticket a file was uploaded to, when a merge moved it.
"""
import sqlalchemy as sa
from alembic import op

from hub.models import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("shift_set_by_hand_at", UTCDateTime(), nullable=True))
    with op.batch_alter_table("ticket_assignments") as batch:
        batch.add_column(sa.Column("note", sa.Text(), nullable=True))
    with op.batch_alter_table("ticket_evidence") as batch:
        batch.add_column(sa.Column("merged_from", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_ticket_evidence_merged_from", "tickets", ["merged_from"],
                                 ["id"])


def downgrade() -> None:
    with op.batch_alter_table("ticket_evidence") as batch:
        batch.drop_constraint("fk_ticket_evidence_merged_from", type_="foreignkey")
        batch.drop_column("merged_from")
    with op.batch_alter_table("ticket_assignments") as batch:
        batch.drop_column("note")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("shift_set_by_hand_at")
