"""Who is responsible for a complaint: supplier, warehouse, delivery, customer, or undetermined.

Pure domain code over a :class:`hub.segments.ChainReport`. It follows COLDCHAIN.md's
"Attribution, a starting rule set", made concrete in docs/attribution.md:

- evidence is collected as :class:`Reason` values, each pointing toward or away from a party
  with a ``weight`` (added to that party's score) or neutral, and each may carry a
  ``confidence_factor`` (data quality, conflicts);
- a party's score is the sum of its weights (not below 0); the party with the largest score
  at or above ``min_score`` is responsible, ties going upstream;
- confidence = evidence(score) x share of all scores x the product of the reasons' factors,
  where evidence(s) = s / (s + 0.5);
- too little data (coverage of the chain before delivery below ``min_coverage``, no failed
  QC) gives "undetermined";
  so does a record that does not explain the complaint by temperature, and then the reasons
  say so.

Every gap in the record, custody hole, overlap, missing segment and conflict is a reason.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from hub.segments import PARTIES, ChainReport, Party, SegmentReport
from protocols.coldchain import shelf_life_at
from protocols.config import ConfigError

Outcome = Literal["supplier", "warehouse", "delivery", "customer", "undetermined"]
Direction = Literal["toward", "away", "neutral"]

# Shares of the reference shelf life each party may use (house defaults, docs/attribution.md).
# The supplier's is judged on what is left at intake: at least 75 % (a "minimum life on
# receipt"); then 30 % in the warehouse and 15 % on the truck leave at least 30 % at the door.
DEFAULT_ALLOWANCES: dict[str, float] = {"supplier": 0.25, "warehouse": 0.30, "delivery": 0.15}
PLACEMENT_WEIGHTS: dict[str, float] = {"product": 1.0, "air": 0.8, "unknown": 0.7}

# Weights of the evidence (added to the score of the party a reason concerns).
BREACH_BASE = 1.0  # a segment broke its profile: 1 + min(2, degree-hours / scale)
DEGREE_HOURS_CAP = 2.0
MINOR_CAP = 0.4  # stays above the threshold within tolerance: min(0.4, degree-hours / scale)
ALLOWANCE_BASE = 1.0  # over allowance: 1 + min(1, overrun / allowance)
WITHIN_PROFILE = -0.2  # a well-recorded segment that stayed within its profile
RECEIPT_OK = -0.2  # arrived at intake with the expected shelf life
ARRIVED_WARM = 0.3  # the receiver's first reading was already above the limit
HANDED_OVER_WARM = 0.3  # the giver's last reading before the handover was above the limit
QC_FAILED = 1.5  # the item failed a QC: toward the custodian who handed it over
QC_FAILED_BEFORE = -0.5  # ... and away from those who only had it afterwards
QC_PASSED = -0.3  # passed a QC (with nothing in the record contradicting it)
QC_CORE_WARM = 0.5  # the QC measured a core above the limit
KEPT_PAST_LIFE = 1.0  # complaint after the shelf life left at delivery would have run out
COMPLAINT_SOON = -0.3  # complaint within the first quarter of that time
DAMAGE_HINT = {"delivery": 0.8, "customer": 0.5}  # "damaged", temperature not explaining it

# Confidence factors.
MISSING_RECORD = 0.9  # per segment with no temperature record at all
CONFLICT = 0.8  # per piece of conflicting evidence
SEVERAL_PARTIES = 0.85  # another party also has evidence at or above min_score
CATEGORY_CONFLICT = 0.85  # a "damaged" complaint explained by temperature
HINT_ONLY_CAP = 0.5  # the most confidence a complaint-category hint alone can give
EVIDENCE_HALF = 0.5  # evidence(s) = s / (s + EVIDENCE_HALF)

TEMPERATURE_CODES = frozenset({"profile_breach", "minor_excursion", "low_shelf_life_at_receipt",
                               "over_allowance", "arrived_warm", "handed_over_warm",
                               "qc_core_warm"})
HINT_CODES = frozenset({"damage_hint"})


@dataclass(frozen=True)
class Reason:
    """One piece of evidence, in words with its numbers, and what it does to the outcome."""

    code: str
    text: str
    direction: Direction = "neutral"
    party: Party | None = None  # the party it points toward or away from (or concerns)
    segment: int | None = None  # index into ChainReport.segments
    weight: float = 0.0  # added to the party's score (negative when pointing away)
    confidence_factor: float = 1.0  # multiplies the confidence
    item: str = ""


@dataclass(frozen=True)
class AttributionPolicy:
    """Tunable numbers of the rule set (docs/attribution.md); ``[attribution]`` in config."""

    allowances: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_ALLOWANCES))
    min_coverage: float = 0.5  # below this share of the chain recorded: undetermined
    min_score: float = 0.5  # a party needs at least this score to be responsible
    unexplained_below: float = 0.5  # total consumption below this, no breach: not temperature
    degree_hours_scale: float = 10.0  # °C·h above the threshold that add 1 to a breach
    placement_weights: Mapping[str, float] = field(
        default_factory=lambda: dict(PLACEMENT_WEIGHTS))
    uncalibrated_factor: float = 0.8
    calibration_unknown_factor: float = 0.9
    skew_tolerance_s: float = 300.0  # custody holes/overlaps this short: probably clock skew
    clear_coverage: float = 0.8  # a segment this well recorded and within profile is cleared

    def __post_init__(self) -> None:
        for party, share in self.allowances.items():
            if party not in PARTIES or not 0 < share <= 1:
                raise ValueError(f"allowance {party!r} = {share!r}: expected a party and a "
                                 "share of shelf life in (0, 1]")
        for name in ("min_coverage", "unexplained_below", "clear_coverage"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be within [0, 1]")
        for name in ("min_score", "degree_hours_scale", "skew_tolerance_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        for name in ("uncalibrated_factor", "calibration_unknown_factor"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"{name} must be within (0, 1]")
        for placement, weight in self.placement_weights.items():
            if placement not in PLACEMENT_WEIGHTS or not 0 < weight <= 1:
                raise ValueError(f"placement weight {placement!r} = {weight!r}: expected "
                                 "product/air/unknown and a weight in (0, 1]")


DEFAULT_POLICY = AttributionPolicy()


@dataclass(frozen=True)
class Attribution:
    """The decision: who, how sure, why, and every party's score."""

    party: Outcome
    confidence: float  # in [0, 1]
    reasons: list[Reason]
    scores: dict[str, float]  # per party, >= 0
    explained_by_temperature: bool
    item: str = ""

    def toward(self, party: Party) -> list[Reason]:
        """Reasons pointing toward ``party``."""
        return [r for r in self.reasons if r.party == party and r.direction == "toward"]

    def away(self, party: Party) -> list[Reason]:
        """Reasons pointing away from ``party``."""
        return [r for r in self.reasons if r.party == party and r.direction == "away"]

    @property
    def codes(self) -> list[str]:
        """The reason codes, in order."""
        return [r.code for r in self.reasons]

    @property
    def summary(self) -> str:
        """One line: party, confidence, and the reasons pointing toward it."""
        lead = [r.text for r in self.reasons if r.party == self.party and r.direction == "toward"]
        if not lead:
            lead = [r.text for r in self.reasons if r.code in (
                "too_little_data", "not_explained_by_temperature", "within_allowances",
                "weak_evidence")]
        return f"{self.party} ({self.confidence:.0%}): " + "; ".join(lead)


