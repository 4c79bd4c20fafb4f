"""GS1 EPCIS 2.0 in JSON-LD: the hub's records as events, documents, and schema validation.

Identifiers (docs/trace.md): an item is a GS1 Digital Link URI with its GTIN and serial
(``https://id.gs1.org/01/{gtin}/21/{item id}``), a lot the same with AI 10; coldloop's own
places are ``urn:coldloop:loc:{party}:{id}`` where party says whose custody it means
(supplier, warehouse, delivery, customer, sorting). Hub records become ObjectEvents with CBV
2.0 business steps and dispositions; the grade and the hub's message id travel in the
``coldloop:`` extension namespace. Event ids are ``urn:coldloop:event:{message id}``, so
re-exporting a record gives the same event.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from hub.errors import InvalidInput

SCHEMA_PATH = Path(__file__).resolve().parent / "epcis_schema" / "EPCIS-JSON-Schema.json"
GS1_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
NAMESPACE = "https://coldloop.example/epcis/"
PREFIX = "coldloop"
CONTEXT: list[Any] = [GS1_CONTEXT, {PREFIX: NAMESPACE}]
PARTIES = ("supplier", "warehouse", "delivery", "customer", "sorting")
MAX_DOCUMENT_BYTES = 50 * 1024 * 1024
_EVENT_IDS = uuid.UUID("3f0b8f2e-6d0a-5c7e-9a41-1d2c3b4a5e6f")  # namespace of our event ids
_MAX_PROBLEMS = 5
EVENT_URN = "urn:coldloop:event:"  # + the hub's message id
_URN_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._-]{0,160}$")

# What a custody change means in CBV 2.0 terms: (bizStep, disposition, party now holding it).
CUSTODY_STEPS: dict[str, tuple[str, str, str]] = {
    "picked_up": ("collecting", "returned", "delivery"),
    "received": ("receiving", "in_progress", "sorting"),
    "handed_over": ("departing", "in_transit", "delivery"),
    "disposed": ("destroying", "destroyed", "sorting"),
}
# A station's grade as a CBV disposition.
GRADE_DISPOSITIONS = {"resell": "sellable_accessible", "discount": "sellable_accessible",
                      "check": "in_progress", "scrap": "non_sellable_other"}


class EpcisError(InvalidInput):
    """A document that is not valid EPCIS 2.0; ``problems`` name each field and what is wrong."""

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


# --- identifiers ---------------------------------------------------------------------------


def item_epc(gtin: str, item_id: str) -> str:
    """The GS1 Digital Link URI of one tagged item (GTIN + serial)."""
    return f"https://id.gs1.org/01/{gtin}/21/{item_id}"


def lot_class(gtin: str, lot: str) -> str:
    """The GS1 Digital Link URI of a lot (GTIN + batch/lot)."""
    return f"https://id.gs1.org/01/{gtin}/10/{lot}"


def location(party: str, ident: str) -> str:
    """coldloop's URI of a place whose custody means ``party``."""
    if party not in PARTIES:
        raise ValueError(f"unknown party {party!r}; expected one of {PARTIES}")
    return f"urn:coldloop:loc:{party}:{ident}"


def party_of(location_id: str | None) -> str | None:
    """The party a coldloop location URI stands for (None for anyone else's URI)."""
    if not location_id or not location_id.startswith("urn:coldloop:loc:"):
        return None
    party = location_id.split(":")[3]
    return party if party in PARTIES else None


def event_id_for(message_id: str) -> str:
    """The stable EPCIS eventID of a hub record: its message id in coldloop's URN space."""
    if _URN_SAFE.match(message_id):
        return EVENT_URN + message_id
    return f"urn:uuid:{uuid.uuid5(_EVENT_IDS, message_id)}"  # not URI-safe as it is


def timestamp(moment: datetime) -> str:
    """An EPCIS dateTime in UTC with milliseconds."""
    if moment.tzinfo is None:
        raise ValueError("EPCIS times need a time zone")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- events --------------------------------------------------------------------------------


