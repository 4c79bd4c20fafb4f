"""Waiting for a probe board's bytes without sleeping: poll, then select() on the port's fd."""

from __future__ import annotations

import select
from collections.abc import Callable

from edge.probe import FaultCode, ProbeFault, SerialProbeBoard
from protocols.probe_frame import ProbeFrame

Event = ProbeFrame | ProbeFault


def frames_in(events: list[Event]) -> list[ProbeFrame]:
    """The frames among the events."""
    return [e for e in events if isinstance(e, ProbeFrame)]


def codes(events: list[Event]) -> list[tuple[str, int | None]]:
    """(code, probe) of the faults among the events."""
    return [(e.code.value, e.probe) for e in events if isinstance(e, ProbeFault)]


def wait_for(reader: SerialProbeBoard, done: Callable[[list[Event]], bool],
             tries: int = 40) -> list[Event]:
    """Poll until ``done(events)``; between polls wait (<= 0.25 s) for the fd to be readable."""
    events: list[Event] = []
    for _ in range(tries):
        events += reader.poll()
        if done(events):
            return events
        fd = reader.fileno()
        if fd is not None:
            select.select([fd], [], [], 0.25)
    raise AssertionError(f"gave up waiting; got {events}")


def wait_frames(reader: SerialProbeBoard, count: int) -> list[Event]:
    """Poll until ``count`` frames have arrived."""
    return wait_for(reader, lambda events: len(frames_in(events)) >= count)


def wait_code(reader: SerialProbeBoard, code: FaultCode) -> list[Event]:
    """Poll until a fault with ``code`` has been reported."""
    return wait_for(reader, lambda events: any(c == code for c, _ in codes(events)))