# --- formatting ----------------------------------------------------------------------------

def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def duration_text(hours: float) -> str:
    """A duration for people: "45 min", "3.2 h", "2.5 d"."""
    if hours < 1:
        return f"{hours * 60:.0f} min"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} d"


def _deg(value: float) -> str:
    return f"{value:g} °C"


# --- evidence ------------------------------------------------------------------------------

class _Evidence:
    """Collects reasons for one chain."""

    def __init__(self, chain: ChainReport, policy: AttributionPolicy) -> None:
        self.chain = chain
        self.policy = policy
        self.reasons: list[Reason] = []

    def add(self, code: str, text: str, direction: Direction = "neutral",
            party: Party | None = None, segment: int | None = None, weight: float = 0.0,
            factor: float = 1.0) -> None:
        self.reasons.append(Reason(code, text, direction, party, segment, weight, factor,
                                   self.chain.item))

    def placement_weight(self, seg: SegmentReport) -> float:
        return self.policy.placement_weights.get(seg.sensor.placement, 1.0)

    def link_factor(self, hours: float) -> float:
        """Confidence factor of a custody hole or overlap of ``hours``."""
        return 1.0 - (0.05 + 0.15 * min(1.0, hours))

    def skew_note(self, hours: float) -> str:
        return " (probably clock skew)" if hours * 3600 <= self.policy.skew_tolerance_s else ""


