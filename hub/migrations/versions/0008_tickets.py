"""tickets: multi-channel intake, workflow audit, agents and routing, SLA clocks

Revision ID: 0008
Revises: 0007

``tickets`` gains triage, workflow, routing and SLA columns (hub.models.Ticket); its order and
customer become optional (a social post may name neither). New tables: ``ticket_messages``,
``ticket_evidence``, ``ticket_transitions``, ``agents``, ``ticket_assignments``, ``sla_clocks``,
``ticket_escalations`` (hub.tickets.models, docs/tickets.md). Tickets written before the state
machine had status "open": they become "new".
"""
import sqlalchemy as sa
from alembic import op

from hub.models import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_EMPTY_OBJECT = sa.text("'{}'")


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.Integer(), autoincrement=True, nullable=False)


def _ticket_fk() -> sa.Column[int]:
    return sa.Column("ticket_id", sa.Integer(), sa.ForeignKey("tickets.id"), nullable=False)


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("customer_key", sa.String(length=80), nullable=True))
        batch.add_column(sa.Column("language", sa.String(length=8), nullable=True))
        batch.add_column(sa.Column("urgency", sa.String(length=4), server_default="P3",
                                   nullable=False))
        batch.add_column(sa.Column("sentiment", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("sentiment_score", sa.Float(), nullable=True))
        batch.add_column(sa.Column("keywords", sa.JSON(), server_default=sa.text("'[]'"),
                                   nullable=False))
        batch.add_column(sa.Column("triage_confidence", sa.Float(), nullable=True))
        batch.add_column(sa.Column("triage_model_version", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("team", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("assignee_id", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("assigned_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("priority", sa.String(length=4), server_default="P3",
                                   nullable=False))
        batch.add_column(sa.Column("tier", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("region", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("sla_policy", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("context", sa.JSON(), server_default=_EMPTY_OBJECT,
                                   nullable=False))
        batch.add_column(sa.Column("handling", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("resolution", sa.String(length=16), nullable=True))
        for name in ("first_contact_at", "confirmed_at", "followed_up_at", "closed_at"):
            batch.add_column(sa.Column(name, UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("satisfaction", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("satisfaction_comment", sa.Text(), nullable=True))
        batch.add_column(sa.Column("merged_into", sa.Integer(), nullable=True))
        batch.alter_column("order_id", existing_type=sa.String(length=32), nullable=True)
        batch.alter_column("customer_id", existing_type=sa.String(length=32), nullable=True)
        batch.alter_column("status", existing_type=sa.String(length=16),
                           type_=sa.String(length=20), existing_nullable=False)
        batch.create_index("ix_tickets_assignee_id", ["assignee_id"])
        batch.create_index("ix_tickets_customer_key_order", ["customer_key", "order_id"])
        batch.create_index("ix_tickets_status", ["status"])
        batch.create_foreign_key("fk_tickets_merged_into", "tickets", ["merged_into"], ["id"])
    op.execute("UPDATE tickets SET status = 'new' WHERE status = 'open'")

    op.create_table(
        "agents",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("team", sa.String(length=32), nullable=False),
        sa.Column("skills", sa.JSON(), nullable=False),
        sa.Column("languages", sa.JSON(), nullable=False),
        sa.Column("regions", sa.JSON(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("shifts", sa.JSON(), nullable=False),
        sa.Column("on_shift", sa.Boolean(), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("supervisor", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("last_assigned_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "ticket_messages",
        _id(), _ticket_fk(),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=True),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("meta", sa.JSON(), server_default=_EMPTY_OBJECT, nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "external_id", name="uq_ticket_messages_channel_external"),
    )
    op.create_index("ix_ticket_messages_ticket_id", "ticket_messages", ["ticket_id"])
    op.create_table(
        "ticket_evidence",
        _id(), _ticket_fk(),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=True),
        sa.Column("storage_path", sa.String(length=300), nullable=False),
        sa.Column("uploaded_by", sa.String(length=64), nullable=False),
        sa.Column("uploaded_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ticket_id", "sha256", name="uq_ticket_evidence_hash"),
    )
    op.create_index("ix_ticket_evidence_sha256", "ticket_evidence", ["sha256"])
    op.create_index("ix_ticket_evidence_ticket_id", "ticket_evidence", ["ticket_id"])
    op.create_table(
        "ticket_transitions",
        _id(), _ticket_fk(),
        sa.Column("from_status", sa.String(length=20), nullable=True),
        sa.Column("to_status", sa.String(length=20), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), server_default=_EMPTY_OBJECT, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_ticket_transitions_ticket_id", "ticket_transitions", ["ticket_id"])
    op.create_table(
        "ticket_assignments",
        _id(), _ticket_fk(),
        sa.Column("agent_id", sa.String(length=32), sa.ForeignKey("agents.id"), nullable=False),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("assigned_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("end_reason", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_ticket_assignments_agent_id", "ticket_assignments", ["agent_id"])
    op.create_index("ix_ticket_assignments_ticket_id", "ticket_assignments", ["ticket_id"])
    op.create_table(
        "sla_clocks",
        _id(), _ticket_fk(),
        sa.Column("target", sa.String(length=16), nullable=False),
        sa.Column("policy", sa.String(length=32), nullable=False),
        sa.Column("calendar", sa.String(length=32), nullable=False),
        sa.Column("target_minutes", sa.Float(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("paused_at", UTCDateTime(), nullable=True),
        sa.Column("pauses", sa.JSON(), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=True),
        sa.Column("stopped_at", UTCDateTime(), nullable=True),
        sa.Column("warned_50", sa.Boolean(), nullable=False),
        sa.Column("warned_80", sa.Boolean(), nullable=False),
        sa.Column("breached_at", UTCDateTime(), nullable=True),
        sa.Column("escalated_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ticket_id", "target", name="uq_sla_clocks_ticket_target"),
    )
    op.create_index("ix_sla_clocks_state_due", "sla_clocks", ["state", "due_at"])
    op.create_index("ix_sla_clocks_ticket_id", "sla_clocks", ["ticket_id"])
    op.create_table(
        "ticket_escalations",
        _id(), _ticket_fk(),
        sa.Column("clock_id", sa.Integer(), sa.ForeignKey("sla_clocks.id"), nullable=True),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("urgency_from", sa.String(length=4), nullable=True),
        sa.Column("urgency_to", sa.String(length=4), nullable=True),
        sa.Column("notify", sa.String(length=32), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_ticket_escalations_ticket_id", "ticket_escalations", ["ticket_id"])


def downgrade() -> None:
    for table in ("ticket_escalations", "sla_clocks", "ticket_assignments",
                  "ticket_transitions", "ticket_evidence", "ticket_messages", "agents"):
        op.drop_table(table)  # their indexes go with them
    op.execute("UPDATE tickets SET status = 'open' WHERE status IN "
               "('new', 'confirming', 'handling', 'awaiting_evidence')")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_constraint("fk_tickets_merged_into", type_="foreignkey")
        batch.drop_index("ix_tickets_status")
        batch.drop_index("ix_tickets_customer_key_order")
        batch.drop_index("ix_tickets_assignee_id")
        batch.alter_column("status", existing_type=sa.String(length=20),
                           type_=sa.String(length=16), existing_nullable=False)
        batch.alter_column("customer_id", existing_type=sa.String(length=32), nullable=False)
        batch.alter_column("order_id", existing_type=sa.String(length=32), nullable=False)
        for name in ("merged_into", "satisfaction_comment", "satisfaction", "closed_at",
                     "followed_up_at", "confirmed_at", "first_contact_at", "resolution",
                     "handling", "context", "sla_policy", "region", "tier", "priority",
                     "assigned_at", "assignee_id", "team", "triage_model_version",
                     "triage_confidence", "keywords", "sentiment_score", "sentiment",
                     "urgency", "language", "customer_key"):
            batch.drop_column(name)
