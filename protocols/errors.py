"""The one root exception of the edge/hub contract, and its families."""

from __future__ import annotations


class ProtocolError(ValueError):
    """Input that does not follow the coldloop contract; the message says what was wrong."""


class TopicError(ProtocolError):
    """A topic outside the coldloop tree, or malformed inside it."""


class MessageError(ProtocolError):
    """A payload that is not a valid message of its type."""


class UnsupportedVersion(MessageError):
    """A message whose schema major version this side does not speak."""


class FrameError(ProtocolError):
    """A probe-board serial frame that is corrupt, truncated or malformed."""


class TagError(ProtocolError):
    """RFID tag blocks that do not hold a valid coldloop tag record."""


class PickupCodeError(ProtocolError):
    """A pickup code that is malformed or fails its check character."""
