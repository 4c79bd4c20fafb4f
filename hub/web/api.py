"""The hub's JSON API under /api/v1: thin adapters over hub.returns and hub.queries.

Every error is JSON ``{"error": "..."}`` naming what was wrong; validation errors add
``"fields": {field: problem}``. Bad JSON is 400, a missing or wrong token 401, an unknown id
404, a state clash 409 and a well-formed body with bad values 422.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, TypeVar

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge

from hub import alarms, epcis, orders, queries, returns, telemetry, trucks
from hub.errors import Conflict, HubError, InvalidInput, NotFound
from hub.fleet_view import fleet_view
from hub.inputs import RowId
from hub.models import Ticket
from hub.tickets import (
    agents,
    channels,
    contact,
    evidence,
    intake,
    kpis,
    manual_assignment,
    qc,
    routing,
    search,
    states,
    triage_review,
    workflow,
)
from hub.tickets.models import Agent
from hub.trace import export_events, import_document, item_trace, order_items
from hub.triage.taxonomy import CATEGORIES
from hub.web import accounts, code_rng, coldchain, db_session, hub_settings, now
from hub.web import serialize as js
from hub.web import tickets_json as tj
from hub.web.guards import IdOutOfRange
from hub.web.problems import describe, json_type
from protocols.instants import Instant
from protocols.storable import unstorable

logger = logging.getLogger(__name__)

PREFIX = "/api/v1"
bp = Blueprint("api", __name__, url_prefix=PREFIX)
PUBLIC_ENDPOINTS = frozenset({"api.health"})
STATUS_OF: dict[type[HubError], int] = {NotFound: 404, Conflict: 409, InvalidInput: 422}

M = TypeVar("M", bound=BaseModel)
TRUCK_ID = re.compile(r"^[A-Za-z0-9_-]{1,24}$")
EPCIS_MEDIA_TYPE = "application/ld+json"
OPEN_TICKETS = "open"  # a status filter: every open status
API_ACTOR = "api"  # who the agents' records say changed them through the API (a system)


# --- request models ------------------------------------------------------------------------


class _Body(BaseModel):
    # Strict: a number where a string belongs is an error, not silently "123".
    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True)


class TicketRequest(_Body):
    """A customer's complaint about one item of an order."""

    order_id: Annotated[str, Field(min_length=1, max_length=32)]
    item_id: Annotated[str, Field(min_length=1, max_length=16)]
    channel: Literal["app", "mini_program", "hotline", "social"]
    text: Annotated[str, Field(min_length=1, max_length=returns.MAX_TEXT)]


class CollectRequest(_Body):
    """A driver's proof of collection: the customer's pickup code."""

    code: Annotated[str, Field(min_length=1, max_length=32)]
    driver: Annotated[str, Field(min_length=1, max_length=64)]
    location: Annotated[str, Field(min_length=1, max_length=64)]


class TruckReadingBody(_Body):
    """One reading of a reefer truck's logger."""

    # Not strict: timestamps arrive as ISO 8601 strings in JSON.
    model_config = ConfigDict(strict=False)
    compartment: Annotated[str, Field(min_length=1, max_length=16,
                                      pattern=r"^[A-Za-z0-9_-]+$")] = "main"
    ts: Instant
    temp_c: Annotated[float, Field(ge=-60, le=80, allow_inf_nan=False)] | None


class TruckLogRequest(_Body):
    """A reefer truck's temperature log, uploaded by the driver's device."""

    model_config = ConfigDict(strict=False)
    upload_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    readings: Annotated[list[TruckReadingBody], Field(min_length=1, max_length=10_000)]


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScansQuery(_Query):
    """Query string of GET /scans."""

    limit: Annotated[int, Field(ge=1, le=queries.MAX_LIMIT)] = 50
    since: Instant | None = None


class LimitQuery(_Query):
    """Query string of list endpoints that only page by count."""

    limit: Annotated[int, Field(ge=1, le=queries.MAX_LIMIT)] = 50


class AlarmsQuery(_Query):
    """Query string of GET /fleet/alarms: open ones, cleared ones, or (omitted) both."""

    open: bool | None = None
    limit: Annotated[int, Field(ge=1, le=queries.MAX_LIMIT)] = 50


