"""Evidence uploads: files stored once by SHA-256 under the hub data dir, listed per ticket.

A new file from the customer (``uploaded_by`` their customer key or "customer") on a ticket
awaiting evidence moves it back to handling (audited, the uploader as actor), which resumes
the paused RESOLUTION clock.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.errors import InvalidInput
from hub.models import Ticket
from hub.tickets import states, workflow
from hub.tickets.lookup import live_ticket
from hub.tickets.models import TicketEvidence
from hub.tickets.policy import DEFAULT_CONFIG, TicketConfig

MAX_EVIDENCE_BYTES = 10 * 1024 * 1024
CONTENT_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/heic",
                           "video/mp4", "application/pdf", "text/plain"})
EVIDENCE_DIR = "evidence"


def storage_path(sha256: str) -> str:
    """Return where a file with this hash lives, relative to the data dir."""
    return f"{EVIDENCE_DIR}/{sha256[:2]}/{sha256}"


def store_evidence(session: Session, ticket_id: int, data: bytes, *, content_type: str,
                   uploaded_by: str, data_dir: Path, now: datetime,
                   filename: str | None = None,
                   config: TicketConfig = DEFAULT_CONFIG) -> tuple[TicketEvidence, bool]:
    """Store a file for a ticket; return its record and whether it is new for the ticket.

    The same bytes are written once however many tickets they belong to; uploading them to
    the same ticket again returns the first record (and moves nothing).
    """
    ticket = live_ticket(session, ticket_id)
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind not in CONTENT_TYPES:
        raise InvalidInput(f"content type {content_type!r} is not one of "
                           f"{', '.join(sorted(CONTENT_TYPES))}")
    if not data:
        raise InvalidInput("the evidence file is empty")
    if len(data) > MAX_EVIDENCE_BYTES:
        raise InvalidInput(f"the evidence file is {len(data)} bytes, over the limit of "
                           f"{MAX_EVIDENCE_BYTES}")
    if not uploaded_by.strip():
        raise InvalidInput("uploaded_by is required")
    digest = hashlib.sha256(data).hexdigest()
    existing = session.scalars(select(TicketEvidence).where(
        TicketEvidence.ticket_id == ticket.id, TicketEvidence.sha256 == digest)).first()
    if existing is not None:
        return existing, False
    relative = storage_path(digest)
    _write_once(Path(data_dir) / relative, data)
    record = TicketEvidence(ticket_id=ticket.id, sha256=digest, size=len(data),
                            content_type=kind, filename=(filename or None) and filename[:200],
                            storage_path=relative, uploaded_by=uploaded_by.strip()[:64],
                            uploaded_at=now)
    session.add(record)
    session.flush()
    if ticket.status == states.AWAITING_EVIDENCE and from_customer(ticket, uploaded_by):
        workflow.transition(session, ticket.id, states.HANDLING,
                            workflow.Change(actor=uploaded_by.strip()[:64],
                                            reason="evidence received"),
                            now, config=config,
                            details={"evidence_id": record.id, "sha256": digest})
    return record, True


def from_customer(ticket: Ticket, uploaded_by: str) -> bool:
    """Return whether the uploader is the ticket's customer (their key, or "customer")."""
    who = uploaded_by.strip()
    return who == "customer" or (ticket.customer_key is not None and who == ticket.customer_key)


def _write_once(path: Path, data: bytes) -> None:
    if path.exists():
        return  # content-addressed: the same name holds the same bytes
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
