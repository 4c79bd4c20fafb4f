"""Geometry of a custody segment's temperature chart, drawn as inline SVG by the trace page.

Pure (no Flask, no database): :func:`segment_chart` takes the readings of one custody span,
the span's start and end, the profile threshold it is judged against (and the product's limit
when that differs) and the unknown stretches the segment report found, and returns
coordinates in the chart's own pixel space. The template only draws them.

The line follows the time rules of hub.segments (COLDCHAIN.md, "Excursions"): a reading holds
until the next one, so it is a step line; it breaks wherever the temperature is unknown (a
missing value, or a stretch the report lists as a gap) and is never drawn across one. Runs
above the threshold are separate polylines flagged ``above`` (drawn red), cut exactly where
the line crosses the threshold, so the red length is the time the report counts above it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hub.attribution import duration_text

Reading = tuple[datetime, float | None]  # when, °C (None: the logger reported no value)
Span = tuple[datetime, datetime]

WIDTH, HEIGHT = 600, 210  # about the size it is shown at: SVG text scales with the chart
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 40, 20, 22, 36
MAX_X_TICKS = 7
MAX_Y_TICKS = 6
MIN_SPAN_C = 4.0  # the temperature axis spans at least this much
MIN_LABELLED_BAND_PX = 56.0  # narrower "no record" bands keep only their tooltip
LABEL_CLEARANCE_PX = 14.0  # a band's label keeps this far from the threshold and limit lines
# Candidate spacings of time ticks, in minutes (5 min .. 1 week).
TIME_STEPS_MIN = (5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080)
DAY_S = 86400


@dataclass(frozen=True)
class Box:
    """The plot area inside the chart, in pixels."""

    left: float
    top: float
    width: float
    height: float

    @property
    def right(self) -> float:
        """The plot area's right edge."""
        return self.left + self.width

    @property
    def bottom(self) -> float:
        """The plot area's bottom edge."""
        return self.top + self.height


@dataclass(frozen=True)
class Polyline:
    """A continuous run of the temperature line, all above the threshold or all not."""

    points: tuple[tuple[float, float], ...]
    above: bool

    @property
    def svg_points(self) -> str:
        """The ``points`` attribute of an SVG polyline."""
        return " ".join(f"{x:g},{y:g}" for x, y in self.points)


@dataclass(frozen=True)
class Band:
    """A stretch with no temperature record: drawn as a hatched band over the plot's height."""

    x: float
    width: float
    start: datetime
    end: datetime
    label: str  # "no record", or "" when the band is too narrow to hold it
    title: str  # the tooltip: the times and the duration
    label_y: float  # the label's baseline, clear of the threshold and limit lines

    @property
    def hours(self) -> float:
        """Duration in hours."""
        return (self.end - self.start).total_seconds() / 3600


@dataclass(frozen=True)
class Tick:
    """An axis tick: its position (x for time, y for temperature) and its label."""

    at: float
    label: str
    detail: str = ""  # a second line under a time tick: the date where it changes


@dataclass(frozen=True)
class Rule:
    """A horizontal line across the plot at a temperature."""

    y: float
    value_c: float
    label: str


@dataclass(frozen=True)
class Chart:
    """Everything the template draws for one segment."""

    width: int
    height: int
    plot: Box
    lines: tuple[Polyline, ...]
    gaps: tuple[Band, ...]
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    threshold: Rule
    limit: Rule | None  # the product's limit, when the threshold is another (the customer's)
    y_min: float
    y_max: float
    start: datetime
    end: datetime

    @property
    def empty(self) -> bool:
        """Whether there is no line at all (no temperature known in the span)."""
        return not self.lines

    @property
    def has_excursion(self) -> bool:
        """Whether some of the line is above the threshold."""
        return any(line.above for line in self.lines)

    @property
    def hot_zone(self) -> Box:
        """The part of the plot above the threshold (tinted on the page)."""
        bottom = min(max(self.threshold.y, self.plot.top), self.plot.bottom)
        return Box(self.plot.left, self.plot.top, self.plot.width, bottom - self.plot.top)