class AckRequest(_Body):
    """Who acknowledges a fleet alarm."""

    by: Annotated[str, Field(min_length=1, max_length=alarms.MAX_ACK_BY)]


class TelemetryQuery(_Query):
    """Query string of GET /telemetry: one probe over a time range."""

    probe: Annotated[str, Field(min_length=1, max_length=32)]
    since: Instant
    until: Instant
    resolution: Literal["raw", "window"] = "raw"
    source: Annotated[str, Field(min_length=1, max_length=32)] | None = None


class TraceQuery(_Query):
    """Query string of GET /trace/items/<id>: ``readings=true`` adds each segment's readings."""

    readings: bool = False


class TraceImportQuery(_Query):
    """Query string of POST /trace/import: who sent the document (its events' source)."""

    name: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")]


# --- request models of tickets (hub.tickets; the channels' payloads are hub.tickets.channels)


class TransitionRequest(_Body):
    """A workflow transition: the target status, who and why, and what its guard needs."""

    to: Literal["confirming", "handling", "awaiting_evidence", "resolved", "followed_up",
                "closed", "merged"]
    actor: Annotated[str, Field(min_length=1, max_length=64)]
    reason: Annotated[str, Field(max_length=2000)] = ""
    handling: Literal["simple", "complex"] | None = None
    resolution: Annotated[str, Field(min_length=1, max_length=16)] | None = None
    satisfaction: Annotated[int, Field(ge=1, le=5)] | None = None
    comment: Annotated[str, Field(max_length=2000)] | None = None
    merged_into: RowId | None = None


class TriageCheckRequest(_Body):
    """A person confirms (neither given) or corrects a ticket's category and urgency."""

    actor: Annotated[str, Field(min_length=1, max_length=64)]
    category: Literal[CATEGORIES] | None = None  # type: ignore[valid-type]
    urgency: Literal["P1", "P2", "P3", "P4"] | None = None
    reason: Annotated[str, Field(max_length=2000)] = ""


class QcFindingRequest(_Body):
    """What quality control found on a complex case's goods."""

    actor: Annotated[str, Field(min_length=1, max_length=qc.MAX_ACTOR)]
    outcome: Literal["confirmed", "not_confirmed", "inconclusive"]
    finding: Annotated[str, Field(min_length=1, max_length=qc.MAX_FINDING)]


class ContactRequest(_Body):
    """An agent's message to the customer, a logged call, or an internal note."""

    author: Annotated[str, Field(min_length=1, max_length=64)]
    text: Annotated[str, Field(min_length=1, max_length=intake.MAX_TEXT)]
    kind: Literal["message", "call", "note"] = "message"


class ShiftRequest(_Body):
    """An agent starts or ends a shift (and may say whether they are online)."""

    on_shift: bool
    online: bool | None = None


class AssignRequest(_Body):
    """A manual assignment: the agent, who assigns and why; override skips the checks."""

    agent_id: Annotated[str, Field(min_length=1, max_length=32, pattern=agents.AGENT_ID.pattern)]
    actor: Annotated[str, Field(min_length=1, max_length=64)]
    reason: Annotated[str, Field(max_length=2000)] = ""
    override: bool = False


class TicketsQuery(_Query):
    """Query string of GET /tickets."""

    status: Annotated[str, Field(min_length=1, max_length=20)] | None = None
    assignee: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    triage: Literal["auto", "review", "confirmed", "corrected"] | None = None
    q: str | None = None  # hub.tickets.search.matching
    limit: Annotated[int, Field(ge=1, le=queries.MAX_LIMIT)] = 50


class QcQuery(_Query):
    """Query string of GET /qc/checks."""

    status: Literal["open", "done"] = "open"
    limit: Annotated[int, Field(ge=1, le=500)] = 200


class SurveyAnswerRequest(_Body):
    """A customer's survey answer relayed by a channel's backend (the app, the mini-program)."""

    score: Annotated[int, Field(ge=1, le=5, strict=True)]
    comment: Annotated[str, Field(max_length=2000)] | None = None
    recommend: Annotated[int, Field(ge=0, le=10, strict=True)] | None = None  # for the NPS


class KpiQuery(_Query):
    """Query string of GET /tickets/kpis: the period (default: the seven days up to now)."""

    since: Instant | None = None
    until: Instant | None = None
    team: Annotated[str, Field(min_length=1, max_length=32)] = "support"