def _record_reasons(ev: _Evidence) -> None:
    """Gaps in the record: missing segments, unknown time, custody holes and overlaps."""
    chain = ev.chain
    for seg in chain.segments:
        if not seg.has_record:
            ev.add("no_record", f"no temperature record for the {seg.label} "
                   f"({duration_text(seg.hours)})", party=seg.party, segment=seg.index,
                   factor=MISSING_RECORD)
        elif seg.unknown_h > 1e-9:
            start, end = max(seg.gaps, key=lambda g: g[1] - g[0])
            ev.add("record_gap", f"no temperature record for {duration_text(seg.unknown_h)} of the "
                   f"{seg.label} ({seg.coverage:.0%} recorded; longest gap "
                   f"{duration_text((end - start).total_seconds() / 3600)} from {_when(start)})",
                   party=seg.party, segment=seg.index)
    if chain.coverage < 0.999:
        ev.add("coverage", f"temperature known for {chain.coverage:.0%} of the "
               f"{duration_text(chain.hours)} on record", factor=0.4 + 0.6 * chain.coverage)
    for gap in chain.custody_gaps:
        a, b = chain.segments[gap.before], chain.segments[gap.after]
        ev.add("custody_gap", f"no custodian on record for {duration_text(gap.hours)} between the "
               f"{a.label} and the {b.label}, from {_when(gap.start)}{ev.skew_note(gap.hours)}",
               segment=gap.after, factor=ev.link_factor(gap.hours))
    for overlap in chain.overlaps:
        a, b = chain.segments[overlap.first], chain.segments[overlap.second]
        text = (f"the {a.label} and the {b.label} both claim custody for "
                f"{duration_text(overlap.hours)} from {_when(overlap.start)}"
                f"{ev.skew_note(overlap.hours)}")
        inside = [e for s in (a, b) for e in s.excursions
                  if e.start < overlap.end and e.end > overlap.start]
        if inside:
            text += "; an excursion above the limit falls in that time"
        ev.add("custody_overlap", text, segment=overlap.second,
               factor=ev.link_factor(overlap.hours) * (CONFLICT if inside else 1.0))


def _segment_reasons(ev: _Evidence) -> None:
    """Each recorded segment against its profile."""
    rules, policy = ev.chain.rules, ev.policy
    for seg in ev.chain.segments:
        if not seg.has_record:
            continue
        threshold = _deg(seg.profile_threshold_c)
        degree_hours = seg.profile_degree_hours
        place = ev.placement_weight(seg)
        if seg.profile_broken:
            longest = max(seg.excursions, key=lambda e: e.hours, default=None)
            text = f"{seg.label} {duration_text(seg.profile_excess_h)} above {threshold}"
            if longest is not None:
                text += (f" (longest {duration_text(longest.hours)} from {_when(longest.start)}, "
                         f"peak {longest.peak_c:.1f} °C; {degree_hours:.1f} °C·h)")
            text += (f"; allowed {rules.single_max_h:g} h at a stretch and "
                     f"{rules.cumulative_max_h:g} h in all")
            if seg.safety_status != "ok":
                text += (f"; {seg.hours_above_safety:.1f} h above the "
                         f"{_deg(seg.safety_limit_c)} safety limit: {seg.safety_status}")
            weight = (BREACH_BASE + min(DEGREE_HOURS_CAP, degree_hours
                                        / policy.degree_hours_scale)) * place
            ev.add("profile_breach", text, "toward", seg.party, seg.index, weight)
        elif degree_hours > 0:
            peak = max(e.peak_c for e in seg.excursions) if seg.excursions else seg.max_c
            ev.add("minor_excursion", f"{seg.label} {duration_text(seg.profile_excess_h)} above "
                   f"{threshold} (peak {peak:.1f} °C), within the {rules.single_max_h:g} h / "
                   f"{rules.cumulative_max_h:g} h tolerance", "toward", seg.party, seg.index,
                   min(MINOR_CAP, degree_hours / policy.degree_hours_scale) * place)
        else:
            text = (f"{seg.label} stayed at or below {threshold} (max {seg.max_c:.1f} °C, "
                    f"MKT {seg.mkt_c:.1f} °C, {seg.shelf_life_consumed:.0%} of the shelf "
                    "life used)")
            if seg.coverage >= policy.clear_coverage:
                ev.add("within_profile", text, "away", seg.party, seg.index, WITHIN_PROFILE)
            else:
                ev.add("within_profile_partial", f"{text} where recorded, but only "
                       f"{seg.coverage:.0%} of its time is recorded", party=seg.party,
                       segment=seg.index)


