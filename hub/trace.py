"""An item's trace: its EPCIS events from the ledger, custody spans, segments, attribution.

Three steps, all over the hub database (docs/trace.md):

1. :func:`sync_hub_records` appends the hub's own records (custody changes, scans, grades) to
   the ledger as EPCIS events, once each (their event ids derive from message ids);
   partners' documents arrive through :func:`import_document`.
2. :func:`item_chain` reads an item's events (by its GS1 Digital Link id and its lot's), cuts
   them into custody spans at every change of party, and gives each span the temperature
   readings that belong to it: the sensor reports inside the party's events, and for a truck
   the temperature log its driver uploaded (hub telemetry of source ``truck:<id>``).
3. :func:`item_trace` adds segment statistics (hub.segments) and the attribution
   (hub.attribution), for the API, the page and exports.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, literal, select
from sqlalchemy.orm import Session

from hub import epcis
from hub.attribution import Attribution, attribute
from hub.coldchain_config import DEFAULT, ColdChainConfig
from hub.errors import NotFound
from hub.ledger import Appended, append_events
from hub.models import CustodyRecord, Gateway, GradeRecord, Item, Order, Scan, Ticket
from hub.segments import ChainReport, CustodySpan, Party, QcCheck, Sensor, chain_report
from hub.telemetry import iter_batches
from hub.trace_models import TraceEvent, TraceEventEpc

SYNC_CHUNK = 2000  # hub records turned into events per call and table
CHAIN_PARTIES: tuple[Party, ...] = ("supplier", "warehouse", "delivery", "customer")
# A partner's business step says whose custody the item is in when its location does not.
STEP_PARTY: dict[str, str] = {
    "commissioning": "supplier", "packing": "supplier", "shipping": "supplier",
    "receiving": "warehouse", "storing": "warehouse", "picking": "warehouse",
    "staging_outbound": "warehouse", "loading": "delivery", "departing": "delivery",
    "transporting": "delivery", "arriving": "customer", "accepting": "customer",
    "retail_selling": "customer"}
RETURN_STEPS = frozenset({"collecting"})  # the return leg starts: the forward chain ends
UNITS = {"CEL": lambda v: v, "FAR": lambda v: (v - 32) * 5 / 9, "KEL": lambda v: v - 273.15}


# --- 1. the hub's records into the ledger ---------------------------------------------------


def sync_hub_records(session: Session, now: datetime, limit: int = SYNC_CHUNK) -> int:
    """Append hub records not yet in the ledger as EPCIS events; return how many were added."""
    events: list[dict[str, Any]] = []
    missing = ~select(TraceEvent.seq).where(
        TraceEvent.event_id == literal(epcis.EVENT_URN) + CustodyRecord.message_id).exists()
    for record, gtin in session.execute(
            select(CustodyRecord, Item.gtin).join(Item, Item.id == CustodyRecord.item_id)
            .where(missing).order_by(CustodyRecord.ts).limit(limit)):
        events.append(epcis.custody_event(
            message_id=record.message_id, at=record.ts, gtin=gtin, item_id=record.item_id,
            action=record.action, actor=record.actor, place=record.location))
    missing = ~select(TraceEvent.seq).where(
        TraceEvent.event_id == literal(epcis.EVENT_URN) + Scan.message_id).exists()
    for scan, site in session.execute(
            select(Scan, Gateway.site).outerjoin(Gateway, Gateway.id == Scan.gateway_id)
            .where(missing).order_by(Scan.ts).limit(limit)):
        events.append(epcis.scan_event(
            message_id=scan.message_id, at=scan.ts, gtin=scan.gtin, item_id=scan.item_id,
            site=site or "unknown", station=scan.station, core_temp_c=scan.core_temp_c))
    missing = ~select(TraceEvent.seq).where(
        TraceEvent.event_id == literal(epcis.EVENT_URN) + GradeRecord.message_id).exists()
    for grade, gtin, site in session.execute(
            select(GradeRecord, Scan.gtin, Gateway.site)
            .join(Scan, Scan.message_id == GradeRecord.scan_id)
            .outerjoin(Gateway, Gateway.id == GradeRecord.gateway_id)
            .where(missing).order_by(GradeRecord.ts).limit(limit)):
        events.append(epcis.grade_event(
            message_id=grade.message_id, at=grade.ts, gtin=gtin, item_id=grade.item_id,
            site=site or "unknown", station=grade.station, grade=grade.grade,
            model_version=grade.model_version))
    events.sort(key=lambda e: e["eventTime"])
    appended = append_events(session, events, source="hub", now=now)
    return sum(1 for entry in appended if entry.new)


def import_document(session: Session, data: bytes | str, *, name: str,
                    now: datetime) -> list[Appended]:
    """Validate a partner's EPCIS document and append its events (source ``import:<name>``)."""
    doc = epcis.parse(data, name)
    events = epcis.events_of(doc)
    return append_events(session, events, source=f"import:{name}"[:64], now=now)


# --- 2. an item's chain ----------------------------------------------------------------------


