"""The JSON shapes of hub records in the API."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from hub import epcis
from hub.attribution import Attribution, Reason
from hub.fleet_view import FleetView, GatewayView, ProbeView, ReaderRate, StationView
from hub.models import (
    CustodyRecord,
    Customer,
    FleetAlarm,
    Gateway,
    GradeRecord,
    Item,
    Order,
    Pickup,
    QuarantinedMessage,
    Scan,
    Ticket,
)
from hub.queries import GradeRow, ItemHistory, OrderView, TimelineEntry, as_utc
from hub.segments import (
    ChainReport,
    CustodyGap,
    CustodyOverlap,
    Handover,
    QcCheck,
    Reading,
    SegmentReport,
    Sensor,
)
from hub.telemetry import ProbeReading, WindowView
from hub.trace import ItemTrace, TracedEvent

Json = dict[str, Any]
PAYLOAD_PREVIEW = 2000


def time(value: datetime | None) -> str | None:
    """Return an ISO 8601 UTC timestamp, or None."""
    return None if value is None else as_utc(value).isoformat()


def item(record: Item) -> Json:
    """Return an item as JSON."""
    return {"id": record.id, "order_id": record.order_id, "product": record.product,
            "family": record.family, "gtin": record.gtin, "lot": record.lot,
            "packed_at": time(record.packed_at), "tag_uid": record.tag_uid,
            "price_cents": record.price_cents, "disposition": record.disposition}


def customer(record: Customer) -> Json:
    """Return a customer as JSON."""
    return {"id": record.id, "name": record.name, "tier": record.tier, "region": record.region}


def order(record: Order) -> Json:
    """Return an order as JSON."""
    return {"id": record.id, "customer_id": record.customer_id, "status": record.status,
            "placed_at": time(record.placed_at), "delivered_at": time(record.delivered_at)}


def ticket(record: Ticket) -> Json:
    """Return a ticket as JSON."""
    return {"id": record.id, "order_id": record.order_id, "customer_id": record.customer_id,
            "channel": record.channel, "category": record.category, "status": record.status,
            "text": record.text, "created_at": time(record.created_at),
            "resolved_at": time(record.resolved_at)}


def pickup(record: Pickup) -> Json:
    """Return a pickup as JSON."""
    return {"id": record.id, "ticket_id": record.ticket_id, "item_id": record.item_id,
            "code": record.code, "status": record.status, "issued_at": time(record.issued_at),
            "collected_at": time(record.collected_at), "driver": record.driver}


def scan(record: Scan) -> Json:
    """Return a scan as JSON."""
    return {"message_id": record.message_id, "gateway_id": record.gateway_id,
            "station": record.station, "item_id": record.item_id, "tag_uid": record.tag_uid,
            "lot": record.lot, "gtin": record.gtin, "core_temp_c": record.core_temp_c,
            "ts": time(record.ts), "clock": record.clock, "historical": record.historical}


def grade(record: GradeRecord) -> Json:
    """Return a grade as JSON."""
    return {"message_id": record.message_id, "gateway_id": record.gateway_id,
            "station": record.station, "item_id": record.item_id, "scan_id": record.scan_id,
            "grade": record.grade, "model_version": record.model_version, "rule": record.rule,
            "scores": record.scores, "features": record.features, "ts": time(record.ts),
            "clock": record.clock, "historical": record.historical}


def grade_row(row: GradeRow) -> Json:
    """Return a grade with its item's product and order as JSON."""
    return {**grade(row.grade), "product": row.product, "order_id": row.order_id}


def custody(record: CustodyRecord) -> Json:
    """Return a custody record as JSON."""
    return {"message_id": record.message_id, "item_id": record.item_id,
            "action": record.action, "actor": record.actor, "location": record.location,
            "pickup_code": record.pickup_code, "ts": time(record.ts),
            "historical": record.historical}


def gateway(record: Gateway) -> Json:
    """Return a gateway's last known state as JSON."""
    return {"id": record.id, "site": record.site, "online": record.online,
            "boot": record.boot, "last_seen": time(record.last_seen),
            "software": record.software, "model_version": record.model_version,
            "backlog": record.backlog, "clock": record.clock}


def fleet(view: FleetView, open_alarms: Mapping[str, int]) -> Json:
    """Return the fleet registry as JSON: gateways, stations and probes."""
    return {"generated_at": time(view.now), "window_s": view.window_s,
            "gateways": [fleet_gateway(g, open_alarms.get(g.gateway.id, 0))
                         for g in view.gateways],
            "stations": [station(s) for s in view.stations],
            "probes": [probe(p) for p in view.probes]}