def _allowance_reasons(ev: _Evidence) -> None:
    """Shelf life at intake (supplier) and per party consumption against the allowances."""
    chain, allowances = ev.chain, ev.policy.allowances
    receipt = chain.at_receipt
    suppliers = [s for s in chain.segments_of("supplier") if s.has_record]
    if receipt is not None and suppliers and "supplier" in allowances:
        allowance = allowances["supplier"]
        unknown = (f" (plus {duration_text(receipt.unknown_h)} without a temperature record)"
                   if receipt.unknown_h > 0.01 else "")
        text = (f"arrived at {receipt.to_party} intake with {receipt.remaining:.0%} shelf life "
                f"left{unknown}; at least {1 - allowance:.0%} is expected")
        if receipt.consumed > allowance:
            place = min(ev.placement_weight(s) for s in suppliers)
            overrun = min(1.0, (receipt.consumed - allowance) / allowance)
            ev.add("low_shelf_life_at_receipt", text, "toward", "supplier", receipt.segment,
                   (ALLOWANCE_BASE + overrun) * place)
        else:
            ev.add("shelf_life_at_receipt", text, "away", "supplier", receipt.segment,
                   RECEIPT_OK)
    for party in PARTIES:
        if party == "supplier" or party not in allowances:
            continue
        recorded = [s for s in chain.segments_of(party) if s.has_record]
        used = sum(s.shelf_life_consumed for s in recorded)
        allowance = allowances[party]
        if recorded and used > allowance:
            place = min(ev.placement_weight(s) for s in recorded)
            overrun = min(1.0, (used - allowance) / allowance)
            biggest = max(recorded, key=lambda s: s.shelf_life_consumed)
            held = duration_text(sum(s.hours for s in recorded))
            ev.add("over_allowance", f"the {party} used {used:.0%} of the shelf life "
                   f"(allowance {allowance:.0%}) in {held}; "
                   f"the {biggest.label} held it at an MKT of {biggest.mkt_c:.1f} °C", "toward",
                   party, biggest.index, (ALLOWANCE_BASE + overrun) * place)


def _arrived_warm(chain: ChainReport, index: int) -> SegmentReport | None:
    """The segment after ``index`` if its record starts above the limit of both sides.

    That is the family's limit, or the receiver's own profile threshold when it is higher
    (a customer's fridge is judged against the safety limit).
    """
    if index + 1 >= len(chain.segments):
        return None
    nxt = chain.segments[index + 1]
    if nxt.first_c is None or nxt.first_c <= max(chain.parameters.limit_c,
                                                  nxt.profile_threshold_c):
        return None
    if nxt.gaps and nxt.gaps[0][0] == nxt.start:  # its record starts late: not at the handover
        return None
    return nxt


def _left_warm(chain: ChainReport, index: int) -> SegmentReport | None:
    """Segment ``index`` if its record ends above the family's limit."""
    seg = chain.segments[index]
    if seg.last_c is None or seg.last_c <= chain.parameters.limit_c:
        return None
    if seg.gaps and seg.gaps[-1][1] == seg.end:  # its record ends early: not at the handover
        return None
    return seg