class EvidenceQuery(_Query):
    """Query string of POST /tickets/<id>/evidence with a raw body."""

    by: Annotated[str, Field(min_length=1, max_length=64)] = "customer"
    filename: Annotated[str, Field(min_length=1, max_length=200)] | None = None


# --- routes --------------------------------------------------------------------------------


@bp.get("/health")
def health() -> tuple[Response, int]:
    """Report whether the API is up and its database answers (no token needed), and, in
    ``hub serve``, how ingest and the periodic jobs fare; 503 if anything is not ok."""
    try:
        db_session().execute(text("SELECT 1"))
        database = "ok"
    except SQLAlchemyError as err:
        logger.warning("health check: database unreachable: %s", err)
        database = "unreachable"
    checks: Callable[[], dict[str, dict[str, Any]]] | None = \
        current_app.config.get("COLDLOOP_HEALTH")
    components = checks() if checks is not None else {}
    ok = database == "ok" and all(c["ok"] for c in components.values())
    body: dict[str, Any] = {"status": "ok" if ok else "error", "database": database}
    if components:
        body["components"] = components
    return jsonify(body), 200 if ok else 503


@bp.get("/items/<item_id>")
def item(item_id: str) -> Response:
    """Return an item with its scans, grades and custody records, oldest first."""
    history = queries.item_history(db_session(), item_id)
    if history is None:
        raise NotFound(f"item {item_id!r} does not exist")
    return jsonify(js.item_history(history))


@bp.get("/orders/<order_id>")
def order(order_id: str) -> Response:
    """Return an order with its items, tickets, pickups and the latest grade of each item."""
    view = queries.order_view(db_session(), order_id)
    if view is None:
        raise NotFound(f"order {order_id!r} does not exist")
    return jsonify(js.order_view(view))


@bp.put("/customers/<customer_id>")
def put_customer(customer_id: str) -> tuple[Response, int]:
    """Create or update a customer from the shop's order system: 201 created, else 200."""
    _record_id("customer id", customer_id)
    body = _parse(orders.CustomerRecord, _json_body(), "field")
    session = db_session()
    put = orders.put_customer(session, customer_id, body)
    session.commit()
    return jsonify(customer_id=customer_id, outcome=put.outcome), 201 if put.created else 200


@bp.put("/orders/<order_id>")
def put_order(order_id: str) -> tuple[Response, int]:
    """Create or update an order, its items and maybe its customer: 201 created, else 200."""
    _record_id("order id", order_id)
    body = _parse(orders.OrderRecord, _json_body(), "field")
    session = db_session()
    result = orders.put_order(session, order_id, body, coldchain().families)
    session.commit()
    return jsonify(order_id=order_id, outcome=result.put.outcome,
                   customer=result.customer.outcome if result.customer else None,
                   items_added=result.items_added, items_changed=result.items_changed), \
        201 if result.put.created else 200


@bp.get("/scans")
def scans() -> Response:
    """Return the newest scans, or with ``since`` (ISO 8601 with offset) those after it."""
    args = _parse(ScansQuery, _query(), "query parameter")
    found = queries.recent_scans(db_session(), limit=args.limit, since=args.since)
    return jsonify(scans=[js.scan(s) for s in found])


@bp.get("/grades")
def grades() -> Response:
    """Return the newest grades, newest first."""
    args = _parse(LimitQuery, _query(), "query parameter")
    rows = queries.recent_grades(db_session(), limit=args.limit)
    return jsonify(grades=[js.grade_row(row) for row in rows])


@bp.get("/fleet")
def fleet() -> Response:
    """Return the fleet registry: gateways (state, health, reader rate), stations and probes."""
    session = db_session()
    view = fleet_view(session, now(), hub_settings().fleet)
    return jsonify(js.fleet(view, alarms.open_counts(session)))


@bp.get("/fleet/alarms")
def fleet_alarms() -> Response:
    """Return fleet alarms newest first; ``open=true`` only open ones, ``open=false`` cleared."""
    args = _parse(AlarmsQuery, _query(), "query parameter")
    found = alarms.list_alarms(db_session(), open_only=args.open, limit=args.limit)
    return jsonify(alarms=[js.fleet_alarm(a) for a in found])


