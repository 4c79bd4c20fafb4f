"""Cold-chain segments: an item's custody spans joined to the temperatures recorded in them.

Pure domain code (no database, no web): the caller fetches custody records and telemetry and
hands them over as :class:`CustodySpan` values. Per span, :func:`segment_report` computes the
statistics of COLDCHAIN.md (min/max/mean, time and degree-hours above the product's limit, MKT,
shelf life consumed, excursion verdicts) with the arithmetic of :mod:`protocols.coldchain`;
:func:`chain_report` puts the spans of one item in order and adds what lies between them:
shelf life left at each handover, custody gaps (nobody on record) and overlaps (two custodians
claiming the same time).

Time rules (COLDCHAIN.md, "Excursions"): a reading holds until the next one; a spacing longer
than ``gap_factor`` (2) x the sampling interval, or a missing value, is *unknown* time, never
interpolated. The first reading also stands for the time since the span began and the last
one until the span ends, when those stretches are within the same limit (a logger's sampling
phase); longer ones are unknown. Family parameters default to
:data:`protocols.coldchain.FAMILIES` and can be replaced from configuration
(:func:`family_parameters_from_settings`, ``config/coldchain.toml``).
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, cast

from protocols.coldchain import (
    FAMILIES,
    R_J_PER_MOL_K,
    USP_DELTA_H_OVER_R,
    Arrhenius,
    ConstantQ10,
    FamilyParameters,
    Interval,
    Q10Bands,
    RateModel,
    SquareRoot,
    degree_hours_above,
    hours_above,
    mean_kinetic_temperature,
    shelf_life_consumed,
)
from protocols.config import ConfigError

Party = Literal["supplier", "warehouse", "delivery", "customer"]
PARTIES: tuple[Party, ...] = ("supplier", "warehouse", "delivery", "customer")
Placement = Literal["product", "air", "unknown"]
PLACEMENTS: tuple[Placement, ...] = ("product", "air", "unknown")
SafetyStatus = Literal["ok", "use_now", "discard"]
Reading = tuple[datetime, float | None]  # when, °C (None: the logger reported no value)

SECONDS_PER_HOUR = 3600.0


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")


@dataclass(frozen=True)
class Sensor:
    """Where a span's temperatures come from.

    ``placement``: "product" (a core or in-pack probe), "air" (cabin or room air, which
    overstates short warm spells) or "unknown". ``calibrated``: True / False, or None when the
    calibration status is not known.
    """

    source: str = ""
    placement: Placement = "unknown"
    calibrated: bool | None = None

    def __post_init__(self) -> None:
        if self.placement not in PLACEMENTS:
            raise ValueError(f"sensor placement {self.placement!r} is not one of "
                             f"{', '.join(PLACEMENTS)}")


@dataclass(frozen=True)
class CustodySpan:
    """One custodian's time with an item, and the temperature readings that apply to it.

    ``party`` is the kind of custodian, ``actor`` who exactly (a company, a warehouse, a truck
    id), ``location`` where. ``readings`` are (aware datetime, °C or None); readings outside
    [start, end] are not used (and counted in the report). ``sampling_s`` is the logger's
    expected interval; when omitted it is inferred from the readings (median spacing).
    """

    party: Party
    actor: str
    location: str
    start: datetime
    end: datetime
    readings: Sequence[Reading] = ()
    sensor: Sensor = field(default_factory=Sensor)
    sampling_s: float | None = None

    def __post_init__(self) -> None:
        if self.party not in PARTIES:
            raise ValueError(f"custody party {self.party!r} is not one of {', '.join(PARTIES)}")
        _require_aware("span start", self.start)
        _require_aware("span end", self.end)
        if self.end <= self.start:
            raise ValueError(f"a custody span must end after it starts ({self.party} "
                             f"{self.actor}: {self.start.isoformat()} .. {self.end.isoformat()})")
        if self.sampling_s is not None and not self.sampling_s > 0:
            raise ValueError(f"sampling_s must be positive, got {self.sampling_s}")
        readings = tuple(self.readings)
        for when, value in readings:
            _require_aware("reading time", when)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"reading at {when.isoformat()} is not a finite number: {value}")
        object.__setattr__(self, "readings", readings)

    @property
    def hours(self) -> float:
        """Duration of the span in hours."""
        return (self.end - self.start).total_seconds() / SECONDS_PER_HOUR


@dataclass(frozen=True)
class QcCheck:
    """A quality check of the item: who did it, when, the outcome, the core temperature."""

    at: datetime
    party: Party  # the custodian doing the check (an intake check: the receiver)
    passed: bool
    core_c: float | None = None
    note: str = ""

    def __post_init__(self) -> None:
        _require_aware("QC time", self.at)
        if self.party not in PARTIES:
            raise ValueError(f"QC party {self.party!r} is not one of {', '.join(PARTIES)}")


@dataclass(frozen=True)
class ExcursionRules:
    """When time above a limit breaks the profile (COLDCHAIN.md: single event and cumulative).

    Professional custodians (supplier, warehouse, delivery) are judged against the family's
    ``limit_c``; the customer's home (``customer_threshold``) against ``safety_limit_c`` by
    default, since a home fridge or a fruit bowl is not a cold room. The safety status applies
    the food-service 2-hour/4-hour rule to cumulative time above ``safety_limit_c``.
    """

    single_max_h: float = 0.5  # one continuous stay above the threshold longer than this
    cumulative_max_h: float = 1.0  # total time above the threshold longer than this
    safety_use_now_h: float = 2.0  # above the safety limit this long (or more): use now
    safety_discard_h: float = 4.0  # ... more than this: discard
    customer_threshold: Literal["limit", "safety"] = "safety"
    gap_factor: float = 2.0  # spacing > gap_factor x sampling interval is unknown time
    default_sampling_s: float = 900.0  # when a span has too few readings to infer it

    def __post_init__(self) -> None:
        for name in ("single_max_h", "cumulative_max_h", "safety_use_now_h",
                     "safety_discard_h"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"excursion rule {name} must be >= 0")
        if self.safety_discard_h < self.safety_use_now_h:
            raise ValueError("safety_discard_h must not be below safety_use_now_h")
        if not self.gap_factor >= 1:
            raise ValueError("gap_factor must be at least 1")
        if not self.default_sampling_s > 0:
            raise ValueError("default_sampling_s must be positive")
        if self.customer_threshold not in ("limit", "safety"):
            raise ValueError("customer_threshold must be 'limit' or 'safety'")

    def threshold_for(self, party: Party, family: FamilyParameters) -> float:
        """The temperature a party's span is judged against."""
        if party == "customer" and self.customer_threshold == "safety":
            return family.safety_limit_c
        return family.limit_c

    def safety_status(self, hours_above_safety: float) -> SafetyStatus:
        """2-hour/4-hour rule: < 2 h fine, 2-4 h use now, > 4 h discard (defaults)."""
        if hours_above_safety > self.safety_discard_h:
            return "discard"
        if hours_above_safety >= self.safety_use_now_h and hours_above_safety > 0:
            return "use_now"
        return "ok"


