"""Shadow runs: a delivered model grades beside the current one, then is promoted or dropped."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.gateway import build_gateway
from edge.ports import GradeDecision
from edge.settings import GatewaySettings
from edge.shadow import ShadowGrader, ShadowVerdict
from edge.tflite_grader import MODELS_DIR
from firmware_sim.clock import VirtualClock
from firmware_sim.devices import SimulatedHardware
from protocols.messages import Command, Grade
from protocols.tag import TagRecord


class Fixed:
    """A grader that always answers the same."""

    def __init__(self, version: str, grade: Grade) -> None:
        self.version, self.answer = version, grade

    def grade(self, features: dict[str, float | None]) -> GradeDecision:
        return GradeDecision(self.answer, self.version, {self.answer.value: 1.0}, features)


@pytest.mark.parametrize(("candidate_grade", "promoted"), [(Grade.RESELL, True),
                                                           (Grade.SCRAP, False)])
def test_candidate_decided_after_enough_scans(candidate_grade: Grade, promoted: bool) -> None:
    verdicts: list[ShadowVerdict] = []
    shadow = ShadowGrader(Fixed("old", Grade.RESELL), scans_needed=5, on_verdict=verdicts.append)
    shadow.offer(Fixed("new", candidate_grade))
    answers = [shadow.grade({}) for _ in range(6)]
    assert all(a.model_version == "old" for a in answers[:5])  # the worker sees the current one
    assert answers[0].shadow == {"model": "new", "grade": candidate_grade.value,
                                 "agrees": candidate_grade is Grade.RESELL}
    assert verdicts == [ShadowVerdict("new", 5, 1.0 if promoted else 0.0, promoted)]
    assert shadow.version == ("new" if promoted else "old") and shadow.candidate is None
    assert answers[5].shadow is None


T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def test_model_delivered_to_a_gateway_is_shadow_run_and_reported(tmp_path: Path) -> None:
    clock = VirtualClock(T0)
    settings = GatewaySettings.model_validate({
        "id": "gw-s", "site": "s1", "data_dir": tmp_path, "stations": [{"id": "st-1"}]})
    with SimulatedHardware(clock, tmp_path / "tty") as hardware:
        gateway = build_gateway(settings, hardware, clock=clock)
        commands = gateway.uplink.commands
        assert commands is not None
        content = (MODELS_DIR / "grader-1.tflite").read_bytes()
        args = {"version": "grader-1", "sha256": hashlib.sha256(content).hexdigest(),
                "size": len(content), "content_b64": base64.b64encode(content).decode(),
                "card": json.loads((MODELS_DIR / "grader-1.json").read_text())}
        commands.handle("model", Command(id="m1", ts=T0, args=args).encode())
        station = gateway.stations["st-1"]
        shadow = station.grader
        assert isinstance(shadow, ShadowGrader)
        assert shadow.candidate is not None  # on trial, not yet in force
        devices = hardware.stations["st-1"]
        grades = []
        for n in range(shadow.scans_needed):
            clock.advance(30)
            devices.set_core_temperature(2.0 + (n % 10))
            devices.present_tag(f"{n + 1:08x}", TagRecord(f"IT-{n:06d}", "L1", "06901234000115",
                                                         T0 - timedelta(hours=10)))
            grades += [o.grade for o in gateway.poll_once() if o.grade is not None]
            devices.remove_tag()
            gateway.poll_once()
        assert all(g.model_version == "rules-0.1" and g.shadow is not None
                   and g.shadow["model"] == "grader-1" for g in grades)
        agreement = sum(g.shadow is not None and g.shadow["agrees"] is True
                        for g in grades) / len(grades)
        promoted = agreement >= shadow.min_agreement
        kind, messages = gateway.uplink._inbox.get_nowait()
        report = json.loads(messages[0][1])["command"]
        assert kind == "send" and report["shadow"]["agreement"] == pytest.approx(agreement)
        assert report["status"] == ("promoted" if promoted else "rolled_back")
        assert commands.models.active_version == ("grader-1" if promoted else None)
        assert station.grader.version == ("grader-1" if promoted else "rules-0.1")
        gateway.outbox.close()
