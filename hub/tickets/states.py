"""The names of ticket statuses, clock targets and clock states (pure constants)."""

from __future__ import annotations

from typing import Final

NEW: Final = "new"
CONFIRMING: Final = "confirming"
HANDLING: Final = "handling"
AWAITING_EVIDENCE: Final = "awaiting_evidence"  # the customer's clock is paused
RESOLVED: Final = "resolved"
FOLLOWED_UP: Final = "followed_up"
CLOSED: Final = "closed"
MERGED: Final = "merged"

# A ticket in one of these takes new messages and counts towards an agent's load.
OPEN_STATUSES: Final = frozenset({NEW, CONFIRMING, HANDLING, AWAITING_EVIDENCE})
# The rest: a new complaint about the order opens a new ticket. hub.returns and hub.queries
# read this set (as CLOSED_TICKET_STATUSES). "open" is the status of tickets written before the
# state machine (migration 0008 renames it to "new"); it stays open.
CLOSED_STATUSES: Final = frozenset({RESOLVED, FOLLOWED_UP, CLOSED, MERGED})
ALL_STATUSES: Final = OPEN_STATUSES | CLOSED_STATUSES
LEGACY_OPEN: Final = "open"
# What "open" means as a filter (the pool's default, the API's status=open) and to intake.
STILL_OPEN: Final = OPEN_STATUSES | {LEGACY_OPEN}

# SLA clock targets
ACK: Final = "ACK"  # an agent accepts the ticket (new -> confirming) after it was assigned
FIRST_CONTACT: Final = "FIRST_CONTACT"  # first customer-visible human message or logged call
RESOLUTION: Final = "RESOLUTION"  # resolved; paused while awaiting the customer's evidence
FOLLOW_UP: Final = "FOLLOW_UP"  # satisfaction survey after resolution
TARGETS: Final = (ACK, FIRST_CONTACT, RESOLUTION, FOLLOW_UP)

# SLA clock states
PENDING: Final = "PENDING"
RUNNING: Final = "RUNNING"
PAUSED: Final = "PAUSED"
MET: Final = "MET"
MET_LATE: Final = "MET_LATE"
CANCELLED: Final = "CANCELLED"
ACTIVE_CLOCK_STATES: Final = frozenset({RUNNING, PAUSED})
ENDED_CLOCK_STATES: Final = frozenset({MET, MET_LATE, CANCELLED})

URGENCIES: Final = ("P1", "P2", "P3", "P4")  # P1 is the most urgent


def raise_urgency(urgency: str) -> str:
    """Return the next more urgent level (P1 stays P1; an unknown level becomes P3)."""
    if urgency not in URGENCIES:
        return "P3"
    return URGENCIES[max(0, URGENCIES.index(urgency) - 1)]


def more_urgent(a: str, b: str) -> str:
    """Return the more urgent of two levels."""
    rank = {u: i for i, u in enumerate(URGENCIES)}
    return a if rank.get(a, 9) <= rank.get(b, 9) else b