def segment_chart(readings: Sequence[Reading], start: datetime, end: datetime, *,
                  threshold_c: float, limit_c: float | None = None, gaps: Sequence[Span] = (),
                  width: int = WIDTH, height: int = HEIGHT) -> Chart:
    """The chart of one custody span: step line, gaps, threshold, axes.

    ``readings`` outside [start, end] are left out. ``gaps`` are the unknown stretches of the
    segment report (``SegmentReport.gaps``): the line is not drawn in them. ``limit_c`` is
    drawn as a second, lighter rule when it differs from ``threshold_c``.
    """
    for name, moment in (("start", start), ("end", end)):
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"chart {name} must be a timezone-aware datetime")
    if end <= start:
        raise ValueError("a chart's span must end after it starts")
    inside = sorted((r for r in readings if start <= r[0] <= end), key=lambda r: r[0])
    known = [v for _, v in inside if v is not None]
    plot = Box(MARGIN_LEFT, MARGIN_TOP, width - MARGIN_LEFT - MARGIN_RIGHT,
               height - MARGIN_TOP - MARGIN_BOTTOM)
    extra_limit = limit_c if limit_c is not None and limit_c != threshold_c else None
    y_min, y_max, y_step = _value_range([*known, threshold_c,
                                         *([extra_limit] if extra_limit is not None else [])])
    t0, seconds = start.timestamp(), (end - start).total_seconds()

    def x_of(moment: datetime) -> float:
        return round(plot.left + (moment.timestamp() - t0) / seconds * plot.width, 1)

    def y_of(value: float) -> float:
        return round(plot.top + (y_max - value) / (y_max - y_min) * plot.height, 1)

    clipped = _clip_gaps(gaps, start, end)
    lines = []
    for run in _known_runs(inside, start, end, clipped):
        for points, above in _split(_steps(run), threshold_c):
            lines.append(Polyline(tuple((x_of(t), y_of(v)) for t, v in points), above))
    rules_y = [y_of(threshold_c), *([y_of(extra_limit)] if extra_limit is not None else [])]
    label_y = next((y for y in (plot.top + plot.height / 2 + 4, plot.top + 16, plot.bottom - 6)
                    if all(abs(y - 4 - rule) >= LABEL_CLEARANCE_PX for rule in rules_y)),
                   plot.top + plot.height / 2 + 4)
    bands = []
    for a, b in clipped:
        x0, x1 = x_of(a), x_of(b)
        hours = (b - a).total_seconds() / 3600
        bands.append(Band(x0, round(x1 - x0, 1), a, b,
                          "no record" if x1 - x0 >= MIN_LABELLED_BAND_PX else "",
                          f"no temperature record {_clock(a)} – {_clock(b)} UTC "
                          f"({duration_text(hours)})", round(label_y, 1)))
    y_ticks = tuple(Tick(y_of(v), f"{v:g}")
                    for v in _frange(y_min, y_max, y_step))
    x_ticks = tuple(Tick(x_of(at), label, detail) for at, label, detail in _time_ticks(start, end))
    threshold = Rule(y_of(threshold_c), threshold_c, f"threshold {threshold_c:g} °C")
    limit = (Rule(y_of(extra_limit), extra_limit, f"limit {extra_limit:g} °C")
             if extra_limit is not None else None)
    return Chart(width, height, plot, tuple(lines), tuple(bands), x_ticks, y_ticks, threshold,
                 limit, y_min, y_max, start, end)


# --- the line ------------------------------------------------------------------------------

_Piece = tuple[datetime, datetime, float]  # a stretch held by one known value


def _clip_gaps(gaps: Sequence[Span], start: datetime, end: datetime) -> list[Span]:
    """The gaps inside [start, end], in order, overlapping ones merged."""
    merged: list[Span] = []
    for a, b in sorted((max(a, start), min(b, end)) for a, b in gaps):
        if b <= a:
            continue
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def _known_runs(readings: Sequence[Reading], start: datetime, end: datetime,
                gaps: Sequence[Span]) -> list[list[_Piece]]:
    """Stretches of known temperature, each a list of touching pieces, gaps cut out."""
    if not readings:
        return []
    bounds = [start, *(at for at, _ in readings[1:]), end]
    pieces: list[_Piece] = []
    for (_, value), (a, b) in zip(readings, itertools.pairwise(bounds), strict=True):
        if value is None:
            continue
        # the first reading also stands for the lead-in since the start (hub.segments)
        pieces += [(x, y, value) for x, y in _subtract((a, b), gaps) if y > x]
    runs: list[list[_Piece]] = []
    for piece in pieces:
        if runs and runs[-1][-1][1] == piece[0]:
            runs[-1].append(piece)
        else:
            runs.append([piece])
    return runs


def _subtract(span: Span, gaps: Sequence[Span]) -> list[Span]:
    """``span`` minus the (sorted, merged) gaps."""
    a, b = span
    left: list[Span] = []
    for g0, g1 in gaps:
        if g1 <= a or g0 >= b:
            continue
        if g0 > a:
            left.append((a, g0))
        a = max(a, g1)
        if a >= b:
            return left
    left.append((a, b))
    return left