@bp.post("/fleet/alarms/<int:alarm_id>/ack")
def acknowledge_alarm(alarm_id: int) -> Response:
    """Acknowledge a fleet alarm, open or cleared; acknowledging again keeps the first."""
    body = _parse(AckRequest, _json_body(), "field")
    session = db_session()
    alarm = alarms.acknowledge(session, alarm_id, body.by, now())
    session.commit()
    return jsonify(js.fleet_alarm(alarm))


@bp.get("/quarantine")
def quarantine() -> Response:
    """Return the newest messages the hub could not accept, with the reason."""
    args = _parse(LimitQuery, _query(), "query parameter")
    found = queries.quarantine(db_session(), limit=args.limit)
    return jsonify(messages=[js.quarantined(m) for m in found])


@bp.post("/tickets")
def open_ticket() -> tuple[Response, int]:
    """Record a complaint; answer with its ticket and the item's pickup code."""
    body = _parse(TicketRequest, _json_body(), "field")
    session = db_session()
    ticket, pickup = returns.open_return(
        session, order_id=body.order_id, item_id=body.item_id, channel=body.channel,
        text=body.text, now=now(), rng=code_rng())
    session.commit()
    return jsonify(ticket_id=ticket.id, pickup_code=pickup.code, pickup_id=pickup.id,
                   item_id=pickup.item_id), 201


@bp.post("/pickups/collect")
def collect() -> Response:
    """Record that a driver collected a return; safe to retry."""
    body = _parse(CollectRequest, _json_body(), "field")
    session = db_session()
    record = returns.collect(session, code=body.code, driver=body.driver,
                             location=body.location, now=now())
    session.commit()
    return jsonify(js.custody(record))


@bp.post("/trucks/<truck_id>/temperature-log")
def truck_log(truck_id: str) -> tuple[Response, int]:
    """Store a reefer truck's temperature log; a repeated upload is acknowledged, not stored."""
    if not TRUCK_ID.match(truck_id):
        raise InvalidInput(f"truck id {truck_id!r} must be 1-24 of A-Z a-z 0-9 _ -")
    body = _parse(TruckLogRequest, _json_body(), "field")
    session = db_session()
    count, duplicate = trucks.store_truck_log(
        session, truck_id=truck_id, upload=body.upload_id, now=now(),
        readings=[trucks.TruckReading(r.compartment, r.ts, r.temp_c) for r in body.readings])
    session.commit()
    return jsonify(truck_id=truck_id, upload_id=body.upload_id, readings=count,
                   duplicate=duplicate), 200 if duplicate else 201


@bp.get("/telemetry")
def telemetry_range() -> Response:
    """Return one probe's readings (or 5-minute windows) between ``since`` and ``until``."""
    args = _parse(TelemetryQuery, _query(), "query parameter")
    session = db_session()
    found: dict[str, Any] = {"probe": args.probe, "since": js.time(args.since),
                             "until": js.time(args.until), "resolution": args.resolution}
    if args.resolution == "raw":
        rows = telemetry.probe_readings(session, args.probe, args.since, args.until,
                                        source=args.source)
        found["readings"] = [js.probe_reading(r) for r in rows]
    else:
        windows = telemetry.probe_windows(session, args.probe, args.since, args.until,
                                          source=args.source)
        found["window_s"] = telemetry.WINDOW_S
        found["windows"] = [js.telemetry_window(w) for w in windows]
    return jsonify(found)


@bp.get("/trace/items/<item_id>")
def trace_item(item_id: str) -> Response:
    """Return an item's trace: source, events, segments, handovers, QC and attribution."""
    args = _parse(TraceQuery, _query(), "query parameter")
    found = item_trace(db_session(), item_id, coldchain())
    return jsonify(js.trace_item(found, readings=args.readings))


@bp.get("/trace/orders/<order_id>")
def trace_order(order_id: str) -> Response:
    """Return who is responsible, per item of an order, with the confidence and a summary."""
    session = db_session()
    traces = [item_trace(session, item_id, coldchain())
              for item_id in order_items(session, order_id)]
    return jsonify(js.trace_order(order_id, traces))