def fleet_gateway(view: GatewayView, open_alarms: int = 0) -> Json:
    """Return a gateway of the registry: its state, latest health and reader numbers."""
    health = view.health
    return {
        **gateway(view.gateway),
        "clock": view.clock, "clock_source": view.clock_source,
        "silent_s": None if view.silent_s is None else round(view.silent_s, 1),
        "reported_alarms": list(view.gateway.alarms or []),
        "health": None if health is None else {
            "message_id": health.message_id, "ts": time(health.ts), "clock": health.clock,
            **{name: health.number(name) for name in (
                "disk_free_mb", "disk_used_pct", "outbox_depth", "dead_letters",
                "cpu_temp_c", "reader_errors", "uptime_s")}},
        "reader": {**reader_rate(view.reader), "faults": view.reader_faults,
                   "failed_reads": view.failed_reads},
        "open_alarms": open_alarms,
    }


def reader_rate(rate: ReaderRate) -> Json:
    """Return scans, reader errors and errors per 100 reads as JSON."""
    pct = rate.error_pct
    return {"scans": rate.scans, "errors": rate.errors, "attempts": rate.attempts,
            "error_pct": None if pct is None else round(pct, 2)}


def station(view: StationView) -> Json:
    """Return a scan station of the registry as JSON."""
    return {"gateway_id": view.gateway_id, "site": view.site, "station": view.station,
            "last_scan": time(view.last_scan), "reader": reader_rate(view.reader)}


def probe(view: ProbeView) -> Json:
    """Return a probe of the registry as JSON."""
    window = view.last_window
    missing = view.missing_pct
    deviation = view.deviation_c
    return {
        "gateway_id": view.gateway_id, "site": view.site, "probe": view.probe,
        "last_reading": time(view.last_reading),
        "last_window": None if window is None else {
            "start": _epoch(window.start), "readings": window.readings,
            "missing": window.missing, "mean_c": _round(window.mean_c),
            "min_c": window.min_c, "max_c": window.max_c},
        "readings": view.readings, "missing": view.missing,
        "missing_pct": None if missing is None else round(missing, 2),
        "deviation_c": _round(deviation),
    }


def fleet_alarm(record: FleetAlarm) -> Json:
    """Return a fleet alarm as JSON."""
    return {"id": record.id, "kind": record.kind, "subject": record.subject,
            "gateway_id": record.gateway_id, "site": record.site,
            "severity": record.severity, "message": record.message,
            "open": record.cleared_at is None, "raised_at": time(record.raised_at),
            "last_seen_at": time(record.last_seen_at), "cleared_at": time(record.cleared_at),
            "acknowledged_by": record.acknowledged_by,
            "acknowledged_at": time(record.acknowledged_at)}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def quarantined(record: QuarantinedMessage) -> Json:
    """Return a quarantined message as JSON, its payload shown as (lossy) text."""
    return {"id": record.id, "topic": record.topic, "message_id": record.message_id,
            "reason": record.reason, "received_at": time(record.received_at),
            "payload_bytes": len(record.payload),
            "payload_preview": payload_preview(record.payload)}


def payload_preview(payload: bytes) -> str:
    """Return the start of a payload as text, undecodable bytes replaced."""
    text = payload[:PAYLOAD_PREVIEW].decode("utf-8", errors="replace")
    return text + ("…" if len(payload) > PAYLOAD_PREVIEW else "")


def timeline(entries: Iterable[TimelineEntry]) -> list[Json]:
    """Return timeline entries as JSON, oldest first."""
    return [{"ts": time(entry.ts), "kind": entry.kind, "item_id": entry.item_id,
             "summary": entry.summary, **({"grade": entry.grade} if entry.grade else {})}
            for entry in entries]


def item_history(history: ItemHistory) -> Json:
    """Return an item's history as JSON."""
    return {"item": item(history.item), "scans": [scan(s) for s in history.scans],
            "grades": [grade(g) for g in history.grades],
            "custody": [custody(c) for c in history.custody],
            "timeline": timeline(history.timeline)}


def order_view(view: OrderView) -> Json:
    """Return an order view as JSON; each item carries its latest grade (or null)."""
    latest = view.latest_grades
    return {
        "order": order(view.order),
        "customer": customer(view.customer) if view.customer else None,
        "items": [{**item(i), "latest_grade": grade(latest[i.id]) if i.id in latest else None}
                  for i in view.items],
        "tickets": [ticket(t) for t in view.tickets],
        "pickups": [pickup(p) for p in view.pickups],
        "timeline": timeline(view.timeline),
    }


def probe_reading(reading: ProbeReading) -> Json:
    """Return one stored probe reading as JSON."""
    return {"ts": _epoch(reading.ts), "temp_c": reading.temp_c, "source": reading.source,
            "batch_id": reading.batch_id}


