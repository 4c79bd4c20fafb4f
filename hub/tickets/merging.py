"""Merging a ticket into another: its messages and evidence move to the surviving ticket.

Moved rows keep their own timestamps and note where they came from (a message's
``meta["merged_from"]``, a file's ``merged_from``). A file the surviving ticket already has
(same content hash) stays with the merged ticket. The surviving ticket's text gets the merged
ticket's text appended, its urgency the more urgent of the two and its keywords both; a
customer contacted on the merged ticket counts as contacted on the surviving one.
hub.tickets.workflow calls :func:`move_into` and audits both tickets.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import Ticket
from hub.tickets import sla, states
from hub.tickets.models import TicketEvidence, TicketMessage
from hub.tickets.policy import DEFAULT_CONFIG, TicketConfig

TEXT_SEPARATOR = "\n\n--- merged from ticket {ticket} (opened {when} via {channel}) ---\n"


def move_into(session: Session, merged: Ticket, survivor: Ticket, now: datetime,
              config: TicketConfig = DEFAULT_CONFIG) -> dict[str, Any]:
    """Move the merged ticket's messages and evidence to the survivor; return what moved."""
    messages = session.scalars(select(TicketMessage).where(TicketMessage.ticket_id == merged.id)
                               .order_by(TicketMessage.id)).all()
    for message in messages:
        message.ticket_id = survivor.id
        message.meta = {**(message.meta or {}), "merged_from": merged.id}
    held = set(session.scalars(select(TicketEvidence.sha256)
                               .where(TicketEvidence.ticket_id == survivor.id)))
    moved, kept = [], []
    for record in session.scalars(select(TicketEvidence).where(
            TicketEvidence.ticket_id == merged.id).order_by(TicketEvidence.id)).all():
        if record.sha256 in held:
            kept.append(record.id)  # the survivor has the same file already
            continue
        record.ticket_id = survivor.id
        record.merged_from = merged.id
        held.add(record.sha256)
        moved.append(record.id)
    survivor.text += TEXT_SEPARATOR.format(
        ticket=merged.id, when=merged.created_at.isoformat(timespec="seconds"),
        channel=merged.channel) + merged.text
    survivor.urgency = states.more_urgent(survivor.urgency, merged.urgency)
    survivor.priority = states.more_urgent(survivor.priority, survivor.urgency)
    survivor.keywords = sorted({*(survivor.keywords or []), *(merged.keywords or [])})
    found: dict[str, Any] = {"messages_moved": [m.id for m in messages],
                             "evidence_moved": moved, "evidence_kept": kept}
    if survivor.first_contact_at is None and merged.first_contact_at is not None:
        when = min(now, max(merged.first_contact_at, survivor.created_at))
        survivor.first_contact_at = when
        sla.on_event(session, survivor, sla.CONTACTED, when, config)
        found["first_contact_at"] = when.isoformat()
    session.flush()
    return found