DEFAULT_RULES = ExcursionRules()


@dataclass(frozen=True)
class Excursion:
    """One continuous stay above a threshold (unknown time ends it)."""

    start: datetime
    end: datetime
    threshold_c: float
    peak_c: float
    degree_hours: float

    @property
    def hours(self) -> float:
        """Duration in hours."""
        return (self.end - self.start).total_seconds() / SECONDS_PER_HOUR


@dataclass(frozen=True)
class Verdict:
    """One excursion rule applied to a segment."""

    rule: Literal["single", "cumulative", "safety"]
    threshold_c: float
    allowed_h: float
    observed_h: float
    status: Literal["ok", "breach", "use_now", "discard"]

    @property
    def breached(self) -> bool:
        """Whether the rule was broken."""
        return self.status != "ok"


@dataclass(frozen=True)
class SegmentReport:
    """Statistics of one custody span (temperatures °C, durations h, consumption as fractions)."""

    index: int  # position in the chain (spans sorted by start)
    party: Party
    actor: str
    location: str
    start: datetime
    end: datetime
    sensor: Sensor
    sampling_s: float
    sampling_inferred: bool
    n_readings: int  # readings inside the span, with or without a value
    n_missing_values: int  # ... of which reported no value
    n_outside: int  # readings handed over that fall outside the span (not used)
    known_h: float
    unknown_h: float
    coverage: float  # known_h / hours
    gaps: tuple[tuple[datetime, datetime], ...]  # unknown stretches, merged
    min_c: float | None
    max_c: float | None
    mean_c: float | None  # time-weighted over known time
    first_c: float | None  # first reading with a value
    last_c: float | None
    mkt_c: float | None
    limit_c: float
    hours_above_limit: float
    longest_above_limit_h: float
    degree_hours_above_limit: float
    safety_limit_c: float
    hours_above_safety: float
    longest_above_safety_h: float
    degree_hours_above_safety: float
    profile_threshold_c: float  # what the verdicts judge (limit, or safety for the customer)
    excursions: tuple[Excursion, ...]  # stays above the profile threshold
    verdicts: tuple[Verdict, ...]
    shelf_life_consumed: float  # fraction of the reference shelf life, known time only

    @property
    def hours(self) -> float:
        """Duration of the span in hours."""
        return (self.end - self.start).total_seconds() / SECONDS_PER_HOUR

    @property
    def has_record(self) -> bool:
        """Whether any temperature was recorded in the span."""
        return self.n_readings - self.n_missing_values > 0

    @property
    def profile_broken(self) -> bool:
        """Whether a single, cumulative or safety rule was broken."""
        return any(v.breached for v in self.verdicts)

    @property
    def safety_status(self) -> SafetyStatus:
        """The 2-hour/4-hour verdict of the span."""
        for verdict in self.verdicts:
            if verdict.rule == "safety" and verdict.status in ("use_now", "discard"):
                return cast(SafetyStatus, verdict.status)
        return "ok"

    @property
    def profile_excess_h(self) -> float:
        """Cumulative hours above the profile threshold."""
        if self.profile_threshold_c == self.limit_c:
            return self.hours_above_limit
        return self.hours_above_safety

    @property
    def profile_degree_hours(self) -> float:
        """Degree-hours above the profile threshold."""
        if self.profile_threshold_c == self.limit_c:
            return self.degree_hours_above_limit
        return self.degree_hours_above_safety

    @property
    def label(self) -> str:
        """How reasons name the segment, e.g. "delivery segment (truck-7)"."""
        return f"{self.party} segment ({self.actor})" if self.actor else f"{self.party} segment"