@bp.get("/trace/items/<item_id>/epcis")
def trace_item_epcis(item_id: str) -> Response:
    """Return the item's ledger events as an EPCIS 2.0 document (JSON-LD)."""
    events = export_events(db_session(), item_ids=[item_id])
    document = epcis.document(events, created=now())
    return Response(json.dumps(document, ensure_ascii=False), mimetype=EPCIS_MEDIA_TYPE)


@bp.post("/trace/import")
def trace_import() -> tuple[Response, int]:
    """Append a partner's EPCIS 2.0 document to the ledger; resending it changes nothing.

    201 when events were appended, 200 when all were already there; 422 names the schema
    problems, 409 an event resent with another document, 413 a document over the size limit.
    """
    args = _parse(TraceImportQuery, _query(), "query parameter")
    limit = epcis.MAX_DOCUMENT_BYTES
    too_large = (f"EPCIS document is over the limit of {limit} bytes; split it into several "
                 "documents")
    if request.content_length is not None and request.content_length > limit:
        return error_response(413, too_large), 413
    request.max_content_length = limit  # documents are larger than other API bodies
    try:
        data = request.get_data(cache=False)
    except RequestEntityTooLarge:  # a streamed body without a Content-Length
        return error_response(413, too_large), 413
    session = db_session()
    try:
        entries = import_document(session, data, name=args.name, now=now())
    except InvalidInput as err:  # EpcisError: the schema's problems, each naming its field
        problems = getattr(err, "problems", None) or [str(err)]
        response = jsonify(error=str(err), problems=problems)
        return response, 422
    session.commit()
    appended = sum(1 for entry in entries if entry.new)
    seqs = [entry.seq for entry in entries]
    return jsonify(appended=appended, events=len(entries), first_seq=min(seqs, default=None),
                   last_seq=max(seqs, default=None)), 201 if appended else 200


# --- tickets: intake, workflow, evidence, agents (hub.tickets, docs/tickets.md) -------------


@bp.post("/intake/<channel>")
def intake_message(channel: str) -> tuple[Response, int]:
    """Take one channel's webhook: 201 with a new ticket, 200 when joined or redelivered."""
    payload = channels.PAYLOADS.get(channel)
    if payload is None:
        raise NotFound(f"no intake channel {channel!r}; use one of "
                       f"{', '.join(sorted(channels.PAYLOADS))}")
    body = _parse(payload, _json_body(), "field")
    session = db_session()
    result = intake.receive(session, body.complaint(), now())
    session.commit()
    return jsonify(ticket_id=result.ticket.id, message_id=result.message.id,
                   status=result.ticket.status, assignee_id=result.ticket.assignee_id,
                   created=result.created, duplicate=result.duplicate), \
        201 if result.created else 200


@bp.get("/tickets")
def list_tickets() -> Response:
    """Return tickets newest first, optionally by status, assignee, triage state and a search
    (``q``: a ticket number, an order, a customer or words; hub.tickets.search)."""
    args = _parse(TicketsQuery, _query(), "query parameter")
    known = sorted({OPEN_TICKETS, *states.ALL_STATUSES})
    if args.status is not None and args.status not in known:
        raise Unprocessable(f"status: not one of {', '.join(known)}",
                            {"status": f"not one of {', '.join(known)}"})
    query = select(Ticket).order_by(Ticket.created_at.desc(), Ticket.id.desc())
    if args.status == OPEN_TICKETS:  # as the ticket pool's default filter
        query = query.where(Ticket.status.in_(states.STILL_OPEN))
    elif args.status is not None:
        query = query.where(Ticket.status == args.status)
    if args.assignee is not None:
        query = query.where(Ticket.assignee_id == args.assignee)
    if args.triage is not None:
        query = query.where(Ticket.triage_state == args.triage)
    if args.q is not None:
        try:
            query = query.where(search.matching(args.q))
        except InvalidInput as err:
            raise Unprocessable(f"q: {err}", {"q": str(err)}) from None
    found = db_session().scalars(query.limit(args.limit)).all()
    return jsonify(tickets=[tj.ticket_summary(t) for t in found])


@bp.get("/qc/checks")
def qc_checks() -> Response:
    """Return quality control's checks: open ones oldest first, or done ones latest first."""
    args = _parse(QcQuery, _query(), "query parameter")
    session = db_session()
    found = (qc.open_checks(session, limit=args.limit) if args.status == "open"
             else qc.done_checks(session, limit=args.limit))
    return jsonify(checks=[tj.qc_check(c) for c in found])


