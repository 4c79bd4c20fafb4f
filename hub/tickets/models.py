"""The tables of tickets beyond ``tickets`` itself (hub.models.Ticket): messages, evidence,
transitions, agents, assignments, SLA clocks and escalations. Migration 0008 creates them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column

from hub.models import Base

_EMPTY = sql_text("'{}'")


class TicketMessage(Base):
    """One message of a ticket: a customer's (inbound), an agent's (outbound) or a note."""

    __tablename__ = "ticket_messages"
    __table_args__ = (
        # A webhook delivered twice carries the same external id: stored once.
        UniqueConstraint("channel", "external_id", name="uq_ticket_messages_channel_external"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))  # app, mini_program, hotline, social, agent
    external_id: Mapped[str | None] = mapped_column(String(128))
    direction: Mapped[str] = mapped_column(String(8))  # in, out, note
    author: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default=_EMPTY)
    received_at: Mapped[datetime]


class TicketEvidence(Base):
    """A photo or other file about a ticket, stored once by content hash in the data dir."""

    __tablename__ = "ticket_evidence"
    __table_args__ = (UniqueConstraint("ticket_id", "sha256", name="uq_ticket_evidence_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(100))
    filename: Mapped[str | None] = mapped_column(String(200))
    storage_path: Mapped[str] = mapped_column(String(300))  # relative to the hub data dir
    uploaded_by: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime]
    # the ticket it was uploaded to, when a merge moved it here (hub.tickets.merging)
    merged_from: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", name="fk_ticket_evidence_merged_from"))


class TicketTransition(Base):
    """The audit of the workflow: every status change, who made it, when and why."""

    __tablename__ = "ticket_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(20))  # None: the ticket's creation
    to_status: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict,
                                                    server_default=_EMPTY)
    at: Mapped[datetime]


class Agent(Base):
    """A support agent: skills, languages, regions, capacity and presence."""

    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    team: Mapped[str] = mapped_column(String(32), default="support")
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)  # categories; "*": all
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)  # empty: any
    regions: Mapped[list[str]] = mapped_column(JSON, default=list)  # empty: any
    capacity: Mapped[int] = mapped_column(Integer, default=5)  # open tickets at most
    # planned windows [{"days": [1..7], "start": "HH:MM", "end": "HH:MM"}] (hub.tickets.shifts)
    shifts: Mapped[list[Any]] = mapped_column(JSON, default=list)
    on_shift: Mapped[bool] = mapped_column(Boolean, default=False)
    # when a person last started or ended the shift by hand: the plan waits for its next change
    shift_set_by_hand_at: Mapped[datetime | None]
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    supervisor: Mapped[bool] = mapped_column(Boolean, default=False)  # gets escalations
    active: Mapped[bool] = mapped_column(Boolean, default=True)  # False: on leave / gone
    last_assigned_at: Mapped[datetime | None]
    # signing in to the admin UI (hub.web.accounts): a salted scrypt hash; None: cannot sign in
    password_hash: Mapped[str | None] = mapped_column(String(255))
    password_set_at: Mapped[datetime | None]


class AgentChange(Base):
    """Who changed an agent's record, when, and what: a profile saved, a password set or
    removed, a shift started or ended by hand (hub.tickets.agents)."""

    __tablename__ = "agent_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"), index=True)
    actor: Mapped[str] = mapped_column(String(64))  # a user of the pages, or "api"
    at: Mapped[datetime]
    # created, updated, password_set, password_removed, shift_started, shift_ended
    action: Mapped[str] = mapped_column(String(20))
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # {field: [old, new]}


class TicketAssignment(Base):
    """One stint of a ticket with an agent, with why it was chosen (rule and scores)."""

    __tablename__ = "ticket_assignments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"), index=True)
    rule: Mapped[str] = mapped_column(String(32))  # balanced, same-customer, manual
    reason: Mapped[str] = mapped_column(String(32))  # new, handover, escalation, queue, manual
    note: Mapped[str | None] = mapped_column(Text)  # a manual assignment's reason, in words
    scores: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    actor: Mapped[str] = mapped_column(String(64))
    assigned_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(32))  # off_shift, inactive, profile, ...


class SlaClock(Base):
    """One SLA target of a ticket. ``due_at`` is recomputed from stored times on every change.

    ``pauses`` holds the closed pause intervals ``[[start, end], ...]`` (ISO 8601) and
    ``paused_at`` an open one; the business time they cover extends ``due_at``.
    """

    __tablename__ = "sla_clocks"
    __table_args__ = (
        UniqueConstraint("ticket_id", "target", name="uq_sla_clocks_ticket_target"),
        Index("ix_sla_clocks_state_due", "state", "due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    target: Mapped[str] = mapped_column(String(16))  # ACK, FIRST_CONTACT, RESOLUTION, FOLLOW_UP
    policy: Mapped[str] = mapped_column(String(32))
    calendar: Mapped[str] = mapped_column(String(32))
    target_minutes: Mapped[float] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(12))  # PENDING RUNNING PAUSED MET MET_LATE CANCELLED
    started_at: Mapped[datetime | None]
    paused_at: Mapped[datetime | None]
    pauses: Mapped[list[Any]] = mapped_column(JSON, default=list)
    due_at: Mapped[datetime | None]
    stopped_at: Mapped[datetime | None]
    warned_50: Mapped[bool] = mapped_column(Boolean, default=False)
    warned_80: Mapped[bool] = mapped_column(Boolean, default=False)
    breached_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]


class TicketEscalation(Base):
    """An SLA warning, a breach's escalation, or a ticket no agent could take."""

    __tablename__ = "ticket_escalations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    clock_id: Mapped[int | None] = mapped_column(ForeignKey("sla_clocks.id"))
    kind: Mapped[str] = mapped_column(String(24))  # sla_warning, sla_breach, no_agent
    action: Mapped[str] = mapped_column(String(32))  # warned, reassigned, supervisor, queued
    urgency_from: Mapped[str | None] = mapped_column(String(4))
    urgency_to: Mapped[str | None] = mapped_column(String(4))
    notify: Mapped[str | None] = mapped_column(String(32))  # the supervisor told, if any
    detail: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime]