@dataclass(frozen=True)
class _Piece:
    start: datetime
    end: datetime
    value: float | None  # None: unknown

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / SECONDS_PER_HOUR


def _pieces(start: datetime, end: datetime, readings: Sequence[Reading], max_gap_s: float
            ) -> list[_Piece]:
    """Cut [start, end] into stretches held by one reading, or unknown."""
    if not readings:
        return [_Piece(start, end, None)]
    pieces: list[_Piece] = []

    def add(a: datetime, b: datetime, value: float | None) -> None:
        seconds = (b - a).total_seconds()
        if seconds > 0:
            pieces.append(_Piece(a, b, value if seconds <= max_gap_s else None))

    add(start, readings[0][0], readings[0][1])
    for (t0, v0), (t1, _) in itertools.pairwise(readings):
        add(t0, t1, v0)
    add(readings[-1][0], end, readings[-1][1])
    return pieces


def _runs(pieces: Sequence[_Piece], threshold_c: float) -> list[Excursion]:
    """Continuous stays above ``threshold_c``; unknown time or a value at/below it ends one."""
    runs: list[Excursion] = []
    current: list[_Piece] = []

    def close() -> None:
        if current:
            runs.append(Excursion(
                current[0].start, current[-1].end, threshold_c,
                max(cast(float, p.value) for p in current),
                sum(p.hours * (cast(float, p.value) - threshold_c) for p in current)))
            current.clear()

    for piece in pieces:
        if piece.value is not None and piece.value > threshold_c:
            current.append(piece)
        else:
            close()
    close()
    return runs


