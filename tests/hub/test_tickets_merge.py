"""Merging: the merged ticket's messages and evidence move to the surviving ticket, keeping
their times and where they came from, audited on both tickets."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hub.errors import Conflict
from hub.models import Ticket
from hub.tickets import contact, intake, sla, states
from hub.tickets.evidence import store_evidence
from hub.tickets.models import TicketEvidence, TicketMessage, TicketTransition
from hub.tickets.workflow import Change, transition
from hub.web import tickets_json
from tests.hub.conftest import T0
from tests.hub.tickets_helpers import CONFIG, add_agent, social, triage

PHOTO, SHARED = b"\x89PNG sour milk" * 20, b"\x89PNG the same box" * 20


@pytest.fixture
def session(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session over the seeded database with one agent."""
    with factory() as session:
        add_agent(session, "ana")
        yield session


def later(minutes: float) -> datetime:
    """T0 plus ``minutes``."""
    return T0 + timedelta(minutes=minutes)


def upload(session: Session, ticket: Ticket, data: bytes, minutes: float, data_dir: Path
           ) -> TicketEvidence:
    """The customer uploads a photo."""
    return store_evidence(session, ticket.id, data, content_type="image/png",
                          uploaded_by="weibo:li", data_dir=data_dir, now=later(minutes),
                          config=CONFIG)[0]


def audit(session: Session, ticket: Ticket) -> TicketTransition:
    """The ticket's latest audit row."""
    rows = session.scalars(select(TicketTransition).where(
        TicketTransition.ticket_id == ticket.id).order_by(TicketTransition.id)).all()
    return rows[-1]


def test_merging_moves_messages_and_evidence_to_the_surviving_ticket(
        session: Session, tmp_path: Path) -> None:
    survivor = intake.receive(session, social("li", "the berries are mouldy"), T0,
                              triage=triage(urgency="P3"), config=CONFIG).ticket
    about_order = intake.Complaint(channel="social", text="and the milk was sour",
                                   sender="weibo:li", external_id="weibo:2", author="weibo:li",
                                   order_id="O-1")  # another order: its own ticket
    merged = intake.receive(session, about_order, later(10), triage=triage(urgency="P1"),
                            config=CONFIG).ticket
    assert merged.id != survivor.id
    contact.record_contact(session, merged.id, agent="ana", text="Calling about the milk",
                           kind="call", now=later(20), config=CONFIG)
    shared_here = upload(session, survivor, SHARED, 5, tmp_path)
    photo = upload(session, merged, PHOTO, 25, tmp_path)
    shared_there = upload(session, merged, SHARED, 26, tmp_path)

    transition(session, merged.id, states.MERGED,
               Change(actor="sue", reason="same customer, same delivery", merged_into=survivor.id),
               later(30), config=CONFIG)
    session.commit()

    messages = session.scalars(select(TicketMessage).order_by(TicketMessage.id)).all()
    assert [(m.ticket_id, m.direction, m.received_at, m.meta.get("merged_from"))
            for m in messages] == [(survivor.id, "in", T0, None),
                                   (survivor.id, "in", later(10), merged.id),
                                   (survivor.id, "out", later(20), merged.id)]
    assert (photo.ticket_id, photo.merged_from, photo.uploaded_at) == (
        survivor.id, merged.id, later(25))
    assert (shared_here.ticket_id, shared_there.ticket_id) == (survivor.id, merged.id)  # kept
    assert survivor.text == ("the berries are mouldy\n\n--- merged from ticket "
                             f"{merged.id} (opened {later(10).isoformat()} via social) ---\n"
                             "and the milk was sour")
    assert survivor.urgency == "P1"  # the more urgent of the two
    assert survivor.first_contact_at == later(20)  # the call on the merged ticket counts
    assert sla.clocks_of(session, survivor.id)[states.FIRST_CONTACT].state == "MET"

    moved = {"messages_moved": [messages[1].id, messages[2].id],
             "evidence_moved": [photo.id], "evidence_kept": [shared_there.id],
             "first_contact_at": later(20).isoformat()}
    gone, received = audit(session, merged), audit(session, survivor)
    assert (gone.from_status, gone.to_status, gone.actor) == ("new", "merged", "sue")
    assert gone.details == {"merged_into": survivor.id, **moved}
    assert (received.from_status, received.to_status, received.actor, received.at) == (
        "new", "new", "sue", later(30))
    assert received.reason == f"ticket {merged.id} merged in: same customer, same delivery"
    assert received.details == {"merged_from": merged.id, **moved}

    shown = tickets_json.ticket_detail(session, survivor)
    assert [m["meta"].get("merged_from") for m in shown["messages"]] == [None, merged.id,
                                                                         merged.id]
    assert [e["merged_from"] for e in shown["evidence"]] == [None, merged.id]
    with pytest.raises(Conflict, match="merged into ticket"):
        contact.record_contact(session, merged.id, agent="ana", text="hi", kind="note",
                               now=later(40), config=CONFIG)