@dataclass(frozen=True)
class TracedEvent:
    """A ledger event about the item, decoded, with the party its custody means."""

    seq: int
    event_id: str
    at: datetime
    biz_step: str | None
    source: str
    party: str | None
    document: Mapping[str, Any]


@dataclass(frozen=True)
class ItemChain:
    """What the hub knows of an item's way: events, spans with their readings, QC checks."""

    item: Item
    events: list[TracedEvent]
    spans: list[CustodySpan]
    qc_checks: list[QcCheck]
    notes: list[str] = field(default_factory=list)  # what could not be used, and why


def item_events(session: Session, item: Item) -> list[TracedEvent]:
    """Every ledger event naming the item or its lot, in time order."""
    ids = [epcis.item_epc(item.gtin, item.id), epcis.lot_class(item.gtin, item.lot)]
    rows = session.scalars(
        select(TraceEvent).join(TraceEventEpc, TraceEventEpc.seq == TraceEvent.seq)
        .where(TraceEventEpc.epc.in_(ids)).distinct()
        .order_by(TraceEvent.event_time, TraceEvent.seq))
    found = []
    for row in rows:
        document = json.loads(row.document)
        found.append(TracedEvent(row.seq, row.event_id, _aware(row.event_time), row.biz_step,
                                 row.source, _party(document), document))
    return found


def item_chain(session: Session, item_id: str) -> ItemChain:
    """Cut the item's events into custody spans and gather their readings."""
    item = session.get(Item, item_id)
    if item is None:
        raise NotFound(f"item {item_id!r} does not exist")
    events = item_events(session, item)
    notes: list[str] = []
    forward: list[TracedEvent] = []
    for event in events:
        if event.biz_step in RETURN_STEPS or event.party == "sorting":
            break  # the way back to the sorting center is not part of the delivered chain
        if event.party in CHAIN_PARTIES:
            forward.append(event)
        else:
            notes.append(f"event {event.event_id} ({event.biz_step}) names no custodian")
    end_of_chain = next((e.at for e in events if e.biz_step in RETURN_STEPS
                         or e.party == "sorting"), None)
    spans: list[CustodySpan] = []
    qc: list[QcCheck] = []
    runs = _runs(forward)
    for n, run in enumerate(runs):
        start = run[0].at
        if n + 1 < len(runs):
            end = runs[n + 1][0].at
        else:
            end = max([end_of_chain or run[-1].at, *_reading_times(run)], default=start)
        if end <= start:
            end = start + timedelta(seconds=1)
        party: Party = run[0].party  # type: ignore[assignment]
        readings, sensor = _readings(run, notes)
        place = _place(run[0].document)
        if party == "delivery" and place.startswith("urn:coldloop:loc:delivery:"):
            truck = place.rsplit(":", 1)[1]
            uploaded = _truck_readings(session, truck, start, end)
            if uploaded:
                readings = sorted([*readings, *uploaded])
                sensor = Sensor(source=f"truck:{truck}", placement="air")
        spans.append(CustodySpan(party=party, actor=place, location=place, start=start,
                                 end=end, readings=tuple(readings), sensor=sensor))
        qc += _qc_checks(run)
    return ItemChain(item, events, spans, qc, notes)


def _runs(events: Sequence[TracedEvent]) -> list[list[TracedEvent]]:
    """Consecutive events of one party, in order."""
    runs: list[list[TracedEvent]] = []
    for event in events:
        if runs and runs[-1][0].party == event.party:
            runs[-1].append(event)
        else:
            runs.append([event])
    return runs


def _party(document: Mapping[str, Any]) -> str | None:
    for key in ("bizLocation", "readPoint"):
        party = epcis.party_of((document.get(key) or {}).get("id"))
        if party:
            return party
    return STEP_PARTY.get(_step(document.get("bizStep")))


def _step(value: Any) -> str:
    """A CBV business step in its short form (full GS1 URIs accepted)."""
    text = str(value or "")
    for prefix in ("https://ref.gs1.org/cbv/BizStep-", "urn:epcglobal:cbv:bizstep:"):
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


def _place(document: Mapping[str, Any]) -> str:
    for key in ("bizLocation", "readPoint"):
        place = (document.get(key) or {}).get("id")
        if place:
            return str(place)
    return "unknown"


def _readings(run: Iterable[TracedEvent], notes: list[str]
              ) -> tuple[list[tuple[datetime, float | None]], Sensor]:
    """Timestamped temperatures reported in a party's events (QC spot checks left out)."""
    readings: list[tuple[datetime, float | None]] = []
    devices: list[str] = []
    for event in run:
        if _step(event.biz_step) == "inspecting":
            continue  # a QC probe in the product, not the custodian's logger
        for element in event.document.get("sensorElementList", []):
            meta = element.get("sensorMetadata", {})
            for report in element.get("sensorReport", []):
                if _short(report.get("type")) != "Temperature":
                    continue
                value, at = report.get("value"), report.get("time") or meta.get("time")
                convert = UNITS.get(report.get("uom", "CEL"))
                if value is None or at is None or convert is None:
                    notes.append(f"event {event.event_id}: a temperature report without a "
                                 "time, value or known unit was left out (summaries cannot be "
                                 "split into readings)")
                    continue
                readings.append((_parse_time(at), round(convert(float(value)), 3)))
            if meta.get("deviceID"):
                devices.append(str(meta["deviceID"]))
    source = ", ".join(dict.fromkeys(devices))
    return sorted(readings), Sensor(source=source, placement="air" if readings else "unknown")