def _gaps(pieces: Sequence[_Piece]) -> tuple[tuple[datetime, datetime], ...]:
    gaps: list[tuple[datetime, datetime]] = []
    for piece in pieces:
        if piece.value is not None:
            continue
        if gaps and gaps[-1][1] == piece.start:
            gaps[-1] = (gaps[-1][0], piece.end)
        else:
            gaps.append((piece.start, piece.end))
    return tuple(gaps)


def mkt_delta_h_over_r(model: RateModel) -> float:
    """ΔH/R for MKT: the product's activation energy when the model has one, else USP's."""
    if isinstance(model, Arrhenius):
        return model.ea_j_per_mol / R_J_PER_MOL_K
    return USP_DELTA_H_OVER_R


def segment_report(span: CustodySpan, family: FamilyParameters, *,
                   rules: ExcursionRules = DEFAULT_RULES, index: int = 0) -> SegmentReport:
    """Statistics of one span against its product family's parameters."""
    inside = sorted((r for r in span.readings if span.start <= r[0] <= span.end),
                    key=lambda r: r[0])
    n_outside = len(span.readings) - len(inside)
    spacings = [(b[0] - a[0]).total_seconds() for a, b in itertools.pairwise(inside)]
    spacings = [s for s in spacings if s > 0]
    if span.sampling_s is not None:
        sampling_s, inferred = span.sampling_s, False
    elif spacings:
        sampling_s, inferred = float(statistics.median(spacings)), True
    else:
        sampling_s, inferred = rules.default_sampling_s, True

    pieces = _pieces(span.start, span.end, inside, rules.gap_factor * sampling_s)
    known: list[Interval] = [(p.hours, p.value) for p in pieces if p.value is not None]
    known_h = sum(h for h, _ in known)
    unknown_h = sum(p.hours for p in pieces if p.value is None)
    values = [v for _, v in inside if v is not None]
    if known_h > 0:
        mean_c: float | None = sum(h * t for h, t in known) / known_h
        mkt_c: float | None = mean_kinetic_temperature(
            [t for _, t in known], [h for h, _ in known], mkt_delta_h_over_r(family.model))
    elif values:
        mean_c = sum(values) / len(values)
        mkt_c = mean_kinetic_temperature(values, None, mkt_delta_h_over_r(family.model))
    else:
        mean_c = mkt_c = None

    above_limit = _runs(pieces, family.limit_c)
    above_safety = _runs(pieces, family.safety_limit_c)
    threshold = rules.threshold_for(span.party, family)
    profile_runs = above_limit if threshold == family.limit_c else above_safety
    longest = max((r.hours for r in profile_runs), default=0.0)
    cumulative = hours_above(known, threshold)
    safety_h = hours_above(known, family.safety_limit_c)
    safety = rules.safety_status(safety_h)
    verdicts = (
        Verdict("single", threshold, rules.single_max_h, longest,
                "breach" if longest > rules.single_max_h else "ok"),
        Verdict("cumulative", threshold, rules.cumulative_max_h, cumulative,
                "breach" if cumulative > rules.cumulative_max_h else "ok"),
        Verdict("safety", family.safety_limit_c, rules.safety_use_now_h, safety_h, safety),
    )
    hours = span.hours
    return SegmentReport(
        index=index, party=span.party, actor=span.actor, location=span.location,
        start=span.start, end=span.end, sensor=span.sensor,
        sampling_s=sampling_s, sampling_inferred=inferred,
        n_readings=len(inside), n_missing_values=len(inside) - len(values), n_outside=n_outside,
        known_h=known_h, unknown_h=unknown_h,
        coverage=min(1.0, known_h / hours), gaps=_gaps(pieces),
        min_c=min(values, default=None), max_c=max(values, default=None), mean_c=mean_c,
        first_c=values[0] if values else None, last_c=values[-1] if values else None,
        mkt_c=mkt_c,
        limit_c=family.limit_c, hours_above_limit=hours_above(known, family.limit_c),
        longest_above_limit_h=max((r.hours for r in above_limit), default=0.0),
        degree_hours_above_limit=degree_hours_above(known, family.limit_c),
        safety_limit_c=family.safety_limit_c, hours_above_safety=safety_h,
        longest_above_safety_h=max((r.hours for r in above_safety), default=0.0),
        degree_hours_above_safety=degree_hours_above(known, family.safety_limit_c),
        profile_threshold_c=threshold, excursions=tuple(profile_runs), verdicts=verdicts,
        shelf_life_consumed=shelf_life_consumed(known, family.model, family.shelf_life_ref_h),
    )


