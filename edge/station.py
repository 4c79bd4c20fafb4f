"""One scan station: tag -> item -> probe -> grade -> durable commit -> light."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from edge.errors import OutboxFull, ReaderFault
from edge.features import ScanFacts, features
from edge.ports import Grader, Indicator, Light, TagRead, TagReader, TemperatureProbe
from edge.recorder import Recorder
from protocols.errors import TagError
from protocols.messages import FaultEvent, Grade, GradeEvent, ScanEvent, Severity
from protocols.tag import TagRecord, decode_tag

logger = logging.getLogger(__name__)

LIGHT_FOR_GRADE = {Grade.RESELL: Light.GREEN, Grade.DISCOUNT: Light.AMBER,
                   Grade.SCRAP: Light.RED, Grade.CHECK: Light.AMBER}


@dataclass(frozen=True, slots=True)
class ScanOutcome:
    """What one scan produced: the events committed and the light shown."""

    light: Light
    scan: ScanEvent | None = None
    grade: GradeEvent | None = None
    fault: FaultEvent | None = None
    refused: str | None = None  # why nothing could be recorded (disk full)


class Station:
    """Polls its reader; each newly presented tag is graded once (a tag lying there is one scan)."""

    def __init__(self, station_id: str, reader: TagReader, probe: TemperatureProbe,
                 indicator: Indicator, grader: Grader, recorder: Recorder,
                 is_known: Callable[[str], bool] | None = None,
                 lookup: Callable[[str], Any] | None = None,
                 damaged: Callable[[], bool] | None = None) -> None:
        self.station_id = station_id
        self.is_known = is_known  # the hub's manifest: None until one has arrived
        self.lookup = lookup  # the manifest's entry for an item (its cold-chain summary)
        self.damaged = damaged  # the worker's damage button: pressed since the last scan?
        self.reader = reader
        self.probe = probe
        self.indicator = indicator
        self.grader = grader
        self.recorder = recorder
        self._present_uid: str | None = None
        self._present_fault: str | None = None
        self.reader_errors = 0

    def poll(self) -> ScanOutcome | None:
        """Read the pad once; return the outcome of a new scan, or None when nothing is new."""
        try:
            tag = self.reader.read()
        except ReaderFault as err:
            self.reader_errors += 1
            if str(err) == self._present_fault:
                return None  # the same bad tag still lying there: reported once
            self._present_fault, self._present_uid = str(err), None
            return self._fault("rfid", "reader_error", str(err), Severity.WARNING)
        self._present_fault = None
        if tag is None:
            self._present_uid = None
            return None
        if tag.uid == self._present_uid:
            return None  # still lying on the pad
        self._present_uid = tag.uid
        return self.scan(tag)

    def scan(self, tag: TagRead) -> ScanOutcome:
        """Grade one presented tag, commit the evidence, then answer with the light."""
        try:
            record = decode_tag(tag.data)
        except TagError as err:
            return self._fault("rfid", "unreadable_tag", f"tag {tag.uid}: {err}",
                               Severity.WARNING)
        temp = self.probe.read_celsius()
        scan = ScanEvent(**self.recorder.common(), station=self.station_id,
                         item_id=record.item_id, tag_uid=tag.uid, lot=record.lot,
                         gtin=record.gtin, core_temp_c=temp, probe=self.probe.probe_id)
        if self.is_known is not None and not self.is_known(record.item_id):
            fault = self._fault_event("manifest", "unknown_item", Severity.WARNING,
                                      f"item {record.item_id} (tag {tag.uid}) is not expected "
                                      "back at this site")
            return self._answer(Light.UNKNOWN_TAG, [scan, fault], scan=scan, fault=fault)
        decision = self.grader.grade(self._features(record, temp))
        grade = GradeEvent(**self.recorder.common(), station=self.station_id,
                           item_id=record.item_id, scan_id=scan.id, grade=decision.grade,
                           model_version=decision.model_version, scores=decision.scores,
                           features=decision.features, rule=decision.rule,
                           shadow=decision.shadow)
        if temp is None:
            fault = self._fault_event("probe", "no_core_temperature", Severity.ERROR,
                                      f"probe {self.probe.probe_id} gave no valid reading")
            return self._answer(Light.PROBE_FAULT, [scan, grade, fault], scan=scan,
                                grade=grade, fault=fault)
        return self._answer(LIGHT_FOR_GRADE[decision.grade], [scan, grade], scan=scan,
                            grade=grade)

    def _answer(self, light: Light, events: list[ScanEvent | GradeEvent | FaultEvent],
                **outcome: Any) -> ScanOutcome:
        """Commit the evidence durably, then (only then) show the light."""
        try:
            self.recorder.commit_events(events)
        except OutboxFull as err:
            logger.error("station %s: scan refused: %s", self.station_id, err)
            self.indicator.show(Light.REFUSED)
            return ScanOutcome(Light.REFUSED, refused=str(err))
        self.indicator.show(light)
        return ScanOutcome(light, **outcome)

    def _features(self, record: TagRecord, temp: float | None) -> dict[str, float | None]:
        """The grader's features (edge/features.py), with the manifest's cold-chain summary."""
        now = datetime.fromtimestamp(self.recorder.clock(), UTC)
        hours = round((now - record.packed_at).total_seconds() / 3600.0, 3)
        item = self.lookup(record.item_id) if self.lookup is not None else None
        facts = ScanFacts(
            family=(item.family if item is not None and item.family else ""),
            hours_since_packed=hours, core_temp_c=temp,
            hours_above_limit=item.hours_above_limit if item is not None else None,
            degree_hours=item.degree_hours if item is not None else None,
            shelf_life_used_frac=item.shelf_life_used_frac if item is not None else None,
            damaged=self.damaged() if self.damaged is not None else False)
        named = features(facts)
        named["high_risk"] = 1.0 if record.high_risk else 0.0  # recorded, not a model input
        return named

    def _fault_event(self, component: str, code: str, severity: Severity,
                     detail: str) -> FaultEvent:
        logger.warning("station %s: %s: %s", self.station_id, code, detail)
        return FaultEvent(**self.recorder.common(), station=self.station_id,
                          component=component, code=code, severity=severity,
                          detail=detail[:500])

    def _fault(self, component: str, code: str, detail: str, severity: Severity) -> ScanOutcome:
        fault = self._fault_event(component, code, severity, detail)
        return self._answer(Light.FAULT, [fault], fault=fault)
