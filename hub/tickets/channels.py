"""Each channel's webhook payload (pydantic) and its normalisation into a Complaint."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from hub.phones import Phone
from hub.tickets.intake import MAX_TEXT, Complaint
from protocols.instants import EpochSeconds, Instant

_Id = Annotated[str, Field(min_length=1, max_length=128)]
_Ref = Annotated[str, Field(min_length=1, max_length=32)]
_Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]
_Flag = Annotated[bool, Field(strict=True)]  # true or false, not "yes" or 1


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AppMessage(_Payload):
    """The customer app: a signed-in user writes about an order (and some of its items)."""

    message_id: _Id
    user_id: _Ref
    order_id: _Ref | None = None
    item_ids: Annotated[list[Annotated[str, Field(min_length=1, max_length=16)]],
                        Field(max_length=50)] = []
    text: _Text
    sent_at: Instant | None = None

    def complaint(self) -> Complaint:
        """Return the normalised complaint."""
        return Complaint(channel="app", text=self.text, external_id=self.message_id,
                         user_id=self.user_id, order_id=self.order_id,
                         item_ids=tuple(self.item_ids), author=f"user:{self.user_id}",
                         meta=_meta(sent_at=self.sent_at))


class MiniProgramMessage(_Payload):
    """The WeChat mini-program: an openid, maybe a bound user id or a verified phone."""

    msg_id: _Id
    openid: _Id
    user_id: _Ref | None = None
    phone: Phone | None = None
    phone_verified: _Flag = False
    order_id: _Ref | None = None
    content: _Text
    create_time: Annotated[EpochSeconds, Field(strict=True)] | None = None

    def complaint(self) -> Complaint:
        """Return the normalised complaint (the openid opens the 48 h reply window)."""
        sent = (datetime.fromtimestamp(self.create_time, UTC)
                if self.create_time is not None else None)
        return Complaint(channel="mini_program", text=self.content, external_id=self.msg_id,
                         user_id=self.user_id, phone=self.phone,
                         phone_verified=self.phone_verified, sender=self.openid,
                         order_id=self.order_id, author=f"openid:{self.openid}"[:64],
                         meta=_meta(sent_at=sent, openid=self.openid))


class Turn(_Payload):
    """One turn of a hotline call."""

    speaker: Literal["customer", "agent", "ivr"]
    text: _Text


class HotlineTranscript(_Payload):
    """A hotline call's transcript; the customer's turns are the complaint."""

    call_id: _Id
    caller_phone: Phone
    phone_verified: _Flag = False  # the caller passed the IVR's check
    user_id: _Ref | None = None
    order_id: _Ref | None = None
    agent_id: _Ref | None = None
    started_at: Instant | None = None
    turns: Annotated[list[Turn], Field(min_length=1, max_length=500)]

    def complaint(self) -> Complaint:
        """Return the normalised complaint (an answering agent made contact at the call)."""
        said = "\n".join(t.text for t in self.turns if t.speaker == "customer")
        transcript = [{"speaker": t.speaker, "text": t.text} for t in self.turns]
        return Complaint(channel="hotline", text=said[:MAX_TEXT] or "(silent call)",
                         external_id=self.call_id, user_id=self.user_id,
                         phone=self.caller_phone, phone_verified=self.phone_verified,
                         sender=self.caller_phone, order_id=self.order_id,
                         author=f"phone:{self.caller_phone}", answered_by=self.agent_id,
                         answered_at=self.started_at,
                         meta=_meta(sent_at=self.started_at, agent_id=self.agent_id,
                                    transcript=transcript))


class SocialPost(_Payload):
    """A public post or mention on a social platform (a public channel: more urgent)."""

    post_id: _Id
    platform: Annotated[str, Field(min_length=1, max_length=32)]
    handle: _Id
    user_id: _Ref | None = None  # when the account is linked
    phone: Phone | None = None
    phone_verified: _Flag = False
    order_id: _Ref | None = None
    text: _Text
    url: Annotated[str, Field(max_length=500)] | None = None
    posted_at: Instant | None = None

    def complaint(self) -> Complaint:
        """Return the normalised complaint (the external id is platform-qualified)."""
        return Complaint(channel="social", text=self.text,
                         external_id=f"{self.platform}:{self.post_id}"[:128],
                         user_id=self.user_id, phone=self.phone,
                         phone_verified=self.phone_verified,
                         sender=f"{self.platform}:{self.handle}", order_id=self.order_id,
                         author=f"{self.platform}:{self.handle}"[:64],
                         meta=_meta(sent_at=self.posted_at, url=self.url,
                                    platform=self.platform))


PAYLOADS: dict[str, type[AppMessage | MiniProgramMessage | HotlineTranscript | SocialPost]] = {
    "app": AppMessage, "mini_program": MiniProgramMessage, "hotline": HotlineTranscript,
    "social": SocialPost}


def _meta(*, sent_at: datetime | None = None, **extra: object) -> dict[str, object]:
    found: dict[str, object] = {k: v for k, v in extra.items() if v is not None}
    if sent_at is not None:
        found["sent_at"] = sent_at.isoformat()
    return found