@bp.post("/qc/checks/<int:check_id>/finding")
def qc_finding(check_id: int) -> Response:
    """Record what QC found (once: 409 after); it lands on the ticket as a note."""
    body = _parse(QcFindingRequest, _json_body(), "field")
    session = db_session()
    check = qc.record_finding(session, check_id, actor=body.actor, outcome=body.outcome,
                              finding=body.finding, now=now())
    session.commit()
    return jsonify(tj.qc_check(check))


@bp.post("/surveys/<token>")
def survey_answer(token: str) -> tuple[Response, int]:
    """Take a customer's survey answer; 409 when the link was used, withdrawn or expired."""
    body = _parse(SurveyAnswerRequest, _json_body(), "field")
    session = db_session()
    survey = workflow.answer_survey(session, token, body.score, body.comment, now(),
                                    recommend=body.recommend)
    session.commit()
    return jsonify(ticket_id=survey.ticket_id, status="answered", score=survey.score,
                   recommend=survey.recommend), 201


@bp.get("/tickets/kpis")
def ticket_kpis() -> Response:
    """Return the helpdesk KPIs of a period, each on its cohort (docs/tickets.md, KPIs)."""
    args = _parse(KpiQuery, _query(), "query parameter")
    since, until = kpis.default_period(now(), args.since, args.until)
    return jsonify(tj.kpis(kpis.ticket_kpis(db_session(), since, until, now(),
                                            team=args.team)))


@bp.get("/tickets/<int:ticket_id>")
def ticket_detail(ticket_id: int) -> Response:
    """Return a ticket with its messages, evidence, transitions, clocks and assignment."""
    session = db_session()
    found = session.get(Ticket, ticket_id)
    if found is None:
        raise NotFound(f"ticket {ticket_id} does not exist")
    return jsonify(tj.ticket_detail(session, found))


@bp.post("/tickets/<int:ticket_id>/transitions")
def ticket_transition(ticket_id: int) -> tuple[Response, int]:
    """Move a ticket through its workflow; 409 names a transition that is not allowed."""
    body = _parse(TransitionRequest, _json_body(), "field")
    session = db_session()
    change = workflow.Change(actor=body.actor, reason=body.reason, handling=body.handling,
                             resolution=body.resolution, satisfaction=body.satisfaction,
                             comment=body.comment, merged_into=body.merged_into)
    record = workflow.transition(session, ticket_id, body.to, change, now())
    session.commit()
    found = session.get(Ticket, ticket_id)
    assert found is not None
    return jsonify(transition=tj.transition(record), ticket=tj.ticket_summary(found)), 201


@bp.post("/tickets/<int:ticket_id>/messages")
def ticket_message(ticket_id: int) -> tuple[Response, int]:
    """Record an agent's message, call or note; the first contact stops its clock."""
    body = _parse(ContactRequest, _json_body(), "field")
    session = db_session()
    record = contact.record_contact(session, ticket_id, agent=body.author, text=body.text,
                                    kind=body.kind, now=now())
    session.commit()
    return jsonify(tj.message(record)), 201


@bp.post("/tickets/<int:ticket_id>/triage")
def ticket_triage(ticket_id: int) -> tuple[Response, int]:
    """Confirm or correct a ticket's triage; a changed category may hand the ticket over."""
    body = _parse(TriageCheckRequest, _json_body(), "field")
    session = db_session()
    record = triage_review.check_triage(session, ticket_id, actor=body.actor, now=now(),
                                        category=body.category, urgency=body.urgency,
                                        reason=body.reason)
    session.commit()
    found = session.get(Ticket, ticket_id)
    assert found is not None
    return jsonify(correction=tj.triage_correction(record), ticket=tj.ticket_summary(found)), 201


@bp.post("/tickets/<int:ticket_id>/assign")
def ticket_assign(ticket_id: int) -> Response:
    """Give a ticket to a named agent; 422 names the checks the agent fails (or override)."""
    body = _parse(AssignRequest, _json_body(), "field")
    session = db_session()
    found = manual_assignment.assign_by_hand(session, ticket_id, body.agent_id, now(),
                                             actor=body.actor, reason=body.reason,
                                             override=body.override)
    session.commit()
    return jsonify(tj.ticket_detail(session, found))