def _handover_reasons(ev: _Evidence) -> None:
    """Temperatures at a handover: an item handed over or received warm left warm."""
    chain = ev.chain
    limit = _deg(chain.parameters.limit_c)
    for handover in chain.handovers:
        giver = _left_warm(chain, handover.segment)
        if giver is not None:
            ev.add("handed_over_warm", f"the last {giver.label} reading before the handover to "
                   f"the {handover.to_party} at {_when(handover.at)} was {giver.last_c:.1f} °C "
                   f"(above {limit})", "toward", handover.from_party, giver.index,
                   HANDED_OVER_WARM * ev.placement_weight(giver))
        nxt = _arrived_warm(chain, handover.segment)
        if nxt is None or nxt.party != handover.to_party:
            continue
        ev.add("arrived_warm", f"the first {nxt.party} reading was already "
               f"{nxt.first_c:.1f} °C (above "
               f"{_deg(max(chain.parameters.limit_c, nxt.profile_threshold_c))}) at the "
               "handover from the "
               f"{handover.from_party} at {_when(handover.at)}", "toward", handover.from_party,
               nxt.index, ARRIVED_WARM * ev.placement_weight(nxt))


def _qc_reasons(ev: _Evidence) -> None:
    """QC checks: a failure points upstream; a pass points away unless the record disagrees."""
    chain = ev.chain
    limit = chain.parameters.limit_c
    for qc in chain.qc_checks:
        handover = None
        for candidate in chain.handovers:
            if (candidate.to_party == qc.party
                    and (candidate.at - qc.at).total_seconds() <= 3600):
                handover = candidate
        outcome = "passed" if qc.passed else "failed"
        core = f", core {qc.core_c:.1f} °C" if qc.core_c is not None else ""
        note = f" ({qc.note})" if qc.note else ""
        if handover is None:
            ev.add("qc_no_upstream", f"{qc.party} QC at {_when(qc.at)} {outcome}{core}{note}, "
                   "with no earlier custodian on record to hold to it", party=qc.party)
            continue
        prev: Party = handover.from_party
        warm_core = qc.core_c is not None and qc.core_c > limit
        if warm_core:
            ev.add("qc_core_warm", f"{qc.party} QC at {_when(qc.at)} measured a core of "
                   f"{qc.core_c:.1f} °C, above {_deg(limit)}", "toward", prev, handover.segment,
                   QC_CORE_WARM)
        if not qc.passed:
            ev.add("qc_failed", f"the {prev}'s goods failed {qc.party} QC at {_when(qc.at)}"
                   f"{core}{note}", "toward", prev, handover.segment, QC_FAILED)
            # Parties that only took the item over at or after that handover (the checker
            # included: an intake check judges the goods as received).
            later = {s.party for s in chain.segments if s.start >= handover.at} - {
                s.party for s in chain.segments if s.start < handover.at}
            for party in sorted(later, key=PARTIES.index):
                ev.add("qc_failed_before", f"the item failed {qc.party} QC at {_when(qc.at)}, "
                       f"as received from the {prev}: the {party} only had it from then on",
                       "away", party, None, QC_FAILED_BEFORE)
            continue
        conflicts: list[str] = []
        if warm_core:
            conflicts.append(f"{qc.party} QC passed at {_when(qc.at)} although the core read "
                             f"{qc.core_c:.1f} °C (limit {_deg(limit)})")
        for seg in chain.segments[:handover.segment + 1]:
            if seg.party == prev and seg.profile_broken:
                conflicts.append(f"{qc.party} QC passed at {_when(qc.at)} but the {seg.label} "
                                 f"record shows {duration_text(seg.profile_excess_h)} above "
                                 f"{_deg(seg.profile_threshold_c)}")
        giver = _left_warm(chain, handover.segment)
        if giver is not None:
            conflicts.append(f"{qc.party} QC passed at {_when(qc.at)} but the last {giver.label} "
                             f"reading before the handover was {giver.last_c:.1f} °C")
        nxt = _arrived_warm(chain, handover.segment)
        if nxt is not None and nxt.party == qc.party:
            conflicts.append(f"{qc.party} QC passed at {_when(qc.at)} but the first "
                             f"{nxt.party} reading was already {nxt.first_c:.1f} °C")
        for text in conflicts:
            ev.add("qc_conflict", text, party=prev, segment=handover.segment, factor=CONFLICT)
        if not conflicts:
            ev.add("qc_passed", f"the {prev}'s goods passed {qc.party} QC at {_when(qc.at)}"
                   f"{core}{note}", "away", prev, handover.segment, QC_PASSED)


