"""Ticket intake: channels normalised into one ticket per complaint, idempotent webhooks."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.errors import InvalidInput, NotFound
from hub.models import Item, Ticket
from hub.tickets import intake, states, triage_review
from hub.tickets.channels import (
    AppMessage,
    HotlineTranscript,
    MiniProgramMessage,
    SocialPost,
    Turn,
)
from hub.tickets.evidence import store_evidence
from hub.tickets.models import TicketEvidence, TicketMessage, TicketTransition
from tests.hub.conftest import T0
from tests.hub.tickets_helpers import CONFIG, PHONE, count, triage


def receive(session: Session, complaint: intake.Complaint, minutes: float = 0,
            **kwargs: object) -> intake.IntakeResult:
    """Receive a complaint ``minutes`` after T0 with the test triage and config."""
    return intake.receive(session, complaint, T0 + timedelta(minutes=minutes),
                          triage=kwargs.pop("triage", triage()), config=CONFIG)  # type: ignore[arg-type]


APP = AppMessage(message_id="app-1", user_id="C-1", order_id="O-1", item_ids=["IT-1"],
                 text="草莓发霉了 the strawberries are mouldy")
HOTLINE = HotlineTranscript(
    call_id="call-9", caller_phone=PHONE, phone_verified=True, order_id="O-1",
    turns=[Turn(speaker="ivr", text="Welcome"),
           Turn(speaker="customer", text="I wrote in the app, the berries are mouldy"),
           Turn(speaker="customer", text="and the spinach too")])


def test_a_complaint_on_two_channels_is_one_ticket_with_both_messages(session: Session) -> None:
    first = receive(session, APP.complaint())
    second = receive(session, HOTLINE.complaint(), minutes=20)
    session.commit()

    assert first.created and not second.created
    assert second.ticket.id == first.ticket.id
    assert count(session, Ticket) == 1
    messages = session.scalars(select(TicketMessage).order_by(TicketMessage.id)).all()
    assert [(m.channel, m.external_id, m.direction) for m in messages] == [
        ("app", "app-1", "in"), ("hotline", "call-9", "in")]
    assert messages[1].text == "I wrote in the app, the berries are mouldy\nand the spinach too"
    assert messages[1].meta["transcript"][0] == {"speaker": "ivr", "text": "Welcome"}
    ticket = first.ticket
    assert ticket.customer_key == "user:C-1"
    assert "via hotline ---\nI wrote in the app" in ticket.text


def test_a_redelivered_webhook_is_stored_once(session: Session) -> None:
    first = receive(session, HOTLINE.complaint())
    again = receive(session, HOTLINE.complaint(), minutes=1)
    session.commit()

    assert again.duplicate and not again.created
    assert (again.ticket.id, again.message.id) == (first.ticket.id, first.message.id)
    assert count(session, TicketMessage) == 1


def test_the_new_ticket_is_triaged_and_has_the_order_items_and_history(
        session: Session) -> None:
    old = receive(session, SocialPost(post_id="p0", platform="weibo", handle="li",
                                      user_id="C-1", order_id="O-1",
                                      text="old complaint").complaint())
    old.ticket.status = states.CLOSED
    result = receive(session, APP.complaint(), minutes=5,
                     triage=triage(category="spoiled", urgency="P2", language="zh"))
    session.commit()

    ticket = result.ticket
    assert ticket.id != old.ticket.id
    assert (ticket.status, ticket.category, ticket.urgency, ticket.language) == (
        "new", "spoiled", "P2", "zh")
    assert (ticket.sentiment, ticket.keywords, ticket.triage_model_version) == (
        "negative", ["mouldy"], "test-1")
    assert (ticket.tier, ticket.region, ticket.sla_policy, ticket.team) == (
        "gold", "sh", "office", "support")
    assert ticket.context["order"]["id"] == "O-1"
    assert [(i["id"], i["complained"]) for i in ticket.context["items"]] == [
        ("IT-1", True), ("IT-2", False)]
    assert ticket.context["history"]["previous_tickets"] == 1
    [created] = session.scalars(select(TicketTransition)
                                .where(TicketTransition.ticket_id == ticket.id)).all()
    assert (created.from_status, created.to_status, created.actor) == (None, "new", "intake:app")


def test_a_public_post_is_one_level_more_urgent(session: Session) -> None:
    post = SocialPost(post_id="p1", platform="weibo", handle="angry", text="never again")
    ticket = receive(session, post.complaint(), triage=triage(urgency="P3")).ticket
    assert (ticket.urgency, ticket.customer_key, ticket.customer_id) == (
        "P2", "social:weibo:angry", None)


def test_an_unverified_phone_is_never_merged_with_a_known_customer(session: Session) -> None:
    first = receive(session, APP.complaint())
    unverified = HOTLINE.model_copy(update={"phone_verified": False, "call_id": "call-10"})
    other = receive(session, unverified.complaint(), minutes=5)

    assert other.created and other.ticket.id != first.ticket.id
    assert other.ticket.customer_key == "hotline:+8613800000001"  # the channel's own id


def test_after_the_merge_window_a_new_ticket_opens(session: Session) -> None:
    first = receive(session, APP.complaint())
    later = AppMessage(message_id="app-2", user_id="C-1", order_id="O-1", text="still bad")
    second = receive(session, later.complaint(), minutes=CONFIG.merge_window_h * 60 + 1)
    assert second.created and second.ticket.id != first.ticket.id


def test_the_mini_program_with_a_bound_user_joins_the_app_ticket(session: Session) -> None:
    first = receive(session, APP.complaint())
    mini = MiniProgramMessage(msg_id="99", openid="o-abc", user_id="C-1", order_id="O-1",
                              content="菠菜也烂了", create_time=1_790_000_000)
    second = receive(session, mini.complaint(), minutes=3)
    assert second.ticket.id == first.ticket.id
    assert second.message.meta["openid"] == "o-abc"


@pytest.mark.parametrize(("complaint", "error", "message"), [
    (intake.Complaint(channel="app", text="x", user_id="C-404"), NotFound, "customer 'C-404'"),
    (intake.Complaint(channel="app", text="x", user_id="C-1", order_id="O-404"), NotFound,
     "order 'O-404'"),
    (intake.Complaint(channel="fax", text="x", user_id="C-1"), InvalidInput, "channel 'fax'"),
    (intake.Complaint(channel="app", text="  ", user_id="C-1"), InvalidInput, "text"),
    (intake.Complaint(channel="app", text="x"), InvalidInput, "names no customer"),
    (intake.Complaint(channel="app", text="x", user_id="C-1", order_id="O-1",
                      item_ids=("IT-404",)), NotFound, "item 'IT-404'"),
])
def test_bad_complaints_are_refused(session: Session, complaint: intake.Complaint,
                                    error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        receive(session, complaint)


def test_evidence_is_stored_once_by_content_hash(session: Session, tmp_path: Path) -> None:
    first = receive(session, APP.complaint()).ticket
    other = receive(session, HOTLINE.model_copy(
        update={"order_id": None, "call_id": "c2"}).complaint()).ticket
    photo = b"\xff\xd8\xff" + b"jpeg bytes" * 100

    record, new = store_evidence(session, first.id, photo, content_type="image/jpeg",
                                 uploaded_by="user:C-1", data_dir=tmp_path, now=T0)
    again, new_again = store_evidence(session, first.id, photo, content_type="image/jpeg",
                                      uploaded_by="user:C-1", data_dir=tmp_path, now=T0)
    elsewhere, _ = store_evidence(session, other.id, photo, content_type="image/jpeg",
                                  uploaded_by="agent", data_dir=tmp_path, now=T0)

    assert new and not new_again and again.id == record.id and elsewhere.id != record.id
    assert record.sha256 == elsewhere.sha256 and len(record.sha256) == 64
    assert record.storage_path == f"evidence/{record.sha256[:2]}/{record.sha256}"
    assert (tmp_path / record.storage_path).read_bytes() == photo
    assert len(list((tmp_path / "evidence").rglob("*"))) == 2  # one directory, one file
    assert count(session, TicketEvidence) == 2
    with pytest.raises(InvalidInput, match="content type"):
        store_evidence(session, first.id, photo, content_type="application/x-sh",
                       uploaded_by="x", data_dir=tmp_path, now=T0)


@pytest.mark.parametrize("written", ["13800000001", "138-0000-0001", "+86 13800000001",
                                     "0086 138 0000 0001"])
def test_a_verified_phone_finds_its_customer_however_it_is_written(
        session: Session, written: str) -> None:
    first = receive(session, APP.complaint())
    call = HotlineTranscript.model_validate(HOTLINE.model_dump() | {"caller_phone": written})
    second = receive(session, call.complaint(), minutes=20)

    assert second.ticket.id == first.ticket.id
    assert second.ticket.customer_key == "user:C-1"


def test_two_channels_with_one_phone_written_two_ways_are_one_ticket(session: Session) -> None:
    stranger = "+86 139 1111 2222"  # no customer has this phone
    mini = MiniProgramMessage(msg_id="m-1", openid="o-x", phone="13911112222",
                              phone_verified=True, order_id="O-1", content="菠菜烂了")
    call = HotlineTranscript.model_validate(HOTLINE.model_dump() | {"caller_phone": stranger})
    first = receive(session, mini.complaint())
    second = receive(session, call.complaint(), minutes=10)

    assert second.ticket.id == first.ticket.id
    assert first.ticket.customer_key == "phone:+8613911112222"  # E.164, as SMS gateways want


def test_a_message_joining_within_a_day_raises_the_ticket_once(session: Session) -> None:
    first = receive(session, APP.complaint(), triage=triage(urgency="P4")).ticket
    assert (first.urgency, first.context["urgency"]) == ("P4", {
        "triage": "P4", "raised": [], "situation": False})

    receive(session, HOTLINE.complaint(), minutes=20, triage=triage(urgency="P4"))
    assert (first.urgency, first.priority) == ("P3", "P3")  # the customer chased
    assert first.context["urgency"]["raised"] == ["repeat contact (last 20 min before)"]
    assert first.context["order"]["id"] == "O-1"  # the rest of the context is kept

    again = AppMessage(message_id="app-3", user_id="C-1", order_id="O-1", text="well?")
    receive(session, again.complaint(), minutes=40, triage=triage(urgency="P4"))
    assert first.urgency == "P3"  # once


def test_a_second_complaint_within_a_day_or_a_valuable_order_is_more_urgent(
        session: Session) -> None:
    receive(session, APP.complaint(), triage=triage(urgency="P4"))
    other = AppMessage(message_id="app-9", user_id="C-1", text="and the app logged me out")
    second = receive(session, other.complaint(), minutes=60 * 5,
                     triage=triage(urgency="P4")).ticket
    assert second.urgency == "P3"
    assert second.context["urgency"]["raised"] == ["repeat contact (last 5.0 h before)"]

    item = session.get(Item, "IT-1")
    assert item is not None
    item.price_cents = 52_000  # a case of wagyu, say
    later = APP.model_copy(update={"message_id": "app-10"})
    ticket = receive(session, later.complaint(), minutes=60 * 24 * 4,
                     triage=triage(urgency="P4")).ticket
    assert ticket.id != second.id
    assert (ticket.urgency, ticket.context["urgency"]["raised"]) == ("P3", [
        "order worth 520.00"])


def test_an_urgency_a_person_set_is_not_raised_by_a_chaser(session: Session) -> None:
    ticket = receive(session, APP.complaint(), triage=triage(urgency="P4")).ticket
    triage_review.check_triage(session, ticket.id, actor="ana", now=T0, urgency="P3")
    receive(session, HOTLINE.complaint(), minutes=20, triage=triage(urgency="P4"))
    assert ticket.urgency == "P3" and ticket.context["urgency"]["set_by"] == "ana"
