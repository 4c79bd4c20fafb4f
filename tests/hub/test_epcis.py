"""EPCIS 2.0: hub records as events, documents validated against GS1's own JSON schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hub import epcis
from hub.ledger import identifiers

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "data" / "epcis" / "JSON")
                  .rglob("*.jsonld"))
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
GTIN = "06901234567892"


def hub_events() -> list[dict[str, object]]:
    return [
        epcis.custody_event(message_id="driver:O-1:IT-1", at=T0, gtin=GTIN, item_id="IT-1",
                            action="picked_up", actor="driver-07", place="route 12"),
        epcis.scan_event(message_id="gw-1:1:5", at=T0, gtin=GTIN, item_id="IT-1", site="sh-1",
                         station="st-1", core_temp_c=7.5),
        epcis.grade_event(message_id="gw-1:1:6", at=T0, gtin=GTIN, item_id="IT-1", site="sh-1",
                          station="st-1", grade="scrap", model_version="grader-3"),
        epcis.object_event(
            event_id="urn:uuid:0c7a5a52-0000-4000-8000-000000000001", at=T0,
            epcs=[epcis.item_epc(GTIN, "IT-1")], biz_step="storing",
            read_point=epcis.location("warehouse", "wh-1"),
            sensors=[epcis.temperature_element(start=T0, end=T0, device="urn:coldloop:probe:p1",
                                               readings=[(T0, 3.25)]),
                     epcis.temperature_element(start=T0, end=T0, device="urn:coldloop:probe:p2",
                                               summary={"minValue": 1.0, "maxValue": 2.0,
                                                        "meanValue": 1.5})]),
    ]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_gs1_examples_are_valid(path: Path) -> None:
    assert epcis.problems(json.loads(path.read_text(encoding="utf-8"))) == []


def test_there_are_gs1_examples() -> None:
    assert len(EXAMPLES) == 12


def test_hub_records_export_as_valid_epcis() -> None:
    doc = epcis.document(hub_events(), created=T0)

    assert epcis.problems(doc) == []
    scan, grade = doc["epcisBody"]["eventList"][1:3]
    assert scan["bizStep"] == "inspecting"
    assert scan["epcList"] == ["https://id.gs1.org/01/06901234567892/21/IT-1"]
    assert scan["sensorElementList"][0]["sensorReport"] == [
        {"type": "Temperature", "value": 7.5, "uom": "CEL"}]
    assert (grade["disposition"], grade["coldloop:grade"]) == ("non_sellable_other", "scrap")
    assert scan["eventTime"] == "2026-11-20T08:00:00.000Z"


def test_event_ids_are_stable_per_hub_record() -> None:
    first, again = hub_events(), hub_events()
    assert [e["eventID"] for e in first] == [e["eventID"] for e in again]
    assert len({e["eventID"] for e in first}) == len(first)


def test_invalid_documents_are_refused_naming_the_field() -> None:
    event = hub_events()[1] | {"bizStep": "frobnicating now", "eventTime": "yesterday"}
    data = json.dumps(epcis.document([event], created=T0))

    with pytest.raises(epcis.EpcisError) as caught:
        epcis.parse(data, "supplier.jsonld")

    message = str(caught.value)
    assert message.startswith("supplier.jsonld: not a valid EPCIS 2.0 document")
    assert "epcisBody/eventList/0/bizStep: 'frobnicating now' is not a 'uri'" in message
    assert "epcisBody/eventList/0/eventTime: 'yesterday' is not a 'date-time'" in message
    assert len(caught.value.problems) == 2


@pytest.mark.parametrize(("data", "expected"), [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "a JSON object, got list"),
    (b'{"type": "EPCISDocument"}', "'@context' is a required property"),
    (json.dumps({"@context": epcis.CONTEXT, "type": "EPCISDocument", "schemaVersion": "2.0",
                 "creationDate": "2026-11-20T08:00:00Z",
                 "epcisBody": {"eventList": [{"type": "ObjectEvent"}]}}).encode(),
     "epcisBody/eventList/0"),
])
def test_garbage_is_refused_clearly(data: bytes, expected: str) -> None:
    with pytest.raises(epcis.EpcisError, match=r"^doc\.json: ") as caught:
        epcis.parse(data, "doc.json")
    assert expected in str(caught.value)


def test_events_and_their_identifiers_are_found() -> None:
    aggregation = json.loads((EXAMPLES[0].parent.parent / "Example_9.6.3-AggregationEvent.jsonld")
                             .read_text(encoding="utf-8"))
    events = epcis.events_of(aggregation)
    found = identifiers(events[0])
    assert events[0]["parentID"] in found
    assert all(child in found for child in events[0]["childEPCs"])
    assert any(q["epcClass"] in found for q in events[0]["childQuantityList"])


def test_parties_of_coldloop_locations() -> None:
    assert epcis.party_of(epcis.location("delivery", "TRK-12")) == "delivery"
    assert epcis.party_of("urn:epc:id:sgln:4012345.00001.0") is None
    with pytest.raises(ValueError, match="unknown party"):
        epcis.location("moon", "x")
