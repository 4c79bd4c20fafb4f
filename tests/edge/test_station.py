"""A station's flow on simulated devices: debounce, grades, faults, lights on real gpiozero pins."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge.errors import OutboxFull
from edge.grader import RuleGrader
from edge.outbox import MessageClass, NewMessage, Outbox
from edge.ports import Light
from edge.recorder import Recorder
from edge.settings import StationSettings
from edge.station import Station
from firmware_sim.clock import VirtualClock
from firmware_sim.devices import SimulatedHardware
from firmware_sim.mifare import MifareClassic1K
from protocols.tag import TagRecord

NOW = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
RECORD = TagRecord("IT-000001-1", "L261101-1", "06901234000115", NOW - timedelta(hours=30),
                   high_risk=True)


@pytest.fixture
def rig(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A station on simulated devices under the real mfrc522, pyserial and gpiozero code."""
    clock = VirtualClock(NOW)
    settings = StationSettings(id="st-1")
    outbox = Outbox(tmp_path / "outbox.db")
    recorder = Recorder("gw-1", "site-a", outbox.next_boot(), outbox, clock)
    with SimulatedHardware(clock, tmp_path) as hardware:
        station = Station("st-1", hardware.tag_reader(settings), hardware.probe(settings),
                          hardware.indicator(settings), RuleGrader(), recorder)
        yield station, hardware.station(settings), outbox


def _payloads(outbox: Outbox) -> list[dict[str, Any]]:
    return [json.loads(p.payload) for p in outbox.due(100, now=NOW.timestamp(), retry_after_s=1)]


def test_tag_lying_on_pad_is_one_scan_and_represented_is_new(rig) -> None:  # type: ignore[no-untyped-def]
    station, devices, outbox = rig
    devices.set_core_temperature(2.5)
    devices.present_tag("a1b2c3d4", RECORD)
    first = station.poll()
    assert first is not None and first.light is Light.GREEN
    assert station.poll() is None and station.poll() is None
    devices.remove_tag()
    assert station.poll() is None
    devices.present_tag("a1b2c3d4", RECORD)
    assert station.poll() is not None
    kinds = [p["type"] for p in _payloads(outbox)]
    assert kinds == ["scan", "grade", "scan", "grade"]


@pytest.mark.parametrize(("temp", "light", "lamps"), [
    (2.0, Light.GREEN, ("green",)),
    (6.5, Light.AMBER, ("amber",)),
    (11.0, Light.RED, ("red",)),
])
def test_grade_lights_the_right_lamp_after_commit(rig, temp, light, lamps) -> None:  # type: ignore[no-untyped-def]
    station, devices, outbox = rig
    devices.set_core_temperature(temp)
    devices.present_tag("a1b2c3d4", RECORD)
    outcome = station.poll()
    assert outcome.light is light
    assert devices.lights.lit() == lamps
    scan, grade = _payloads(outbox)
    assert scan["core_temp_c"] == pytest.approx(temp, abs=0.2)  # the probe jitters
    assert scan["item_id"] == RECORD.item_id
    assert grade["scan_id"] == scan["id"]
    assert grade["features"]["hours_since_packed"] == pytest.approx(30.0)


def test_unplugged_probe_asks_for_a_check_by_hand(rig) -> None:  # type: ignore[no-untyped-def]
    station, devices, _outbox = rig
    devices.board.unplug(1)
    devices.board.send_now()
    devices.present_tag("a1b2c3d4", RECORD)
    outcome = station.poll()
    assert outcome.light is Light.PROBE_FAULT
    assert devices.lights.lit() == ("green", "red")
    assert outcome.grade.grade == "check" and outcome.grade.rule == "no_core_temperature"
    assert outcome.fault.code == "no_core_temperature"


def test_blank_tag_is_a_fault_with_its_own_light(rig) -> None:  # type: ignore[no-untyped-def]
    station, devices, outbox = rig
    devices.present_tag("0badcafe", data=bytes(48))
    outcome = station.poll()
    assert outcome.light is Light.FAULT
    assert devices.lights.lit() == ("amber", "red")
    (fault,) = _payloads(outbox)
    assert fault["code"] == "unreadable_tag" and "magic" in fault["detail"]


def test_two_tags_are_one_reported_fault_until_cleared(rig) -> None:  # type: ignore[no-untyped-def]
    station, devices, outbox = rig
    devices.present_tag("a1b2c3d4", RECORD)
    devices.field.present(MifareClassic1K(bytes.fromhex("0badcafe")))
    outcome = station.poll()
    assert outcome.fault is not None and outcome.fault.code == "reader_error"
    assert "two or more tags" in outcome.fault.detail
    assert station.poll() is None and station.poll() is None  # still there: reported once
    assert [p["code"] for p in _payloads(outbox)] == ["reader_error"]