@bp.post("/tickets/<int:ticket_id>/evidence")
def ticket_evidence(ticket_id: int) -> tuple[Response, int]:
    """Store a photo or file (multipart field ``file``, or the raw body with its type).

    201 for a new file of the ticket, 200 when the same bytes were uploaded before.
    """
    request.max_content_length = evidence.MAX_EVIDENCE_BYTES + 64 * 1024
    args = _parse(EvidenceQuery, _query(), "query parameter")
    upload = request.files.get("file") if request.mimetype == "multipart/form-data" else None
    if upload is not None:
        data, content_type = upload.read(), upload.mimetype or ""
        filename = upload.filename or args.filename
    elif request.mimetype == "multipart/form-data":
        raise Unprocessable("file: required form field is missing",
                            {"file": "required form field is missing"})
    else:
        data, content_type, filename = request.get_data(), request.mimetype, args.filename
    session = db_session()
    record, new = evidence.store_evidence(
        session, ticket_id, data, content_type=content_type, uploaded_by=args.by,
        data_dir=hub_settings().data_dir, now=now(), filename=filename)
    session.commit()
    return jsonify(tj.evidence(record)), 201 if new else 200


@bp.get("/agents")
def list_agents() -> Response:
    """Every agent with their profile, presence and open tickets, by id."""
    session = db_session()
    counts = routing.open_counts(session)
    return jsonify(agents=[tj.agent(a) | {"open_tickets": counts.get(a.id, 0)}
                           for a in session.scalars(select(Agent).order_by(Agent.id))])


@bp.get("/agents/<agent_id>")
def get_agent(agent_id: str) -> Response:
    """One agent with their profile, presence, open tickets and latest recorded changes."""
    session = db_session()
    record = session.get(Agent, agent_id)
    if record is None:
        raise NotFound(f"agent {agent_id!r} does not exist")
    return jsonify(tj.agent(record) | {
        "open_tickets": routing.open_count(session, agent_id),
        "changes": [{"at": js.time(c.at), "actor": c.actor, "action": c.action,
                     "changes": c.changes} for c in agents.changes_of(session, agent_id)]})


@bp.post("/agents/<agent_id>")
def create_agent(agent_id: str) -> tuple[Response, int]:
    """Register an agent; 409 if the id is taken (PUT updates)."""
    return _save_agent(agent_id, create_only=True), 201


@bp.put("/agents/<agent_id>")
def update_agent(agent_id: str) -> Response:
    """Create or replace an agent's profile (shift state is kept: see /shift); the tickets
    the agent no longer covers are handed over (hub.tickets.agents)."""
    return _save_agent(agent_id)


def _save_agent(agent_id: str, *, create_only: bool = False) -> Response:
    profile = _parse(agents.AgentProfile, _json_body(), "field")
    session = db_session()
    accounts.check_new_agent_id(session, agent_id, hub_settings().web)
    saved = agents.save_agent(session, agent_id, profile, now(), actor=API_ACTOR,
                              create_only=create_only)
    session.commit()
    return jsonify(tj.agent(saved.agent) | {
        "assigned": saved.assigned,
        "handed_over": [{"ticket_id": t.id, "to": a.id if a else None}
                        for t, a in saved.handed_over]})


@bp.post("/agents/<agent_id>/shift")
def agent_shift(agent_id: str) -> Response:
    """Start a shift (the queue is worked) or end it (un-contacted tickets are handed over)."""
    body = _parse(ShiftRequest, _json_body(), "field")
    session = db_session()
    handed: list[dict[str, Any]] = []
    assigned = 0
    if body.on_shift:
        assigned = agents.start_shift(session, agent_id, now(), actor=API_ACTOR)
        if body.online is False:
            record = session.get(Agent, agent_id)
            assert record is not None
            record.online = False
    else:
        handed = [{"ticket_id": t.id, "to": a.id if a else None}
                  for t, a in agents.end_shift(session, agent_id, now(), actor=API_ACTOR)]
        if body.online is not None:
            record = session.get(Agent, agent_id)
            assert record is not None
            record.online = body.online
    session.commit()
    record = session.get(Agent, agent_id)
    assert record is not None
    return jsonify(agent=tj.agent(record), assigned=assigned, handed_over=handed)


