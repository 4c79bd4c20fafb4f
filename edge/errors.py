"""The gateway's root exception and its families."""


class EdgeError(Exception):
    """Something the gateway cannot do; the message says what and why."""


class OutboxFull(EdgeError):
    """The outbox refuses new events: the disk is at its reserve."""


class ReaderFault(EdgeError):
    """A reader (RFID or probe) failed; a missing tag is not a fault but ``None``."""