def _timing_reasons(ev: _Evidence, complaint_at: datetime) -> None:
    """When the complaint came, against the shelf life left at delivery."""
    chain = ev.chain
    params = chain.parameters
    delivery = chain.at_delivery
    if delivery is None:
        ev.add("no_delivery_record", "no handover to the customer on record, so the time "
               "between delivery and complaint is unknown")
        return
    since_h = (complaint_at - delivery.at).total_seconds() / 3600
    if since_h < 0:
        ev.add("complaint_before_delivery", f"the complaint at {_when(complaint_at)} is "
               f"{duration_text(-since_h)} before the recorded delivery at {_when(delivery.at)}",
               factor=CONFLICT)
        return
    home_c = params.limit_c
    life_h = delivery.remaining * shelf_life_at(params.model, params.shelf_life_ref_h, home_c)
    if since_h > life_h:
        ev.add("kept_past_shelf_life", f"complaint {duration_text(since_h)} after delivery; the "
               f"{delivery.remaining:.0%} shelf life left at delivery lasts about "
               f"{duration_text(life_h)} at {_deg(home_c)}", "toward", "customer", None,
               KEPT_PAST_LIFE)
    elif since_h <= 0.25 * life_h:
        ev.add("complaint_soon_after_delivery", f"complaint {duration_text(since_h)} after "
               "delivery "
               f"with {delivery.remaining:.0%} shelf life left at delivery (about "
               f"{duration_text(life_h)} at {_deg(home_c)})", "away", "customer", None,
               COMPLAINT_SOON)
    after_h = (complaint_at - chain.end).total_seconds() / 3600
    if after_h > 0.01:
        ev.add("no_record_until_complaint", f"no record for the {duration_text(after_h)} between "
               "the end of the record and the complaint", party="customer")


def _scores(reasons: Iterable[Reason], codes: frozenset[str] | None = None) -> dict[str, float]:
    totals = dict.fromkeys(PARTIES, 0.0)
    for reason in reasons:
        if reason.party is None or reason.direction == "neutral":
            continue
        if codes is not None and (reason.code not in codes or reason.weight < 0):
            continue
        totals[reason.party] += reason.weight
    return {party: round(max(0.0, total), 3) for party, total in totals.items()}


def _factor(reasons: Iterable[Reason]) -> float:
    return math.prod(r.confidence_factor for r in reasons)


def _sensor_reasons(ev: _Evidence, party: Party) -> None:
    """Placement and calibration of the sensors behind the evidence against ``party``."""
    chain, policy = ev.chain, ev.policy
    indexes = sorted({r.segment for r in ev.reasons if r.party == party and r.segment is not None
                      and r.direction == "toward" and r.code in TEMPERATURE_CODES})
    segments = [chain.segments[i] for i in indexes if chain.segments[i].has_record]
    if not segments:
        return
    worst = min(segments, key=ev.placement_weight)
    weight = ev.placement_weight(worst)
    if weight < 1.0:
        where = ("in air, not in the product" if worst.sensor.placement == "air"
                 else "at an unknown placement (air or product)")
        ev.add("sensor_placement", f"the {worst.label} temperatures were measured {where}",
               party=party, segment=worst.index, factor=weight)
    uncalibrated = [s for s in segments if s.sensor.calibrated is False]
    unknown = [s for s in segments if s.sensor.calibrated is None]
    if uncalibrated:
        seg = uncalibrated[0]
        ev.add("sensor_uncalibrated", f"sensor {seg.sensor.source or '?'} of the {seg.label} is "
               "not calibrated", party=party, segment=seg.index,
               factor=policy.uncalibrated_factor)
    elif unknown:
        seg = unknown[0]
        ev.add("sensor_calibration_unknown", f"calibration of sensor {seg.sensor.source or '?'} "
               f"of the {seg.label} is unknown", party=party, segment=seg.index,
               factor=policy.calibration_unknown_factor)