class Survey(Base):
    """The satisfaction survey a customer gets when a ticket is resolved (hub.tickets.surveys).

    Migration 0010 creates it. ``token`` is the link's secret: whoever holds the link may answer,
    once, before ``expires_at``.
    """

    __tablename__ = "ticket_surveys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    token: Mapped[str] = mapped_column(String(43), unique=True)
    channel: Mapped[str] = mapped_column(String(16))  # where the link was sent
    status: Mapped[str] = mapped_column(String(12))  # open, answered, cancelled
    sent_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]
    score: Mapped[int | None] = mapped_column(Integer)
    recommend: Mapped[int | None] = mapped_column(Integer)  # 0-10, optional (migration 0012)
    comment: Mapped[str | None] = mapped_column(Text)
    cancel_reason: Mapped[str | None] = mapped_column(String(64))


class TriageCorrection(Base):
    """A person's check of a ticket's triage: what the classifier said and what is right.

    Migration 0011 creates it. Exported as training rows (``coldloop triage corrections``).
    """

    __tablename__ = "triage_corrections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    text: Mapped[str] = mapped_column(Text)  # the complaint as the classifier read it
    language: Mapped[str | None] = mapped_column(String(8))
    model_version: Mapped[str | None] = mapped_column(String(64))
    confidence: Mapped[float | None] = mapped_column(Float)
    suggested_category: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(16))
    suggested_urgency: Mapped[str] = mapped_column(String(4))
    urgency: Mapped[str] = mapped_column(String(4))
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime]


class QcCheck(Base):
    """A request to quality control to look at a complex case's goods, and what they found.

    Migration 0017 creates it. One per ticket: a complex handling opens it (hub.tickets.qc).
    """

    __tablename__ = "qc_checks"
    __table_args__ = (UniqueConstraint("ticket_id", name="uq_qc_checks_ticket"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    category: Mapped[str] = mapped_column(String(16))  # of the ticket when it was requested
    order_id: Mapped[str | None] = mapped_column(String(32))
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # id, product, lot
    requested_at: Mapped[datetime]
    requested_by: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(8), default="open", index=True)  # open, done
    outcome: Mapped[str | None] = mapped_column(String(16))  # confirmed, not_confirmed, ...
    finding: Mapped[str | None] = mapped_column(Text)
    done_at: Mapped[datetime | None]
    done_by: Mapped[str | None] = mapped_column(String(64))
