"""The small interfaces the station logic is written against; hardware adapters implement them."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from protocols.messages import Grade


@dataclass(frozen=True, slots=True)
class TagRead:
    """A tag on the pad: its UID (hex) and the bytes of the coldloop data blocks."""

    uid: str
    data: bytes


class TagReader(Protocol):
    """Reads whatever tag lies on a station's pad."""

    def read(self) -> TagRead | None:
        """Return the tag on the pad, or None when there is none; raise ReaderFault on error."""
        ...


class TemperatureProbe(Protocol):
    """A core-temperature probe at a station."""

    probe_id: str

    def read_celsius(self) -> float | None:
        """Return the latest core temperature, or None when the probe has no valid reading."""
        ...


class Light(StrEnum):
    """What the station shows the worker."""

    OFF = "off"
    GREEN = "green"  # resell
    AMBER = "amber"  # discount, or check by hand
    RED = "red"  # scrap
    UNKNOWN_TAG = "unknown_tag"  # green+amber: a coldloop tag this site does not expect
    PROBE_FAULT = "probe_fault"  # green+red: graded "check by hand", the probe gave no reading
    FAULT = "fault"  # amber+red: unreadable or foreign tag, reader error
    REFUSED = "refused"  # all three: the scan could not be recorded (disk full): set it aside


class Indicator(Protocol):
    """Lights and buzzer of a station."""

    def show(self, light: Light) -> None:
        """Switch the lights to ``light`` and sound its buzzer pattern."""
        ...


@dataclass(frozen=True, slots=True)
class GradeDecision:
    """A grade with everything needed to explain it."""

    grade: Grade
    model_version: str
    scores: dict[str, float] = field(default_factory=dict)
    features: dict[str, float | None] = field(default_factory=dict)
    rule: str | None = None
    shadow: dict[str, str | bool] | None = None  # a candidate model's answer on the same scan


class Grader(Protocol):
    """Decides resell / discount / scrap for an item."""

    @property
    def version(self) -> str:
        """The version of the model or rules in force."""
        ...

    def grade(self, features: dict[str, float | None]) -> GradeDecision:
        """Grade an item from its features."""
        ...