def attribute(chain: ChainReport, *, complaint_at: datetime | None = None,
              complaint_category: str | None = None,
              policy: AttributionPolicy = DEFAULT_POLICY) -> Attribution:
    """Decide who is responsible for a complaint about the item of ``chain``, and why."""
    if complaint_at is not None and (complaint_at.tzinfo is None
                                     or complaint_at.utcoffset() is None):
        raise ValueError("complaint_at must be a timezone-aware datetime")
    category = complaint_category.strip().lower() if complaint_category else None
    ev = _Evidence(chain, policy)
    _record_reasons(ev)
    _segment_reasons(ev)
    _allowance_reasons(ev)
    _handover_reasons(ev)
    _qc_reasons(ev)
    if complaint_at is not None:
        _timing_reasons(ev, complaint_at)

    temperature = _scores(ev.reasons, TEMPERATURE_CODES)
    explained = (max(temperature.values()) >= policy.min_score
                 or chain.shelf_life_consumed >= 1.0)
    qc_failed = any(r.code == "qc_failed" for r in ev.reasons)

    # Customers keep no logs: the time at the customer's is usually unrecorded, and must not
    # hide a clear breach upstream (it still lowers the confidence through "coverage").
    upstream = [seg for seg in chain.segments if seg.party != "customer"] or list(chain.segments)
    upstream_h = sum(seg.hours for seg in upstream)
    recorded = (sum(seg.known_h for seg in upstream) / upstream_h if upstream_h
                else chain.coverage)
    if recorded < policy.min_coverage and not qc_failed:
        ev.add("too_little_data", f"temperature known for only {recorded:.0%} of the "
               f"{duration_text(upstream_h)} before delivery; at least {policy.min_coverage:.0%} "
               "is needed to attribute")
        return Attribution("undetermined", 0.0, ev.reasons, _scores(ev.reasons), explained,
                           chain.item)

    if explained:
        if category == "damaged":
            ev.add("category_conflict", "the complaint is about damage; temperature abuse "
                   "spoils produce but does not crush it", factor=CATEGORY_CONFLICT)
    else:
        used = chain.shelf_life_consumed
        if used < policy.unexplained_below:
            ev.add("not_explained_by_temperature", f"only {used:.0%} of the shelf life was "
                   "used and no segment broke its profile: temperature does not explain the "
                   "complaint (look at mechanical damage, initial infection, handling after "
                   "delivery)")
        else:
            ev.add("within_allowances", f"{used:.0%} of the shelf life was used, but no "
                   "custodian broke its profile or exceeded its allowance")
        if category == "damaged":
            ev.add("damage_hint", "the complaint is about damage, which happens in handling; "
                   "the last handling before the customer was the delivery", "toward",
                   "delivery", None, DAMAGE_HINT["delivery"])
            ev.add("damage_hint", "damage after delivery is on the customer's side", "toward",
                   "customer", None, DAMAGE_HINT["customer"])
        elif category == "temperature":
            ev.add("category_conflict", "the complaint is about temperature but the record "
                   "shows no excursion that explains it", factor=CONFLICT)

    scores = _scores(ev.reasons)
    best = max(PARTIES, key=lambda p: (scores[p], -PARTIES.index(p)))
    if scores[best] < policy.min_score:
        if explained:
            ev.add("weak_evidence", f"the evidence against the {best} (score "
                   f"{scores[best]:.2f}) is too weak to decide")
            confidence = 0.0
        else:
            confidence = _factor(ev.reasons)
        return Attribution("undetermined", round(min(1.0, max(0.0, confidence)), 3),
                           ev.reasons, scores, explained, chain.item)

    others = [p for p in PARTIES if p != best and scores[p] >= policy.min_score]
    total = sum(scores.values())
    share = scores[best] / total
    if others:
        named = [f"the {p} (score {scores[p]:.2f})" for p in (best, *others)]
        listed = ", ".join(named[:-1]) + " and " + named[-1]
        ev.add("several_parties", f"{listed} all have evidence against them; the {best} has "
               f"the largest share ({share:.0%})", factor=SEVERAL_PARTIES)
    _sensor_reasons(ev, best)
    evidence = scores[best] / (scores[best] + EVIDENCE_HALF)
    confidence = evidence * share * _factor(ev.reasons)
    hint_only = all(r.code in HINT_CODES for r in ev.reasons
                    if r.party == best and r.direction == "toward")
    if hint_only:
        confidence = min(confidence, HINT_ONLY_CAP)
    return Attribution(best, round(min(1.0, max(0.0, confidence)), 3), ev.reasons, scores,
                       explained, chain.item)