def telemetry_window(window: WindowView) -> Json:
    """Return one probe window's aggregate as JSON."""
    return {"start": _epoch(window.start), "source": window.source,
            "readings": window.readings, "missing": window.missing,
            "min_c": window.min_c, "max_c": window.max_c,
            "mean_c": None if window.mean_c is None else round(window.mean_c, 3),
            "first_ts": _epoch(window.first_ts), "last_ts": _epoch(window.last_ts)}


def _epoch(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")


# --- traces: an item's cold chain and who is responsible (hub.trace) -----------------------


def trace_item(found: ItemTrace, *, readings: bool = False) -> Json:
    """Return an item's trace as JSON; ``readings`` adds each segment's readings.

    Percentages are 0-100 (``*_pct``), temperatures °C, durations hours; ``chain``,
    ``source`` and ``attribution`` are null when no custody event of the item is on record.
    """
    chain, report = found.chain, found.report
    per_segment = segment_readings(found) if readings else None
    return {
        "item": {**item(chain.item), "epc": epcis.item_epc(chain.item.gtin, chain.item.id)},
        "complaint": None if found.complaint_at is None and found.complaint_category is None
        else {"at": time(found.complaint_at), "category": found.complaint_category},
        "attribution": None if found.attribution is None
        else trace_attribution(found.attribution),
        "source": trace_source(found),
        "chain": None if report is None else trace_chain(report),
        "segments": [] if report is None else [
            trace_segment(seg, None if per_segment is None else per_segment[seg.index])
            for seg in report.segments],
        "handovers": [] if report is None else [trace_handover(h) for h in report.handovers],
        "custody_gaps": [] if report is None
        else [trace_custody_gap(g) for g in report.custody_gaps],
        "overlaps": [] if report is None else [trace_overlap(o) for o in report.overlaps],
        "qc_checks": [trace_qc_check(q) for q in sorted(chain.qc_checks, key=lambda q: q.at)],
        "events": [trace_event(e) for e in chain.events],
        "notes": list(chain.notes),
    }


def segment_readings(found: ItemTrace) -> list[list[Reading]]:
    """Per segment of the trace's report, its span's readings inside it (what was analysed)."""
    if found.report is None:
        return []
    return [found.readings_of(index) for index in range(len(found.report.segments))]


def trace_source(found: ItemTrace) -> Json | None:
    """Return where the item comes from: the supplier's segment (null if none is first)."""
    report = found.report
    first = report.segments[0] if report is not None and report.segments else None
    if first is None or first.party != "supplier":
        return None
    return {"party": first.party, "actor": first.actor, "location": first.location,
            "lot": found.chain.item.lot, "packed_at": time(found.chain.item.packed_at),
            "custody_start": time(first.start), "custody_end": time(first.end),
            "sensor": trace_sensor(first.sensor)}


def trace_chain(report: ChainReport) -> Json:
    """Return a chain report's totals and the product family's parameters as JSON."""
    params = report.parameters
    return {"family": report.family, "limit_c": params.limit_c,
            "safety_limit_c": params.safety_limit_c,
            "shelf_life_ref_h": float(params.shelf_life_ref_h), "parameters_source": params.source,
            "start": time(report.start), "end": time(report.end), "hours": _float(report.hours),
            "known_h": _float(report.known_h), "unknown_h": _float(report.unknown_h),
            "coverage_pct": _pct(report.coverage),
            "shelf_life_consumed_pct": _pct(report.shelf_life_consumed),
            "shelf_life_remaining_pct": _pct(report.remaining),
            "hours_above_limit": _float(report.hours_above_limit),
            "degree_hours_above_limit": _float(report.degree_hours_above_limit),
            "hours_above_safety": _float(report.hours_above_safety),
            "safety_status": report.safety_status}


def trace_sensor(sensor: Sensor) -> Json:
    """Return where a segment's temperatures come from as JSON."""
    return {"source": sensor.source, "placement": sensor.placement,
            "calibrated": sensor.calibrated}


def trace_segment(seg: SegmentReport, readings: Sequence[Reading] | None = None) -> Json:
    """Return one custody segment's statistics as JSON (with its readings when given)."""
    body: Json = {
        "index": seg.index, "party": seg.party, "actor": seg.actor, "location": seg.location,
        "start": time(seg.start), "end": time(seg.end), "hours": _float(seg.hours),
        "sensor": trace_sensor(seg.sensor), "sampling_s": _float(seg.sampling_s),
        "sampling_inferred": seg.sampling_inferred, "n_readings": seg.n_readings,
        "n_missing_values": seg.n_missing_values, "n_outside": seg.n_outside,
        "known_h": _float(seg.known_h), "unknown_h": _float(seg.unknown_h),
        "coverage_pct": _pct(seg.coverage),
        "gaps": [{"start": time(a), "end": time(b),
                  "hours": _float((b - a).total_seconds() / 3600)} for a, b in seg.gaps],
        "min_c": _float(seg.min_c), "max_c": _float(seg.max_c), "mean_c": _float(seg.mean_c),
        "first_c": _float(seg.first_c), "last_c": _float(seg.last_c),
        "mkt_c": _float(seg.mkt_c),
        "limit_c": seg.limit_c, "hours_above_limit": _float(seg.hours_above_limit),
        "longest_above_limit_h": _float(seg.longest_above_limit_h),
        "degree_hours_above_limit": _float(seg.degree_hours_above_limit),
        "safety_limit_c": seg.safety_limit_c,
        "hours_above_safety": _float(seg.hours_above_safety),
        "longest_above_safety_h": _float(seg.longest_above_safety_h),
        "degree_hours_above_safety": _float(seg.degree_hours_above_safety),
        "profile_threshold_c": seg.profile_threshold_c,
        "profile_broken": seg.profile_broken, "safety_status": seg.safety_status,
        "excursions": [{"start": time(e.start), "end": time(e.end), "hours": _float(e.hours),
                        "peak_c": _float(e.peak_c), "degree_hours": _float(e.degree_hours)}
                       for e in seg.excursions],
        "verdicts": [{"rule": v.rule, "threshold_c": v.threshold_c, "allowed_h": v.allowed_h,
                      "observed_h": _float(v.observed_h), "status": v.status}
                     for v in seg.verdicts],
        "shelf_life_consumed_pct": _pct(seg.shelf_life_consumed),
    }
    if readings is not None:
        body["readings"] = [{"time": time(at), "temp_c": value} for at, value in readings]
    return body


def trace_handover(handover: Handover) -> Json:
    """Return a change of custody with the shelf life left then as JSON."""
    return {"at": time(handover.at), "from": handover.from_party, "to": handover.to_party,
            "segment": handover.segment,
            "shelf_life_consumed_pct": _pct(handover.consumed),
            "shelf_life_remaining_pct": _pct(handover.remaining),
            "remaining_h": _float(handover.remaining_h), "unknown_h": _float(handover.unknown_h)}


def trace_custody_gap(gap: CustodyGap) -> Json:
    """Return time no custodian claims as JSON."""
    return {"start": time(gap.start), "end": time(gap.end), "hours": _float(gap.hours),
            "before": gap.before, "after": gap.after}


def trace_overlap(overlap: CustodyOverlap) -> Json:
    """Return time two custodians claim as JSON."""
    return {"start": time(overlap.start), "end": time(overlap.end),
            "hours": _float(overlap.hours), "first": overlap.first, "second": overlap.second}


def trace_qc_check(check: QcCheck) -> Json:
    """Return a quality check of the item as JSON."""
    return {"at": time(check.at), "party": check.party, "passed": check.passed,
            "core_c": check.core_c, "note": check.note}


def trace_event(event: TracedEvent) -> Json:
    """Return a ledger event about the item (without its document) as JSON."""
    return {"seq": event.seq, "event_id": event.event_id, "time": time(event.at),
            "biz_step": event.biz_step, "party": event.party, "source": event.source}


def trace_attribution(result: Attribution) -> Json:
    """Return who is responsible, how sure (0-1) and why, as JSON."""
    return {"party": result.party, "confidence": result.confidence,
            "explained_by_temperature": result.explained_by_temperature,
            "summary": result.summary, "scores": dict(result.scores),
            "reasons": [trace_reason(r) for r in result.reasons]}


def trace_reason(reason: Reason) -> Json:
    """Return one piece of attribution evidence as JSON."""
    return {"code": reason.code, "text": reason.text, "direction": reason.direction,
            "party": reason.party, "segment": reason.segment,
            "weight": _float(reason.weight),
            "confidence_factor": _float(reason.confidence_factor)}


def trace_order(order_id: str, traces: Sequence[ItemTrace]) -> Json:
    """Return the attribution of each item of an order as JSON."""
    return {"order_id": order_id, "items": [trace_order_item(t) for t in traces]}


def trace_order_item(found: ItemTrace) -> Json:
    """Return one item's attribution in brief (null party: no custody event on record)."""
    result = found.attribution
    return {"item_id": found.chain.item.id, "product": found.chain.item.product,
            "family": found.chain.item.family, "lot": found.chain.item.lot,
            "events": len(found.chain.events),
            "segments": 0 if found.report is None else len(found.report.segments),
            "party": None if result is None else result.party,
            "confidence": None if result is None else result.confidence,
            "explained_by_temperature": None if result is None
            else result.explained_by_temperature,
            "summary": None if result is None else result.summary}


def _pct(fraction: float) -> float:
    return round(100.0 * fraction, 2)


def _float(value: float | None) -> float | None:
    """A number rounded to 3 decimals, always a float in JSON (0.0, not 0); None stays."""
    return None if value is None else round(float(value), 3)