@dataclass(frozen=True)
class Handover:
    """The item passing from one party to another, and the shelf life it had left then."""

    at: datetime
    from_party: Party
    to_party: Party
    segment: int  # index of the segment that ends here
    consumed: float  # shelf life consumed up to here (known time only)
    remaining: float  # 1 - consumed, not below 0
    remaining_h: float  # remaining shelf life in hours at the family's reference temperature
    unknown_h: float  # hours up to here with no temperature record (in spans or between them)


@dataclass(frozen=True)
class CustodyGap:
    """Time between spans that no custodian claims."""

    start: datetime
    end: datetime
    before: int  # index of the segment before
    after: int  # index of the segment after

    @property
    def hours(self) -> float:
        """Duration in hours."""
        return (self.end - self.start).total_seconds() / SECONDS_PER_HOUR


@dataclass(frozen=True)
class CustodyOverlap:
    """Time claimed by two custodians at once (conflicting records or clock skew)."""

    start: datetime
    end: datetime
    first: int  # index of the earlier-starting segment
    second: int

    @property
    def hours(self) -> float:
        """Duration in hours."""
        return (self.end - self.start).total_seconds() / SECONDS_PER_HOUR


@dataclass(frozen=True)
class ChainReport:
    """One item's cold chain: its segments in order and what lies between them."""

    item: str
    family: str
    parameters: FamilyParameters
    rules: ExcursionRules
    segments: tuple[SegmentReport, ...]
    qc_checks: tuple[QcCheck, ...]
    handovers: tuple[Handover, ...]
    custody_gaps: tuple[CustodyGap, ...]
    overlaps: tuple[CustodyOverlap, ...]
    start: datetime
    end: datetime
    known_h: float
    unknown_h: float  # inside spans plus custody gaps
    coverage: float  # known / (span hours + custody gap hours)
    shelf_life_consumed: float  # sum over segments (overlapping time counts in each claim)
    hours_above_limit: float
    degree_hours_above_limit: float
    hours_above_safety: float
    safety_status: SafetyStatus

    @property
    def hours(self) -> float:
        """From the first span's start to the last span's end, in hours."""
        return (self.end - self.start).total_seconds() / SECONDS_PER_HOUR

    @property
    def remaining(self) -> float:
        """Shelf life left at the end of the record (fraction, not below 0)."""
        return max(0.0, 1.0 - self.shelf_life_consumed)

    @property
    def at_receipt(self) -> Handover | None:
        """The first handover out of the supplier's hands (arrival at intake QC)."""
        return next((h for h in self.handovers if h.from_party == "supplier"), None)

    @property
    def at_delivery(self) -> Handover | None:
        """The handover to the customer (or the end of the last delivery span)."""
        return next((h for h in self.handovers
                     if h.from_party == "delivery" and h.to_party == "customer"), None)

    def segments_of(self, party: Party) -> tuple[SegmentReport, ...]:
        """The segments held by ``party``, in order."""
        return tuple(s for s in self.segments if s.party == party)