def _steps(run: Sequence[_Piece]) -> list[tuple[datetime, float]]:
    """The vertices of a step line over touching pieces (risers where the value changes)."""
    points: list[tuple[datetime, float]] = []
    for a, b, value in run:
        if points and points[-1][1] == value:
            points[-1] = (b, value)  # the same value goes on: one longer flat stretch
            continue
        points.append((a, value))
        points.append((b, value))
    return points


def _split(points: Sequence[tuple[datetime, float]], threshold: float
           ) -> list[tuple[list[tuple[datetime, float]], bool]]:
    """Cut a polyline where it crosses ``threshold``: (points, above) runs, in order.

    A point exactly at the threshold is not above it (the excursion rules count ``>``).
    """
    if len(points) == 1:
        return [([points[0], points[0]], points[0][1] > threshold)]
    runs: list[tuple[list[tuple[datetime, float]], bool]] = []
    current = [points[0]]
    above = points[0][1] > threshold
    for p, q in itertools.pairwise(points):
        q_above = q[1] > threshold
        if q_above == above:
            current.append(q)
            continue
        cross = _crossing(p, q, threshold)
        if cross != current[-1]:
            current.append(cross)
        runs.append((current, above))
        current = [cross] if cross == q else [cross, q]
        above = q_above
    runs.append((current, above))
    return [(run, hot) for run, hot in runs if len(run) > 1]


def _crossing(p: tuple[datetime, float], q: tuple[datetime, float], threshold: float
              ) -> tuple[datetime, float]:
    """Where the segment p-q meets the threshold (a riser meets it at its own time)."""
    if p[1] == q[1]:
        return q
    share = (threshold - p[1]) / (q[1] - p[1])
    return (p[0] + (q[0] - p[0]) * share, threshold)


# --- axes ----------------------------------------------------------------------------------


def _value_range(values: Sequence[float]) -> tuple[float, float, float]:
    """A rounded temperature axis holding every value with some room: (low, high, step)."""
    lo, hi = min(values), max(values)
    if hi - lo < MIN_SPAN_C:  # a flat record or no record: do not magnify the noise
        middle = (lo + hi) / 2
        lo, hi = middle - MIN_SPAN_C / 2, middle + MIN_SPAN_C / 2
    pad = max(0.5, 0.08 * (hi - lo))
    lo, hi = lo - pad, hi + pad
    step = _nice_step((hi - lo) / (MAX_Y_TICKS - 1))
    return (_round_to(math.floor(lo / step) * step), _round_to(math.ceil(hi / step) * step),
            step)


def _nice_step(raw: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k that is at least ``raw``."""
    exponent = math.floor(math.log10(raw))
    for factor in (1.0, 2.0, 2.5, 5.0, 10.0):
        step = factor * 10.0 ** exponent
        if step >= raw - 1e-12:
            return _round_to(step)
    return _round_to(10.0 ** (exponent + 1))  # pragma: no cover - 10 x 10^k always fits


def _round_to(value: float) -> float:
    return round(value, 6) + 0.0  # + 0.0: no "-0"


def _frange(lo: float, hi: float, step: float) -> list[float]:
    count = round((hi - lo) / step)
    return [_round_to(lo + n * step) for n in range(count + 1)]


def _time_ticks(start: datetime, end: datetime) -> list[tuple[datetime, str, str]]:
    """Time ticks on round UTC times, at most MAX_X_TICKS; the date shown where it changes."""
    seconds = (end - start).total_seconds()
    step_s = next((m * 60 for m in TIME_STEPS_MIN if seconds / (m * 60) <= MAX_X_TICKS),
                  TIME_STEPS_MIN[-1] * 60)
    while seconds / step_s > MAX_X_TICKS:  # longer than the largest step allows
        step_s *= 2
    first = math.ceil(start.timestamp() / step_s) * step_s
    ticks: list[tuple[datetime, str, str]] = []
    last_day = None
    moment = datetime.fromtimestamp(first, UTC)
    while moment <= end:
        day = moment.date()
        if step_s >= DAY_S:
            ticks.append((moment, _date(moment), ""))
        else:
            ticks.append((moment, f"{moment:%H:%M}", _date(moment) if day != last_day else ""))
        last_day = day
        moment += timedelta(seconds=step_s)
    return ticks


def _date(moment: datetime) -> str:
    return f"{moment.day} {moment:%b}"


def _clock(moment: datetime) -> str:
    return f"{_date(moment.astimezone(UTC))} {moment.astimezone(UTC):%H:%M}"