# --- plumbing ------------------------------------------------------------------------------


class UnreadableRequest(HubError):
    """A request the API cannot read at all (not JSON, not an object)."""


class Unprocessable(InvalidInput):
    """A readable request whose values are invalid; carries the problem of each field."""

    def __init__(self, message: str, fields: Mapping[str, str]) -> None:
        super().__init__(message)
        self.fields = dict(fields)


def init_app(app: Flask) -> None:
    """Register the API blueprint on ``app``."""
    app.register_blueprint(bp)


@bp.before_request
def _require_token() -> Response | None:
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        problem = "missing Authorization header; send 'Authorization: Bearer <api token>'"
    elif scheme.lower() != "bearer" or not token.strip():
        problem = "Authorization header must be 'Bearer <api token>'"
    elif not hmac.compare_digest(token.strip().encode(),
                                 hub_settings().web.api_token.encode()):
        problem = "invalid API token"
    else:
        return None
    logger.info("API request to %s refused: %s", request.path, problem)
    response = error_response(401, problem)
    response.headers["WWW-Authenticate"] = 'Bearer realm="coldloop"'
    return response


@bp.errorhandler(HubError)
def _hub_error(err: HubError) -> Response:
    # UnreadableRequest and any other HubError outside the families: 400.
    status = next((code for family, code in STATUS_OF.items() if isinstance(err, family)), 400)
    fields = err.fields if isinstance(err, Unprocessable) else None
    return error_response(status, str(err), fields)


def is_api_request() -> bool:
    """Return whether the current request is for the JSON API."""
    return request.path == PREFIX or request.path.startswith(PREFIX + "/")


def http_error(err: HTTPException) -> Response:
    """Return a werkzeug HTTP error (404, 405, 413, 500, ...) as a JSON error response."""
    status = err.code or 500
    if isinstance(err, IdOutOfRange):
        message = str(err.description)
    elif status == 404:
        message = f"no such API endpoint: {request.method} {request.path}"
    elif isinstance(err, MethodNotAllowed):
        allowed = ", ".join(sorted(m for m in err.valid_methods or () if m != "OPTIONS"))
        message = f"method {request.method} is not allowed on {request.path}; use {allowed}"
    elif status == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        message = f"request body is over the limit of {limit} bytes"
    elif status >= 500:
        message = "internal error in the hub; the hub's log has the details"
    else:
        message = f"{err.name}: {err.description}" if err.description else str(err.name)
    response = error_response(status, message)
    for name, value in err.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def error_response(status: int, message: str,
                   fields: Mapping[str, str] | None = None) -> Response:
    """Build the API's JSON error body."""
    body: dict[str, Any] = {"error": message}
    if fields:
        body["fields"] = dict(fields)
    response = jsonify(body)
    response.status_code = status
    return response


def _record_id(what: str, value: str) -> None:
    if not orders.is_record_id(value):
        raise Unprocessable(f"{what} {value!r}: {orders.RECORD_ID_RULE}", {what: "not a valid id"})


def _json_body() -> Any:
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise UnreadableRequest("request body is empty; send a JSON object")
    try:
        data = request.get_json(force=True, silent=True)
    except RecursionError:
        raise UnreadableRequest("request body is nested too deeply to read") from None
    if data is None:
        raise UnreadableRequest("request body is not valid JSON; send a JSON object "
                         "with Content-Type: application/json")
    found = unstorable(data, "(body)")
    if found is not None:
        where, problem = found
        raise Unprocessable(f"{where}: {problem}", {where: problem})
    return data


def _query() -> dict[str, str]:
    """The query string as a dict; a parameter given twice is refused, not half-read."""
    repeated = sorted(name for name, values in request.args.lists() if len(values) > 1)
    if repeated:
        problems = {name: "given more than once" for name in repeated}
        raise Unprocessable("; ".join(f"{name}: given more than once" for name in repeated),
                            problems)
    return request.args.to_dict()


def _parse(model: type[M], data: Any, what: str) -> M:
    if not isinstance(data, dict):
        raise UnreadableRequest(f"request body must be a JSON object, got {json_type(data)}")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        fields = describe(err, what)
        raise Unprocessable("; ".join(f"{name}: {problem}" for name, problem in fields.items()),
                            fields) from None