def chain_report(spans: Sequence[CustodySpan], family: str, *, item: str = "",
                 qc_checks: Sequence[QcCheck] = (),
                 families: Mapping[str, FamilyParameters] = FAMILIES,
                 rules: ExcursionRules = DEFAULT_RULES) -> ChainReport:
    """Analyse an item's custody spans (any order) with its family's parameters."""
    if not spans:
        raise ValueError("a cold chain needs at least one custody span")
    if family not in families:
        raise ValueError(f"unknown product family {family!r}; known: {', '.join(sorted(families))}")
    params = families[family]
    ordered = sorted(spans, key=lambda s: (s.start, s.end))
    segments = tuple(segment_report(span, params, rules=rules, index=i)
                     for i, span in enumerate(ordered))

    gaps: list[CustodyGap] = []
    overlaps: list[CustodyOverlap] = []
    reach, reach_index = segments[0].end, 0
    for seg in segments[1:]:
        if seg.start > reach:
            gaps.append(CustodyGap(reach, seg.start, reach_index, seg.index))
        for prev in segments[:seg.index]:
            if prev.end > seg.start:
                overlaps.append(CustodyOverlap(seg.start, min(prev.end, seg.end),
                                               prev.index, seg.index))
        if seg.end > reach:
            reach, reach_index = seg.end, seg.index

    handovers: list[Handover] = []
    consumed = unknown = 0.0
    for seg, nxt in itertools.zip_longest(segments, segments[1:]):
        consumed += seg.shelf_life_consumed
        unknown += seg.unknown_h + sum(g.hours for g in gaps if g.before == seg.index)
        if nxt is None:
            to_party: Party | None = "customer" if seg.party == "delivery" else None
        else:
            to_party = nxt.party if nxt.party != seg.party else None
        if to_party is not None:
            handovers.append(Handover(
                seg.end, seg.party, to_party, seg.index, consumed, max(0.0, 1.0 - consumed),
                max(0.0, 1.0 - consumed) * params.shelf_life_ref_h, unknown))

    known_h = sum(s.known_h for s in segments)
    unknown_h = sum(s.unknown_h for s in segments) + sum(g.hours for g in gaps)
    total_h = known_h + unknown_h
    hours_above_safety = sum(s.hours_above_safety for s in segments)
    return ChainReport(
        item=item, family=family, parameters=params, rules=rules, segments=segments,
        qc_checks=tuple(sorted(qc_checks, key=lambda q: q.at)), handovers=tuple(handovers),
        custody_gaps=tuple(gaps), overlaps=tuple(overlaps),
        start=segments[0].start, end=max(s.end for s in segments),
        known_h=known_h, unknown_h=unknown_h,
        coverage=min(1.0, known_h / total_h) if total_h > 0 else 0.0,
        shelf_life_consumed=sum(s.shelf_life_consumed for s in segments),
        hours_above_limit=sum(s.hours_above_limit for s in segments),
        degree_hours_above_limit=sum(s.degree_hours_above_limit for s in segments),
        hours_above_safety=hours_above_safety,
        safety_status=rules.safety_status(hours_above_safety),
    )


# --- configuration -------------------------------------------------------------------------

_MODEL_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # kind: (required keys, optional keys) besides "kind"
    "q10_bands": ((), ("bands", "ref_c")),
    "constant_q10": (("q10",), ("ref_c",)),
    "arrhenius": (("ea_j_per_mol",), ("ref_c",)),
    "square_root": (("t_min_c",), ("ref_c",)),
}
_FAMILY_KEYS = ("shelf_life_ref_h", "model", "limit_c", "safety_limit_c", "source")