def _short(value: Any) -> str:
    text = str(value or "")
    return text.rsplit("-", 1)[-1] if text.startswith("http") else text.removeprefix("gs1:")


def _reading_times(run: Iterable[TracedEvent]) -> list[datetime]:
    times, _ = _readings(run, [])
    return [at for at, _ in times]


def _qc_checks(run: Iterable[TracedEvent]) -> list[QcCheck]:
    checks = []
    for event in run:
        disposition = _short(event.document.get("disposition")).rsplit(":", 1)[-1]
        if _step(event.biz_step) != "inspecting" or disposition not in (
                "conformant", "non_conformant"):
            continue
        core = None
        for element in event.document.get("sensorElementList", []):
            for report in element.get("sensorReport", []):
                if _short(report.get("type")) == "Temperature" and "value" in report:
                    core = float(report["value"])
        checks.append(QcCheck(at=event.at, party=event.party,  # type: ignore[arg-type]
                              passed=disposition == "conformant", core_c=core,
                              note=f"{event.event_id} ({event.source})"))
    return checks


def _truck_readings(session: Session, truck: str, start: datetime, end: datetime
                    ) -> list[tuple[datetime, float | None]]:
    lo, hi = start.timestamp(), end.timestamp()
    found = []
    for _, readings in iter_batches(session, since=lo, until=hi, sources=[f"truck:{truck}"]):
        found += [(datetime.fromtimestamp(ts, UTC), temp) for _, ts, temp in readings
                  if lo <= ts <= hi]
    return found


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- 3. the whole trace ----------------------------------------------------------------------


@dataclass(frozen=True)
class ItemTrace:
    """Everything the trace page and API show for one item."""

    chain: ItemChain
    report: ChainReport | None  # None: no custody span at all
    attribution: Attribution | None
    complaint_at: datetime | None
    complaint_category: str | None

    def readings_of(self, index: int) -> list[tuple[datetime, float | None]]:
        """The readings analysed for segment ``index`` of the report (its span's, inside it)."""
        if self.report is None:
            return []
        segment = self.report.segments[index]
        span = self.chain.spans[index]  # spans are built in time order: segment i is span i
        return sorted((r for r in span.readings if segment.start <= r[0] <= segment.end),
                      key=lambda r: r[0])


def item_trace(session: Session, item_id: str, config: ColdChainConfig = DEFAULT) -> ItemTrace:
    """The item's chain, segment statistics and who is responsible for what went wrong."""
    chain = item_chain(session, item_id)
    ticket = session.scalars(select(Ticket).where(Ticket.order_id == chain.item.order_id)
                             .order_by(Ticket.created_at)).first()
    complaint_at = _aware(ticket.created_at) if ticket else None
    category = ticket.category if ticket else None
    if not chain.spans:
        return ItemTrace(chain, None, None, complaint_at, category)
    if chain.item.family not in config.families:
        chain.notes.append(f"product family {chain.item.family!r} has no cold-chain parameters "
                           f"(known: {', '.join(sorted(config.families))}): nothing can be "
                           "judged")
        return ItemTrace(chain, None, None, complaint_at, category)
    report = chain_report(chain.spans, chain.item.family, item=chain.item.id,
                          qc_checks=chain.qc_checks, families=config.families,
                          rules=config.rules)
    verdict = attribute(report, complaint_at=complaint_at, complaint_category=category,
                        policy=config.policy)
    return ItemTrace(chain, report, verdict, complaint_at, category)


def order_items(session: Session, order_id: str) -> list[str]:
    """The item ids of an order (NotFound if there is no such order)."""
    if session.get(Order, order_id) is None:
        raise NotFound(f"order {order_id!r} does not exist")
    return list(session.scalars(select(Item.id).where(Item.order_id == order_id)
                                .order_by(Item.id)))


def export_events(session: Session, *, item_ids: Sequence[str] = (),
                  since: datetime | None = None) -> list[dict[str, Any]]:
    """Ledger events about the given items, or recorded since a time, as stored, in order."""
    query = select(TraceEvent).order_by(TraceEvent.seq)
    if item_ids:
        items = session.scalars(select(Item).where(Item.id.in_(list(item_ids)))).all()
        unknown = set(item_ids) - {i.id for i in items}
        if unknown:
            raise NotFound(f"no such item: {', '.join(sorted(unknown))}")
        ids = [e for i in items for e in (epcis.item_epc(i.gtin, i.id),
                                          epcis.lot_class(i.gtin, i.lot))]
        query = query.where(select(TraceEventEpc.seq).where(
            and_(TraceEventEpc.seq == TraceEvent.seq, TraceEventEpc.epc.in_(ids))).exists())
    if since is not None:
        query = query.where(TraceEvent.event_time >= since)
    return [json.loads(row.document) for row in session.scalars(query)]
