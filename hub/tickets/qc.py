"""Quality control's inbox: a complex case's goods, to be looked at, and what QC found.

When an agent handles a ticket as complex, QC is asked to check the goods it is about (the
complained items, else the order's; with their lots, so a batch problem shows): one check per
ticket. QC records an outcome and a finding; the finding lands on the ticket as an internal
note and in its audit, so the agent handling it sees it. QC's time never pauses the
customer's clocks (HELPDESK.md: internal QC time does not pause them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.errors import Conflict, InvalidInput, NotFound
from hub.models import Ticket
from hub.tickets.models import QcCheck, TicketMessage, TicketTransition

OPEN, DONE = "open", "done"
OUTCOMES = {
    "confirmed": "the goods show the problem",
    "not_confirmed": "the goods do not show it",
    "inconclusive": "cannot tell (goods missing, too far gone)",
}
MAX_FINDING = 2000
MAX_ACTOR = 64


def request_check(session: Session, ticket: Ticket, now: datetime, *, actor: str) -> QcCheck:
    """Ask QC to check the ticket's goods; the ticket's existing check if it has one."""
    found = check_of(session, ticket.id)
    if found is not None:
        return found
    items = [{"id": i["id"], "product": i.get("product"), "lot": i.get("lot")}
             for i in _goods((ticket.context or {}).get("items") or [])]
    check = QcCheck(ticket_id=ticket.id, category=ticket.category, order_id=ticket.order_id,
                    items=items, requested_at=now, requested_by=actor.strip()[:MAX_ACTOR],
                    status=OPEN)
    session.add(check)
    session.flush()
    return check


def _goods(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    complained = [i for i in items if i.get("complained")]
    return complained or items


def open_checks(session: Session, *, limit: int = 200) -> list[QcCheck]:
    """QC's open checks, the oldest request first."""
    return list(session.scalars(select(QcCheck).where(QcCheck.status == OPEN)
                                .order_by(QcCheck.requested_at, QcCheck.id).limit(limit)))


def done_checks(session: Session, *, limit: int = 200) -> list[QcCheck]:
    """QC's recorded checks, the latest first."""
    return list(session.scalars(select(QcCheck).where(QcCheck.status == DONE)
                                .order_by(QcCheck.done_at.desc(), QcCheck.id.desc())
                                .limit(limit)))


def check_of(session: Session, ticket_id: int) -> QcCheck | None:
    """The ticket's QC check, if it has one."""
    return session.scalars(select(QcCheck).where(QcCheck.ticket_id == ticket_id)).first()


def record_finding(session: Session, check_id: int, *, actor: str, outcome: str,
                   finding: str, now: datetime) -> QcCheck:
    """Close a check with what QC found; the finding goes on the ticket as a note."""
    who, text = actor.strip(), finding.strip()
    if not who:
        raise InvalidInput("actor is required: who checked the goods")
    if len(who) > MAX_ACTOR:
        raise InvalidInput(f"actor is {len(who)} characters long, over the limit of "
                           f"{MAX_ACTOR}")
    if outcome not in OUTCOMES:
        raise InvalidInput(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
    if not text:
        raise InvalidInput("finding is required: what QC saw")
    if len(text) > MAX_FINDING:
        raise InvalidInput(f"finding is {len(text)} characters long, over the limit of "
                           f"{MAX_FINDING}")
    check = session.get(QcCheck, check_id, with_for_update=True)
    if check is None:
        raise NotFound(f"QC check {check_id} does not exist")
    if check.status != OPEN:
        raise Conflict(f"QC check {check.id} was already recorded by {check.done_by} "
                       f"({check.outcome})")
    check.status, check.outcome, check.finding = DONE, outcome, text
    check.done_at, check.done_by = now, who
    ticket = _live(session, check.ticket_id)
    summary = f"QC: {outcome.replace('_', ' ')}: {text}"
    session.add(TicketMessage(ticket_id=ticket.id, channel="agent", external_id=None,
                              direction="note", author=who, text=summary,
                              meta={"kind": "note", "qc_check": check.id, "outcome": outcome},
                              received_at=now))
    session.add(TicketTransition(  # an event that keeps the status: from = to
        ticket_id=ticket.id, from_status=ticket.status, to_status=ticket.status, actor=who,
        reason=summary[:500], details={"qc_check": check.id, "outcome": outcome}, at=now))
    session.flush()
    return check


def _live(session: Session, ticket_id: int) -> Ticket:
    """The ticket, or the one it was merged into (where its work goes on)."""
    ticket = session.get(Ticket, ticket_id)
    assert ticket is not None  # a foreign key
    while ticket.merged_into is not None:
        survivor = session.get(Ticket, ticket.merged_into)
        assert survivor is not None
        ticket = survivor
    return ticket
