"""The geometry of a segment's temperature chart (hub.web.charts), without Flask."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from hub.segments import CustodySpan, segment_report
from hub.web.charts import Chart, segment_chart
from protocols.coldchain import FAMILIES

T0 = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
# A 120 x 100 px plot: with a 2-hour span, one pixel per minute.
WIDTH, HEIGHT = 40 + 120 + 20, 22 + 100 + 36


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def every_15_min(*values: float | None) -> list[tuple[datetime, float | None]]:
    return [(at(15 * n), value) for n, value in enumerate(values)]


def chart(readings: list[tuple[datetime, float | None]], *, minutes: float = 120,
          threshold_c: float = 4.0, limit_c: float | None = None,
          gaps: Sequence[tuple[datetime, datetime]] = ()) -> Chart:
    return segment_chart(readings, T0, at(minutes), threshold_c=threshold_c, limit_c=limit_c,
                         gaps=gaps, width=WIDTH, height=HEIGHT)


def lines(found: Chart) -> list[tuple[bool, tuple[tuple[float, float], ...]]]:
    return [(line.above, line.points) for line in found.lines]


def test_a_step_line_scaled_into_the_plot_and_cut_red_at_the_threshold() -> None:
    found = chart(every_15_min(2, 2, 3, 6, 6, 3, 2, 2))

    # values 2..6 and the 4 °C threshold, padded, on whole degrees: 1..7 over 100 px
    assert (found.y_min, found.y_max) == (1.0, 7.0)
    assert (found.plot.left, found.plot.top, found.plot.width, found.plot.height) == (
        40, 22, 120, 100)
    y2, y3, y4, y6 = 105.3, 88.7, 72.0, 38.7  # 22 + (7 - v) * 100 / 6
    assert lines(found) == [
        (False, ((40, y2), (70, y2), (70, y3), (85, y3), (85, y4))),
        (True, ((85, y4), (85, y6), (115, y6), (115, y4))),  # from 00:45 to 01:15
        (False, ((115, y4), (115, y3), (130, y3), (130, y2), (160, y2))),
    ]
    assert found.threshold.y == y4 and found.threshold.label == "threshold 4 °C"
    assert found.limit is None and found.gaps == () and found.has_excursion
    assert found.hot_zone.top == 22 and found.hot_zone.height == 50.0
    assert found.lines[1].svg_points == "85,72 85,38.7 115,38.7 115,72"


def test_a_reading_holds_until_the_next_and_the_first_one_since_the_start() -> None:
    found = chart([(at(30), 3.0), (at(60), 3.0), (at(90), 2.0)])

    (above, points), = lines(found)
    assert not above
    assert [x for x, _ in points] == [40, 130, 130, 160]  # 00:00 (lead-in) .. 02:00


def test_a_value_exactly_at_the_threshold_is_not_above_it() -> None:
    found = chart(every_15_min(4, 4, 5, 4))

    assert [(above, [x for x, _ in pts]) for above, pts in lines(found)] == [
        (False, [40, 70]), (True, [70, 70, 85, 85]), (False, [85, 160])]


def test_a_detected_gap_breaks_the_line_and_is_a_labelled_band() -> None:
    readings = every_15_min(*[3.0] * 9)
    found = chart(readings, gaps=[(at(20), at(100))], threshold_c=8.0)

    assert [[x for x, _ in pts] for _, pts in lines(found)] == [[40, 60], [140, 160]]
    (band,) = found.gaps
    assert (band.x, band.width, band.label) == (60, 80, "no record")
    assert band.title == "no temperature record 1 Nov 00:20 – 1 Nov 01:40 UTC (1.3 h)"
    assert band.hours == pytest.approx(80 / 60)
    assert found.threshold.y == 47.0
    assert band.label_y == 22 + 50 + 4  # mid-height, clear of the threshold


def test_a_band_label_keeps_clear_of_the_threshold() -> None:
    found = chart(every_15_min(*[3.0] * 9), gaps=[(at(20), at(100))])

    (band,) = found.gaps
    assert found.threshold.y == 62.0  # 4 °C on a 1..6 °C axis: near mid-height
    assert band.label_y == 22 + 16  # so the label goes to the top


def test_a_narrow_gap_keeps_only_its_tooltip() -> None:
    found = chart(every_15_min(*[3.0] * 9), gaps=[(at(30), at(60))])

    assert [g.label for g in found.gaps] == [""]
    assert len(found.lines) == 2


def test_gaps_are_clipped_to_the_span_and_merged() -> None:
    found = chart(every_15_min(*[3.0] * 9),
                  gaps=[(at(-60), at(10)), (at(100), at(110)), (at(105), at(200))])

    assert [(g.x, g.width) for g in found.gaps] == [(40, 10), (140, 20)]
    assert [[x for x, _ in pts] for _, pts in lines(found)] == [[50, 140]]


def test_a_missing_value_breaks_the_line_even_without_a_gap() -> None:
    found = chart(every_15_min(2, 2, None, 2))

    assert [[x for x, _ in pts] for _, pts in lines(found)] == [[40, 70], [85, 160]]


def test_readings_outside_the_span_are_left_out() -> None:
    found = chart([(at(-30), 40.0), (at(0), 3.0), (at(150), 40.0)])

    assert not found.has_excursion
    assert found.y_max < 10


def test_no_readings_is_an_empty_chart_around_the_threshold() -> None:
    found = chart([], gaps=[(T0, at(120))])

    assert found.empty and found.lines == ()
    assert [(g.x, g.width, g.label) for g in found.gaps] == [(40, 120, "no record")]
    assert found.y_min < 4 < found.y_max


def test_the_limit_is_drawn_when_it_is_not_the_threshold() -> None:
    found = chart(every_15_min(20, 21), threshold_c=25.0, limit_c=18.0)

    assert found.limit is not None
    assert (found.limit.value_c, found.limit.label) == (18.0, "limit 18 °C")
    assert found.limit.y > found.threshold.y  # colder is lower
    assert chart(every_15_min(3), limit_c=4.0).limit is None


def test_temperature_ticks_are_round_and_cover_the_values() -> None:
    found = chart(every_15_min(2, 6))

    assert [t.label for t in found.y_ticks] == ["1", "2", "3", "4", "5", "6", "7"]
    assert [t.at for t in found.y_ticks] == [122, 105.3, 88.7, 72, 55.3, 38.7, 22]

    wide = chart(every_15_min(-18.5, 31.0))
    steps = {round(b.at - a.at, 1) for a, b in zip(wide.y_ticks, wide.y_ticks[1:],
                                                   strict=False)}
    assert [t.label for t in wide.y_ticks] == ["-40", "-20", "0", "20", "40"]
    assert len(steps) <= 2  # evenly spaced (up to rounding)
    assert wide.y_min <= -18.5 and wide.y_max >= 31


def test_time_ticks_fall_on_round_times_with_the_date_where_it_changes() -> None:
    found = chart(every_15_min(3), minutes=120)
    assert [(t.at, t.label, t.detail) for t in found.x_ticks] == [
        (40, "00:00", "1 Nov"), (70, "00:30", ""), (100, "01:00", ""), (130, "01:30", ""),
        (160, "02:00", "")]

    evening = segment_chart([], T0 - timedelta(hours=7, minutes=10), T0 + timedelta(hours=5),
                            threshold_c=4.0)
    assert [(t.label, t.detail) for t in evening.x_ticks] == [
        ("18:00", "31 Oct"), ("20:00", ""), ("22:00", ""), ("00:00", "1 Nov"), ("02:00", ""),
        ("04:00", "")]


def test_long_spans_get_day_ticks() -> None:
    found = segment_chart([], T0, T0 + timedelta(days=30), threshold_c=4.0)

    assert 2 <= len(found.x_ticks) <= 7
    assert all(t.detail == "" and t.label.endswith("Nov") for t in found.x_ticks)


@pytest.mark.parametrize("values", [
    (2, 5, 6, 3, 2, 9, 9, 4, 1),
    (5, 5, None, 6, 3, 4.5, 2, 8),
    (8, 8, 8, 8),
])
def test_the_red_line_lasts_as_long_as_the_report_counts_above_the_limit(
        values: tuple[float | None, ...]) -> None:
    readings = [(at(15 * n), v) for n, v in enumerate(values)]
    readings.insert(3, (at(15 * 3 + 50), 3.0))  # a late reading: the spacing before is a gap
    readings.sort(key=lambda r: r[0])
    end = at(15 * len(values) + 60)
    span = CustodySpan("warehouse", "wh-1", "wh-1", T0, end, readings, sampling_s=900)
    report = segment_report(span, FAMILIES["berries"])  # limit 4 °C

    found = segment_chart(readings, T0, end, threshold_c=report.profile_threshold_c,
                          limit_c=report.limit_c, gaps=report.gaps)

    hours_per_px = report.hours / found.plot.width
    red_h = sum((line.points[-1][0] - line.points[0][0]) * hours_per_px
                for line in found.lines if line.above)
    known_h = sum((line.points[-1][0] - line.points[0][0]) * hours_per_px
                  for line in found.lines)
    assert red_h == pytest.approx(report.hours_above_limit, abs=0.01)
    assert known_h == pytest.approx(report.known_h, abs=0.01)
    assert len(found.gaps) == len(report.gaps)


def test_a_span_must_be_aware_and_not_empty() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        segment_chart([], T0.replace(tzinfo=None), at(60), threshold_c=4.0)
    with pytest.raises(ValueError, match="end after it starts"):
        segment_chart([], T0, T0, threshold_c=4.0)
