"""The one root exception of the hub, and its families."""

from __future__ import annotations


class HubError(Exception):
    """A request the hub cannot carry out; the message says what was wrong and how to fix it."""


class NotFound(HubError):
    """Something named in the request does not exist (an order, an item, a pickup code)."""


class Conflict(HubError):
    """The request contradicts what the hub already recorded."""


class InvalidInput(HubError, ValueError):
    """A value that is malformed or outside what the hub accepts."""