def attribute_order(chains: Sequence[ChainReport], *, complaint_at: datetime | None = None,
                    complaint_category: str | None = None,
                    policy: AttributionPolicy = DEFAULT_POLICY) -> Attribution:
    """Attribute each item of an order, then the order: the party with the most confidence.

    The order's confidence is the winning party's summed item confidence divided by the
    number of items; its reasons are every item's reasons (each carries its ``item``) after
    one ``order_items`` reason that lists the items' outcomes.
    """
    if not chains:
        raise ValueError("an order needs at least one item's cold chain")
    items = [attribute(c, complaint_at=complaint_at, complaint_category=complaint_category,
                       policy=policy) for c in chains]
    votes = dict.fromkeys(PARTIES, 0.0)
    for result in items:
        if result.party != "undetermined":
            votes[result.party] += result.confidence
    best = max(PARTIES, key=lambda p: (votes[p], -PARTIES.index(p)))
    party: Outcome = best if votes[best] > 0 else "undetermined"
    confidence = votes[best] / len(items) if party != "undetermined" else 0.0
    listing = "; ".join(f"{a.item or '?'}: {a.party} ({a.confidence:.0%})" for a in items)
    lead = Reason("order_items", f"items: {listing}", "toward" if party != "undetermined"
                  else "neutral", best if party != "undetermined" else None)
    scores: dict[str, float] = {p: round(sum(a.scores[p] for a in items) / len(items), 3)
                                for p in PARTIES}
    return Attribution(party, round(min(1.0, confidence), 3),
                       [lead, *(r for a in items for r in a.reasons)], scores,
                       any(a.explained_by_temperature for a in items))


# --- configuration -------------------------------------------------------------------------

def policy_from_settings(mapping: Mapping[str, Any], *, source: str = "coldchain settings"
                         ) -> AttributionPolicy:
    """:class:`AttributionPolicy` from a document's optional ``[attribution]`` table.

    ``[attribution.allowances]`` and ``[attribution.placement_weights]`` replace the defaults
    per key; the other keys are the policy's numeric fields. Errors name the key.
    """
    table = mapping.get("attribution", {})
    if not isinstance(table, Mapping):
        raise ConfigError(f"{source}: key 'attribution': expected a table (got {table!r})")
    numeric = ("min_coverage", "min_score", "unexplained_below", "degree_hours_scale",
               "uncalibrated_factor", "calibration_unknown_factor", "skew_tolerance_s",
               "clear_coverage")
    values: dict[str, Any] = {}
    for name, raw in table.items():
        key = f"attribution.{name}"
        if name in ("allowances", "placement_weights"):
            if not isinstance(raw, Mapping):
                raise ConfigError(f"{source}: key '{key}': expected a table (got {raw!r})")
            known = PARTIES if name == "allowances" else tuple(PLACEMENT_WEIGHTS)
            merged = dict(DEFAULT_ALLOWANCES if name == "allowances" else PLACEMENT_WEIGHTS)
            for sub, value in raw.items():
                if sub not in known:
                    raise ConfigError(f"{source}: key '{key}.{sub}': unknown (expected "
                                      f"{', '.join(known)})")
                if isinstance(value, bool) or not isinstance(value, int | float) \
                        or not 0 < value <= 1:
                    raise ConfigError(f"{source}: key '{key}.{sub}': expected a number in "
                                      f"(0, 1] (got {value!r})")
                merged[sub] = float(value)
            values[name] = merged
        elif name in numeric:
            if isinstance(raw, bool) or not isinstance(raw, int | float):
                raise ConfigError(f"{source}: key '{key}': expected a number (got {raw!r})")
            values[name] = float(raw)
        else:
            raise ConfigError(f"{source}: key '{key}': unknown key (expected "
                              f"{', '.join(('allowances', 'placement_weights', *numeric))})")
    try:
        return AttributionPolicy(**values)
    except ValueError as err:
        raise ConfigError(f"{source}: [attribution]: {err}") from None