def object_event(*, event_id: str, at: datetime, epcs: Sequence[str], biz_step: str,
                 read_point: str, biz_location: str | None = None,
                 disposition: str | None = None, action: str = "OBSERVE",
                 sensors: Sequence[Mapping[str, Any]] = (),
                 extensions: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """An ObjectEvent with the fields coldloop uses."""
    event: dict[str, Any] = {
        "type": "ObjectEvent", "eventID": event_id, "eventTime": timestamp(at),
        "eventTimeZoneOffset": "+00:00", "action": action, "epcList": list(epcs),
        "bizStep": biz_step, "readPoint": {"id": read_point}}
    if biz_location:
        event["bizLocation"] = {"id": biz_location}
    if disposition:
        event["disposition"] = disposition
    if sensors:
        event["sensorElementList"] = list(sensors)
    for key, value in (extensions or {}).items():
        event[f"{PREFIX}:{key}"] = value
    return event


def temperature_element(*, start: datetime, end: datetime, device: str,
                        readings: Sequence[tuple[datetime, float]] = (),
                        summary: Mapping[str, float] | None = None) -> dict[str, Any]:
    """A sensorElement: timestamped readings (°C), or a min/max/mean summary over the span."""
    reports: list[dict[str, Any]]
    if readings:
        reports = [{"type": "Temperature", "value": round(temp, 3), "uom": "CEL",
                    "time": timestamp(at)} for at, temp in readings]
    else:
        reports = [{"type": "Temperature", "uom": "CEL",
                    **{k: round(v, 3) for k, v in (summary or {}).items()}}]
    return {"sensorMetadata": {"startTime": timestamp(start), "endTime": timestamp(end),
                               "deviceID": device},
            "sensorReport": reports}


def scan_event(*, message_id: str, at: datetime, gtin: str, item_id: str, site: str,
               station: str, core_temp_c: float | None) -> dict[str, Any]:
    """A scan at a sorting-center station: inspecting, with the core temperature read."""
    sensors = []
    if core_temp_c is not None:
        sensors.append({"sensorMetadata": {"time": timestamp(at),
                                           "deviceID": location("sorting", f"{site}:{station}")},
                        "sensorReport": [{"type": "Temperature", "value": core_temp_c,
                                          "uom": "CEL"}]})
    return object_event(event_id=event_id_for(message_id), at=at,
                        epcs=[item_epc(gtin, item_id)], biz_step="inspecting",
                        read_point=location("sorting", f"{site}:{station}"),
                        biz_location=location("sorting", site), sensors=sensors,
                        extensions={"messageID": message_id})


def grade_event(*, message_id: str, at: datetime, gtin: str, item_id: str, site: str,
                station: str, grade: str, model_version: str) -> dict[str, Any]:
    """A station's grade: inspecting, with the disposition the grade means."""
    return object_event(event_id=event_id_for(message_id), at=at,
                        epcs=[item_epc(gtin, item_id)], biz_step="inspecting",
                        read_point=location("sorting", f"{site}:{station}"),
                        biz_location=location("sorting", site),
                        disposition=GRADE_DISPOSITIONS.get(grade, "unknown"),
                        extensions={"messageID": message_id, "grade": grade,
                                    "model": model_version})


def custody_event(*, message_id: str, at: datetime, gtin: str, item_id: str, action: str,
                  actor: str, place: str) -> dict[str, Any]:
    """A change of custody recorded by the hub (a driver's pickup, the sorting center's intake)."""
    try:
        biz_step, disposition, party = CUSTODY_STEPS[action]
    except KeyError:
        raise InvalidInput(f"custody action {action!r} has no EPCIS meaning; expected one of "
                           f"{sorted(CUSTODY_STEPS)}") from None
    return object_event(event_id=event_id_for(message_id), at=at,
                        epcs=[item_epc(gtin, item_id)], biz_step=biz_step,
                        read_point=location(party, _ident(place)),
                        biz_location=location(party, _ident(actor)), disposition=disposition,
                        extensions={"messageID": message_id, "actor": actor})


def _ident(text: str) -> str:
    """A URI-safe identifier from free text (drivers' ids, locations)."""
    return "".join(c if c.isalnum() or c in "-_.:" else "_" for c in text)[:80] or "unknown"


# --- documents -----------------------------------------------------------------------------


def document(events: Iterable[Mapping[str, Any]], *, created: datetime,
             document_id: str | None = None) -> dict[str, Any]:
    """An EPCISDocument holding ``events`` (in the order given)."""
    doc: dict[str, Any] = {"@context": CONTEXT, "type": "EPCISDocument",
                           "schemaVersion": "2.0", "creationDate": timestamp(created),
                           "epcisBody": {"eventList": [dict(e) for e in events]}}
    if document_id:
        doc["id"] = document_id
    return doc


@lru_cache(maxsize=1)
def _validator() -> Draft7Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return Draft7Validator(schema, format_checker=FormatChecker())


def problems(doc: Any) -> list[str]:
    """Every schema violation of ``doc`` as "path: message" (empty: valid EPCIS 2.0)."""
    errors = sorted(_validator().iter_errors(doc), key=lambda e: list(e.absolute_path))
    return [_describe(e) for e in errors]


def validate(doc: Any) -> None:
    """Raise EpcisError naming the first problems if ``doc`` is not valid EPCIS 2.0."""
    found = problems(doc)
    if found:
        shown = "; ".join(found[:_MAX_PROBLEMS])
        more = f" (and {len(found) - _MAX_PROBLEMS} more)" if len(found) > _MAX_PROBLEMS else ""
        raise EpcisError(f"not a valid EPCIS 2.0 document: {shown}{more}", found)


def _describe(error: ValidationError) -> str:
    where = "/".join(str(p) for p in error.absolute_path) or "(document)"
    # anyOf/oneOf failures say little at the top; the best-matching branch says what is wrong.
    best = error
    while best.context:
        best = min(best.context, key=lambda e: (len(e.context or ()), -len(e.absolute_path)))
        where = "/".join(str(p) for p in best.absolute_path) or where
    message = best.message if len(best.message) <= 200 else best.message[:197] + "..."
    return f"{where}: {message}"


def parse(data: bytes | str, source: str = "document") -> dict[str, Any]:
    """Parse and validate an EPCIS 2.0 JSON(-LD) document; raise EpcisError naming the problem."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise EpcisError(f"{source}: {len(data)} bytes, over the {MAX_DOCUMENT_BYTES} limit; "
                         "split it into several documents")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as err:
        raise EpcisError(f"{source}: not valid JSON ({err})") from None
    if not isinstance(doc, dict):
        raise EpcisError(f"{source}: an EPCIS document is a JSON object, got "
                         f"{type(doc).__name__}")
    try:
        validate(doc)
    except EpcisError as err:
        raise EpcisError(f"{source}: {err}", err.problems) from None
    return doc


def events_of(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The events of a (validated) EPCISDocument or EPCISQueryDocument."""
    body = doc.get("epcisBody", {})
    if doc.get("type") == "EPCISQueryDocument":
        return list(body.get("queryResults", {}).get("resultsBody", {}).get("eventList", []))
    return list(body.get("eventList", []))
