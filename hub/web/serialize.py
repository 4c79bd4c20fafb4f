"""The JSON shapes of hub records in the API."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

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
from hub.telemetry import ProbeReading, WindowView

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