def test_pin_states_follow_the_answer(rig) -> None:  # type: ignore[no-untyped-def]
    station, devices, _outbox = rig
    pins = {n: devices.pin_factory.pin(p) for n, p in
            (("green", 17), ("amber", 27), ("red", 22), ("gate", 24))}
    devices.set_core_temperature(11.0)
    devices.present_tag("a1b2c3d4", RECORD)
    station.poll()
    assert {n: p.state for n, p in pins.items()} == {"green": 0, "amber": 0, "red": 1, "gate": 1}
    assert devices.lights.gate_open()
    devices.remove_tag()
    station.poll()
    devices.set_core_temperature(2.0)
    devices.present_tag("a1b2c3d5", RECORD)
    station.poll()
    assert {n: p.state for n, p in pins.items()} == {"green": 1, "amber": 0, "red": 0, "gate": 0}


def test_tag_missing_from_the_manifest_gets_its_own_light(rig) -> None:  # type: ignore[no-untyped-def]
    station, devices, outbox = rig
    station.is_known = lambda item_id: item_id != RECORD.item_id
    devices.present_tag("a1b2c3d4", RECORD)
    outcome = station.poll()
    assert outcome.light is Light.UNKNOWN_TAG and devices.lights.lit() == ("green", "amber")
    assert [p.get("code", p["type"]) for p in _payloads(outbox)] == ["scan", "unknown_item"]


def test_full_disk_refuses_the_scan_and_commits_nothing(rig) -> None:  # type: ignore[no-untyped-def]
    station, devices, outbox = rig
    devices.set_core_temperature(2.0)
    outbox.limit_pages(64)  # SQLite itself answers "database or disk is full"
    filler = 0
    with pytest.raises(OutboxFull):
        while True:
            filler += 1
            outbox.put([NewMessage(f"x:1:{filler}", MessageClass.TELEMETRY, "t", bytes(2000))],
                       now=0.0)
    depth = outbox.depth()
    devices.present_tag("a1b2c3d4", RECORD)
    outcome = station.poll()
    assert outcome.light is Light.REFUSED and "disk is full" in outcome.refused
    assert devices.lights.lit() == ("green", "amber", "red")
    assert outbox.depth() == depth  # nothing half-written
    outbox.limit_pages(1_000_000)  # room again: the next presentation is recorded
    devices.remove_tag()
    station.poll()
    devices.present_tag("a1b2c3d4", RECORD)
    assert station.poll().light is Light.GREEN


def test_station_grades_with_the_tflite_model_and_the_manifest_summary(rig) -> None:  # type: ignore[no-untyped-def]
    from edge.manifest import ManifestItem
    from edge.tflite_grader import MODELS_DIR, TfliteGrader

    station, devices, _outbox = rig
    station.grader = TfliteGrader(MODELS_DIR / "grader-1.tflite")
    station.lookup = lambda item_id: ManifestItem(
        item_id=item_id, gtin=RECORD.gtin, lot=RECORD.lot, family="berries",
        hours_above_limit=0.0, degree_hours=0.0, shelf_life_used_frac=0.2)
    devices.set_core_temperature(2.0)
    devices.present_tag("a1b2c3d4", RECORD)
    outcome = station.poll()
    assert outcome.light is Light.GREEN
    assert outcome.grade.model_version == "grader-1" and outcome.grade.rule is None
    assert outcome.grade.features["family_berries"] == 1.0
    assert outcome.grade.features["shelf_life_used_frac"] == 0.2


def test_damage_button_marks_the_next_scan_only(tmp_path: Path) -> None:
    clock = VirtualClock(NOW)
    settings = StationSettings(id="st-1")
    outbox = Outbox(tmp_path / "outbox.db")
    recorder = Recorder("gw-1", "site-a", outbox.next_boot(), outbox, clock)
    with SimulatedHardware(clock, tmp_path) as hardware:
        button = hardware.damage_button(settings)
        assert button is not None
        station = Station("st-1", hardware.tag_reader(settings), hardware.probe(settings),
                          hardware.indicator(settings), RuleGrader(), recorder,
                          damaged=button.take)
        devices = hardware.station(settings)
        devices.set_core_temperature(2.0)
        flags = []
        for n, press in enumerate([True, False]):
            if press:
                devices.press_damaged()
            devices.present_tag(f"a1b2c3d{n}", RECORD)
            outcome = station.poll()
            assert outcome is not None and outcome.grade is not None
            flags.append(outcome.grade.features["damaged"])
            devices.remove_tag()
            station.poll()
        assert flags == [1.0, 0.0]