def _number(source: str, key: str, value: Any, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{source}: key '{key}': expected a number (got {value!r})")
    if positive and value <= 0:
        raise ConfigError(f"{source}: key '{key}': must be greater than 0 (got {value!r})")
    return float(value)


def _table(source: str, key: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{source}: key '{key}': expected a table (got {value!r})")
    return value


def _check_keys(source: str, key: str, table: Mapping[str, Any], required: Sequence[str],
                optional: Sequence[str] = ()) -> None:
    for name in table:
        if name not in required and name not in optional:
            raise ConfigError(f"{source}: key '{key}.{name}': unknown key (expected "
                              f"{', '.join([*required, *optional])})")
    for name in required:
        if name not in table:
            raise ConfigError(f"{source}: key '{key}.{name}': required")


def _model_from_settings(source: str, key: str, table: Mapping[str, Any]) -> RateModel:
    kind = table.get("kind")
    if kind not in _MODEL_KEYS:
        raise ConfigError(f"{source}: key '{key}.kind': expected one of "
                          f"{', '.join(_MODEL_KEYS)} (got {kind!r})")
    required, optional = _MODEL_KEYS[kind]
    _check_keys(source, key, table, ("kind", *required), optional)
    ref_c = _number(source, f"{key}.ref_c", table.get("ref_c", 0.0))
    if kind == "constant_q10":
        return ConstantQ10(_number(source, f"{key}.q10", table["q10"], positive=True), ref_c)
    if kind == "arrhenius":
        return Arrhenius(_number(source, f"{key}.ea_j_per_mol", table["ea_j_per_mol"],
                                 positive=True), ref_c)
    if kind == "square_root":
        t_min = _number(source, f"{key}.t_min_c", table["t_min_c"])
        if t_min >= ref_c:
            raise ConfigError(f"{source}: key '{key}.t_min_c': must be below ref_c ({ref_c})")
        return SquareRoot(t_min, ref_c)
    if "bands" not in table:
        return Q10Bands(ref_c=ref_c)
    raw = table["bands"]
    if not isinstance(raw, Sequence) or isinstance(raw, str) or not raw:
        raise ConfigError(f"{source}: key '{key}.bands': expected a list of [low, high, q10]")
    bands: list[tuple[float, float, float]] = []
    for i, band in enumerate(raw):
        where = f"{key}.bands[{i}]"
        if not isinstance(band, Sequence) or isinstance(band, str) or len(band) != 3:
            raise ConfigError(f"{source}: key '{where}': expected [low, high, q10] "
                              f"(got {band!r})")
        low, high = _number(source, where, band[0]), _number(source, where, band[1])
        q10 = _number(source, where, band[2], positive=True)
        if high <= low or (bands and low < bands[-1][1]):
            raise ConfigError(f"{source}: key '{where}': bands must be ascending and not "
                              "overlap (low < high, low >= the previous high)")
        bands.append((low, high, q10))
    return Q10Bands(tuple(bands), ref_c)


def family_parameters_from_settings(
        mapping: Mapping[str, Any], *, defaults: Mapping[str, FamilyParameters] = FAMILIES,
        source: str = "coldchain settings") -> dict[str, FamilyParameters]:
    """Product families from a parsed TOML document's ``[families.<name>]`` tables.

    Each family must be complete (shelf_life_ref_h, model.kind + the model's parameters,
    limit_c, safety_limit_c, source); configured families replace ``defaults`` of the same
    name, the others keep their default. A ConfigError names the offending key.
    """
    result = dict(defaults)
    families = _table(source, "families", mapping.get("families", {}))
    for name, raw in families.items():
        key = f"families.{name}"
        table = _table(source, key, raw)
        _check_keys(source, key, table, _FAMILY_KEYS)
        shelf_life = _number(source, f"{key}.shelf_life_ref_h", table["shelf_life_ref_h"],
                             positive=True)
        model = _model_from_settings(source, f"{key}.model",
                                     _table(source, f"{key}.model", table["model"]))
        limit = _number(source, f"{key}.limit_c", table["limit_c"])
        safety = _number(source, f"{key}.safety_limit_c", table["safety_limit_c"])
        if safety <= limit:
            raise ConfigError(f"{source}: key '{key}.safety_limit_c': must be above limit_c "
                              f"({limit})")
        text = table["source"]
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"{source}: key '{key}.source': required: where the numbers "
                              "come from (a non-empty string)")
        result[name] = FamilyParameters(shelf_life, model, limit, safety, text)
    return result


def excursion_rules_from_settings(mapping: Mapping[str, Any], *,
                                  source: str = "coldchain settings") -> ExcursionRules:
    """:class:`ExcursionRules` from a document's optional ``[excursions]`` table."""
    table = _table(source, "excursions", mapping.get("excursions", {}))
    numeric = ("single_max_h", "cumulative_max_h", "safety_use_now_h", "safety_discard_h",
               "gap_factor", "default_sampling_s")
    _check_keys(source, "excursions", table, (), (*numeric, "customer_threshold"))
    values: dict[str, Any] = {name: _number(source, f"excursions.{name}", table[name])
                              for name in numeric if name in table}
    if "customer_threshold" in table:
        values["customer_threshold"] = table["customer_threshold"]
    try:
        return ExcursionRules(**values)
    except ValueError as err:
        raise ConfigError(f"{source}: [excursions]: {err}") from None
