"""Seeded scenarios: reproducible, consistent, with cold-chain histories behind complaints."""

from __future__ import annotations

import pytest

from firmware_sim.coldchain import CUSTODIANS
from firmware_sim.scenario import generate, shift_start
from protocols.tag import decode_tag, encode_tag


def test_same_seed_same_scenario_other_seed_other() -> None:
    assert generate(3, 60) == generate(3, 60)
    assert generate(3, 60) != generate(4, 60)


def test_counts_stations_and_probes() -> None:
    scenario = generate(1, 120, returns_per_hour=30, stations=3, ambient_probes=2)
    assert len(scenario.complaints) == 60
    assert scenario.stations == ("st-1", "st-2", "st-3")
    assert scenario.probes == ("st-1-core", "st-2-core", "st-3-core", "room-1", "room-2")
    assert {c.station for c in scenario.complaints} == set(scenario.stations)


def test_complaints_fall_in_the_shift_and_items_belong_to_orders() -> None:
    scenario = generate(9, 30, day=2)
    start = shift_start(2)
    for complaint in scenario.complaints:
        assert start <= complaint.at
        assert complaint.item in complaint.order.items
        assert complaint.order.order_id.startswith("O02-")
        assert decode_tag(encode_tag(complaint.item.tag)) == complaint.item.tag


def test_histories_follow_custody_and_faults_show_in_the_data() -> None:
    scenario = generate(11, 600)
    for complaint in scenario.complaints:
        history = complaint.history
        assert tuple(s.custodian for s in history.segments) == CUSTODIANS
        for before, after in zip(history.segments, history.segments[1:], strict=False):
            assert before.end == after.start
        warm = {s.custodian: s.max_c for s in history.segments}
        if history.fault == "truck_reefer":
            assert warm["truck"] > warm["warehouse"] + 5
        if "temperature" in complaint.text or "温" in complaint.text:
            assert history.fault in {"truck_reefer", "customer_doorstep"}


@pytest.mark.parametrize("bad", [{"minutes": 0}, {"minutes": 5, "day": 0},
                                 {"minutes": 5, "stations": 0}])
def test_bad_parameters_are_refused(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        generate(1, **bad)
