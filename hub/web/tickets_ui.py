"""The admin UI's ticket pages: the ticket pool, one ticket with its actions, the agents.

Every change goes through the domain functions of ``hub.tickets`` (``workflow.transition``,
``contact.record_contact``, ``manual_assignment.assign_by_hand`` and ``hub.tickets.agents``)
as the signed-in user, at the hub's clock (``hub.web.now``).
A domain error (``Conflict``, ``InvalidInput``, ...) is rolled back and shown as a flash
message on the page the form came from.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from flask import (
    Blueprint,
    Flask,
    abort,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from pydantic import ValidationError
from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response as BaseResponse

from hub import phones
from hub.errors import Conflict, HubError, InvalidInput
from hub.models import Ticket
from hub.queries import as_utc
from hub.tickets import (
    contact,
    evidence,
    intake,
    kpis,
    manual_assignment,
    qc,
    routing,
    search,
    shifts,
    sla,
    states,
    triage_review,
    workflow,
)
from hub.tickets.agents import (
    AGENT_ID,
    AGENT_ID_RULE,
    ALL_SKILLS,
    AgentProfile,
    AgentSaved,
    changes_of,
    end_shift,
    save_agent,
    set_online,
    start_shift,
    system_actor_problem,
)
from hub.tickets.call_back import call_back
from hub.tickets.lookup import related_tickets
from hub.tickets.models import (
    Agent,
    SlaClock,
    TicketAssignment,
    TicketEscalation,
    TicketEvidence,
    TicketMessage,
    TicketTransition,
)
from hub.tickets.policy import DEFAULT_CONFIG
from hub.triage.taxonomy import CATEGORIES, LANGUAGES
from hub.web import accounts, db_session, hub_settings, now
from hub.web.problems import describe
from hub.web.ui import EXPIRED, _csrf_ok, current_user, login_required, managers_only
from protocols.instants import within_range

logger = logging.getLogger(__name__)

bp = Blueprint("tickets", __name__)  # templates and static files are the app's (hub/web/...)

PAGE_SIZE = 50
MAX_PAGE = 100_000
MAX_REASON = 2000  # as the API's TransitionRequest
MAX_ACTOR = 64  # ticket_transitions.actor, ticket_messages.author
ALL = "all"
OPEN = "open"  # every open status (and the legacy status "open")
UNASSIGNED = "unassigned"  # the team's queue
# The workflow's statuses in the order a ticket goes through them.
STATUS_ORDER = (states.NEW, states.CONFIRMING, states.HANDLING, states.AWAITING_EVIDENCE,
                states.RESOLVED, states.FOLLOWED_UP, states.CLOSED, states.MERGED)
URGENCY_COLOURS = {"P1": "red", "P2": "amber", "P3": "grey", "P4": "grey"}
MESSAGE_KINDS = ("message", "call", "note")


def init_app(app: Flask) -> None:
    """Register the ticket pages on ``app``."""
    app.register_blueprint(bp)


# --- the ticket pool -----------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """The ticket pool's filters; an empty string does not filter."""

    status: str = OPEN
    assignee: str = ""
    category: str = ""
    urgency: str = ""
    channel: str = ""
    triage: str = ""  # a triage state: "review" is the triage review queue
    q: str = ""  # a search: hub.tickets.search.matching
    escalated_to: str = ""  # a supervisor an SLA breach of the ticket was escalated to

    def args(self, **changes: Any) -> dict[str, Any]:
        """Return the query string of these filters (with ``changes``), without empty ones."""
        values = {"status": self.status, "assignee": self.assignee, "category": self.category,
                  "urgency": self.urgency, "channel": self.channel, "triage": self.triage,
                  "q": self.q, "escalated_to": self.escalated_to, **changes}
        return {name: value for name, value in values.items() if value not in ("", None)}

    def conditions(self, *, with_status: bool = True) -> list[ColumnElement[bool]]:
        """Return the SQL conditions of these filters."""
        found: list[ColumnElement[bool]] = []
        if with_status and self.status == OPEN:
            found.append(Ticket.status.in_(states.STILL_OPEN))
        elif with_status and self.status != ALL:
            found.append(Ticket.status == self.status)
        if self.assignee == UNASSIGNED:
            found.append(Ticket.assignee_id.is_(None))
        elif self.assignee:
            found.append(Ticket.assignee_id == self.assignee)
        if self.category:
            found.append(Ticket.category == self.category)
        if self.urgency:
            found.append(Ticket.urgency == self.urgency)
        if self.channel:
            found.append(Ticket.channel == self.channel)
        if self.triage:
            found.append(Ticket.triage_state == self.triage)
        if self.q:
            found.append(search.matching(self.q))
        if self.escalated_to:
            found.append(escalated_to(self.escalated_to))
        return found


def escalated_to(supervisor: str) -> ColumnElement[bool]:
    """Tickets an SLA breach was escalated to ``supervisor`` for (hub.tickets.sla)."""
    return exists(select(TicketEscalation.id).where(
        TicketEscalation.ticket_id == Ticket.id, TicketEscalation.kind == "sla_breach",
        TicketEscalation.action == "supervisor", TicketEscalation.notify == supervisor))


@dataclass(frozen=True)
class Choices:
    """The values each filter accepts."""

    statuses: tuple[str, ...]
    agents: tuple[Agent, ...]
    categories: tuple[str, ...]
    urgencies: tuple[str, ...]
    channels: tuple[str, ...]
    triage_states: tuple[str, ...] = triage_review.TRIAGE_STATES


@dataclass(frozen=True)
class PoolRow:
    """A ticket of the pool with its SLA clock due soonest (and a paused one, if any)."""

    ticket: Ticket
    next_clock: SlaClock | None
    paused: SlaClock | None


def choices(db: Session) -> Choices:
    """Return what the filters accept: known statuses, agents, categories and channels."""
    stored_categories = db.scalars(select(Ticket.category).distinct()).all()
    stored_channels = db.scalars(select(Ticket.channel).distinct()).all()
    return Choices(
        statuses=(OPEN, ALL, *STATUS_ORDER),
        agents=tuple(db.scalars(select(Agent).order_by(Agent.id))),
        categories=(*CATEGORIES, *sorted({c for c in stored_categories if c}
                                         - set(CATEGORIES))),
        urgencies=states.URGENCIES,
        channels=tuple(sorted(intake.CHANNELS | {c for c in stored_channels if c})))


def parse_filters(args: Mapping[str, str], known: Choices) -> tuple[Filters, int]:
    """Read the filters and the page number; raise InvalidInput naming every bad value."""
    problems = []

    def pick(name: str, default: str, allowed: set[str], what: str) -> str:
        value = args.get(name, default).strip()
        if value and value not in allowed:
            shown = ", ".join(sorted(allowed)) if len(allowed) <= 30 else "see the form"
            problems.append(f"{name}: {value[:64]!r} is not {what} (one of {shown})")
            return default
        return value

    filters = Filters(
        status=pick("status", OPEN, set(known.statuses), "a ticket status"),
        assignee=pick("assignee", "", {UNASSIGNED, *(a.id for a in known.agents)},
                      f"an agent or {UNASSIGNED!r}"),
        category=pick("category", "", set(known.categories), "a category"),
        urgency=pick("urgency", "", set(known.urgencies), "an urgency"),
        channel=pick("channel", "", set(known.channels), "a channel"),
        triage=pick("triage", "", set(known.triage_states), "a triage state"),
        q=args.get("q", "").strip(),
        escalated_to=pick("escalated_to", "", {a.id for a in known.agents}, "an agent"))
    if filters.q:
        try:
            search.matching(filters.q)
        except InvalidInput as err:
            problems.append(f"q: {err}")
    raw_page = args.get("page", "1").strip()
    page = int(raw_page) if raw_page.isdecimal() and len(raw_page) <= 6 else 0
    if not 1 <= page <= MAX_PAGE:
        problems.append(f"page: {raw_page[:20]!r} is not a page number (1 to {MAX_PAGE})")
    if problems:
        raise InvalidInput("Bad ticket filter: " + "; ".join(problems) + ".")
    return filters, page


def _next_due() -> Any:
    """The soonest due time of a ticket's running clocks (NULL when none runs)."""
    return (select(func.min(SlaClock.due_at))
            .where(SlaClock.ticket_id == Ticket.id, SlaClock.state == states.RUNNING)
            .correlate(Ticket).scalar_subquery())


def pool(db: Session, filters: Filters, page: int) -> tuple[list[PoolRow], int]:
    """Return one page of tickets, the nearest SLA due (breached) first, and the total."""
    conditions = filters.conditions()
    total = db.scalar(select(func.count()).select_from(Ticket).where(*conditions)) or 0
    due = _next_due()
    # Running clocks first by due time (a breached one is past due: first of all), then the
    # tickets with no running clock; ties to the more urgent, then the newest.
    tickets = db.scalars(
        select(Ticket).where(*conditions)
        .order_by(due.is_(None), due, Ticket.urgency, Ticket.created_at.desc(),
                  Ticket.id.desc())
        .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
    clocks: dict[int, list[SlaClock]] = {}
    if tickets:
        for clock in db.scalars(select(SlaClock).where(
                SlaClock.ticket_id.in_([t.id for t in tickets]),
                SlaClock.state.in_(states.ACTIVE_CLOCK_STATES)).order_by(SlaClock.id)):
            clocks.setdefault(clock.ticket_id, []).append(clock)
    rows = []
    for ticket in tickets:
        mine = clocks.get(ticket.id, [])
        running = sorted((c for c in mine if c.state == states.RUNNING and c.due_at),
                         key=lambda c: (as_utc(c.due_at), c.id))  # type: ignore[arg-type]
        paused = [c for c in mine if c.state == states.PAUSED]
        rows.append(PoolRow(ticket, running[0] if running else None,
                            paused[0] if paused else None))
    return rows, total


def status_counts(db: Session, filters: Filters) -> dict[str, int]:
    """Return the number of tickets per status under the filters other than the status."""
    found: dict[str, int] = {status: n for status, n in db.execute(
        select(Ticket.status, func.count()).where(*filters.conditions(with_status=False))
        .group_by(Ticket.status))}
    ordered = {status: found.pop(status, 0) for status in STATUS_ORDER}
    return {**ordered, **dict(sorted(found.items()))}  # then any status of older tickets


@bp.get("/tickets")
@login_required
def ticket_list() -> str:
    """Show the ticket pool: filtered, the nearest SLA due first, 50 a page."""
    db = db_session()
    known = choices(db)
    try:
        filters, page = parse_filters(request.args, known)
    except InvalidInput as err:
        abort(400, str(err))
    rows, total = pool(db, filters, page)
    counts = status_counts(db, filters)
    open_total = sum(n for status, n in counts.items()
                     if status in states.STILL_OPEN)
    user = current_user()
    still_open = Ticket.status.in_(states.STILL_OPEN)
    mine = None if user.is_admin else db.scalar(
        select(func.count()).select_from(Ticket).where(
            Ticket.assignee_id == user.id, still_open)) or 0
    escalated = db.scalar(select(func.count()).select_from(Ticket).where(
        escalated_to(user.id), still_open)) or 0 if user.supervisor else None
    return render_template("tickets.html", rows=rows, total=total, page=page, mine=mine,
                           escalated=escalated,
                           pages=max(1, math.ceil(total / PAGE_SIZE)), page_size=PAGE_SIZE,
                           filters=filters, known=known, counts=counts, open_total=open_total,
                           all_total=sum(counts.values()),
                           to_review=db.scalar(select(func.count()).select_from(Ticket).where(
                               Ticket.triage_state == triage_review.REVIEW,
                               Ticket.status.in_(states.OPEN_STATUSES))) or 0)


# --- one ticket ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """A transition the workflow allows from the ticket's status, and the form it needs."""

    to: str
    label: str
    form: str  # which fields: accept, handle, resolve, follow_up, reopen, merge, plain


def actions(ticket: Ticket) -> list[Action]:
    """Return the transitions allowed from the ticket's status, in workflow order."""
    source = states.NEW if ticket.status == workflow.LEGACY_OPEN else ticket.status
    found = []
    for to in workflow.allowed_from(source):
        reopen = to == states.HANDLING and source in (states.RESOLVED, states.FOLLOWED_UP,
                                                      states.CLOSED)
        if reopen:
            found.append(Action(to, "Reopen", "reopen"))
        elif to == states.CONFIRMING:
            found.append(Action(to, "Accept and confirm", "accept"))
        elif to == states.HANDLING and source == states.CONFIRMING:
            found.append(Action(to, "Start handling", "handle"))
        elif to == states.HANDLING:
            found.append(Action(to, "Evidence received, resume handling", "plain"))
        elif to == states.AWAITING_EVIDENCE:
            found.append(Action(to, "Wait for the customer's evidence", "plain"))
        elif to == states.RESOLVED:
            found.append(Action(to, "Resolve", "resolve"))
        elif to == states.FOLLOWED_UP:
            found.append(Action(to, "Record the follow-up", "follow_up"))
        elif to == states.CLOSED:
            found.append(Action(to, "Close", "plain"))
        elif to == states.MERGED:
            found.append(Action(to, "Merge into another ticket", "merge"))
        else:
            found.append(Action(to, f"Move to {to.replace('_', ' ')}", "plain"))
    rank = {status: i for i, status in enumerate(STATUS_ORDER)}
    return sorted(found, key=lambda a: (a.form == "reopen", rank.get(a.to, len(rank))))


def _rows(db: Session, model: Any, ticket_id: int) -> list[Any]:
    return list(db.scalars(select(model).where(model.ticket_id == ticket_id)
                           .order_by(model.id)))


def _ticket_or_404(db: Session, ticket_id: int) -> Ticket:
    found = db.get(Ticket, ticket_id)
    if found is None:
        abort(404, f"There is no ticket {ticket_id}.")
    return found


@bp.get("/tickets/<int:ticket_id>")
@login_required
def ticket(ticket_id: int) -> str:
    """Show a ticket: triage, context, messages, evidence, audit, clocks, and its actions."""
    db = db_session()
    found = _ticket_or_404(db, ticket_id)
    agents = list(db.scalars(select(Agent).order_by(Agent.id)))
    merge_targets = []
    if found.customer_key:
        merge_targets = list(db.scalars(select(Ticket).where(
            Ticket.customer_key == found.customer_key, Ticket.id != found.id,
            Ticket.status.in_(states.OPEN_STATUSES)).order_by(Ticket.id)))
    resolutions = sorted(workflow.SIMPLE_RESOLUTIONS if found.handling == "simple"
                         else workflow.RESOLUTIONS)
    return render_template(
        "ticket.html", ticket=found, ticket_context=found.context or {},
        messages=_rows(db, TicketMessage, found.id),
        evidence=_rows(db, TicketEvidence, found.id),
        transitions=_rows(db, TicketTransition, found.id),
        assignments=_rows(db, TicketAssignment, found.id),
        escalations=_rows(db, TicketEscalation, found.id),
        clocks=list(sla.clocks_of(db, found.id).values()),
        actions=actions(found), agents=agents, open_counts=routing.open_counts(db),
        merge_targets=merge_targets, resolutions=resolutions,
        call_back=call_back(db, found), related=related_tickets(db, found),
        qc_check=qc.check_of(db, found.id),
        handling_kinds=sorted(workflow.HANDLING_KINDS), message_kinds=MESSAGE_KINDS,
        assignable=found.status not in (states.CLOSED, states.MERGED),
        categories=CATEGORIES, urgencies=states.URGENCIES)


def _actor() -> str:
    user = current_user().id
    if len(user) > MAX_ACTOR:
        raise InvalidInput(f"the user name {user[:20]!r}… is longer than {MAX_ACTOR} "
                           "characters, too long to record as the actor")
    return user


def _text(name: str, limit: int) -> str:
    value = request.form.get(name, "").strip()
    if len(value) > limit:
        raise InvalidInput(f"{name} is {len(value)} characters long, over the limit of "
                           f"{limit}")
    return value


def _number(name: str, what: str) -> int | None:
    value = request.form.get(name, "").strip()
    if not value:
        return None
    if not re.fullmatch(r"[0-9]{1,9}", value):
        raise InvalidInput(f"{name} must be {what}, got {value[:20]!r}")
    return int(value)


def _change() -> tuple[str, workflow.Change]:
    to = request.form.get("to", "").strip()[:32]
    if not to:
        raise InvalidInput("to: choose the status to move the ticket to")
    return to, workflow.Change(
        actor=_actor(), reason=_text("reason", MAX_REASON),
        handling=request.form.get("handling", "").strip() or None,
        resolution=request.form.get("resolution", "").strip()[:32] or None,
        satisfaction=_number("satisfaction", "an integer 1-5"),
        comment=_text("comment", MAX_REASON) or None,
        merged_into=_number("merged_into", "a ticket number"))


def _refused(db: Session, err: HubError, what: str) -> None:
    """Undo what the failed action did and tell the user why."""
    db.rollback()
    logger.info("%s refused: %s", what, err)
    flash(str(err), "error")


@bp.post("/tickets/<int:ticket_id>/transition")
@login_required
def ticket_transition(ticket_id: int) -> BaseResponse:
    """Move the ticket to another status as the logged-in user."""
    if not _csrf_ok():
        abort(400, EXPIRED)
    db = db_session()
    found = _ticket_or_404(db, ticket_id)
    source = found.status
    try:
        to, change = _change()
        workflow.transition(db, ticket_id, to, change, now())
    except HubError as err:
        _refused(db, err, f"ticket {ticket_id} transition")
    else:
        db.commit()
        flash(f"Ticket {ticket_id}: {source.replace('_', ' ')} → {to.replace('_', ' ')}.",
              "ok")
    return redirect(url_for("tickets.ticket", ticket_id=ticket_id))


@bp.post("/tickets/<int:ticket_id>/messages")
@login_required
def ticket_message(ticket_id: int) -> BaseResponse:
    """Record a message to the customer, a logged call or an internal note."""
    if not _csrf_ok():
        abort(400, EXPIRED)
    db = db_session()
    _ticket_or_404(db, ticket_id)
    kind = request.form.get("kind", "message")
    try:
        if kind not in MESSAGE_KINDS:
            raise InvalidInput(f"kind must be one of {', '.join(MESSAGE_KINDS)}, got "
                               f"{kind[:20]!r}")
        contact.record_contact(db, ticket_id, agent=_actor(),
                               text=_text("text", intake.MAX_TEXT),
                               kind=cast(contact.Kind, kind), now=now())
    except HubError as err:
        _refused(db, err, f"ticket {ticket_id} message")
    else:
        db.commit()
        flash("The note was added." if kind == "note" else f"The {kind} was recorded.", "ok")
    return redirect(url_for("tickets.ticket", ticket_id=ticket_id) + "#messages")


@bp.post("/tickets/<int:ticket_id>/assign")
@login_required
def ticket_assign(ticket_id: int) -> BaseResponse:
    """Give the ticket to the chosen agent by hand."""
    if not _csrf_ok():
        abort(400, EXPIRED)
    db = db_session()
    found = _ticket_or_404(db, ticket_id)
    agent_id = request.form.get("agent_id", "").strip()[:32]
    try:
        if not agent_id:
            raise InvalidInput("agent_id: choose the agent to assign the ticket to")
        before = found.assignee_id
        manual_assignment.assign_by_hand(
            db, ticket_id, agent_id, now(), actor=_actor(),
            reason=_text("reason", MAX_REASON),
            override=request.form.get("override") == "1")
    except HubError as err:
        _refused(db, err, f"ticket {ticket_id} assignment")
    else:
        db.commit()
        flash(f"Ticket {ticket_id} already was with {agent_id}." if before == agent_id
              else f"Ticket {ticket_id} assigned to {agent_id}.", "ok")
    return redirect(url_for("tickets.ticket", ticket_id=ticket_id) + "#assignments")


@bp.post("/tickets/<int:ticket_id>/triage")
@login_required
def ticket_triage(ticket_id: int) -> BaseResponse:
    """Confirm or correct the ticket's category and urgency."""
    if not _csrf_ok():
        abort(400, EXPIRED)
    db = db_session()
    found = _ticket_or_404(db, ticket_id)
    before = (found.category, found.urgency)
    try:
        check = triage_review.check_triage(
            db, ticket_id, actor=_actor(), now=now(),
            category=request.form.get("category", "").strip() or None,
            urgency=request.form.get("urgency", "").strip() or None,
            reason=_text("reason", MAX_REASON))
    except HubError as err:
        _refused(db, err, f"ticket {ticket_id} triage")
    else:
        db.commit()
        after = (check.category, check.urgency)
        flash(f"Ticket {ticket_id}: triage confirmed ({before[0]}, {before[1]})."
              if after == before else
              f"Ticket {ticket_id}: triage corrected to {after[0]}, {after[1]}"
              f" (was {before[0]}, {before[1]}); assignee {found.assignee_id or 'queue'}.",
              "ok")
    return redirect(url_for("tickets.ticket", ticket_id=ticket_id) + "#triage")


@bp.get("/tickets/<int:ticket_id>/evidence/<int:evidence_id>")
@login_required
def evidence_file(ticket_id: int, evidence_id: int) -> BaseResponse:
    """Download an evidence file of the ticket from the hub's evidence store."""
    record = db_session().get(TicketEvidence, evidence_id)
    if record is None or record.ticket_id != ticket_id:
        abort(404, f"Ticket {ticket_id} has no evidence {evidence_id}.")
    data_dir = hub_settings().data_dir
    store = (data_dir / evidence.EVIDENCE_DIR).resolve()
    path = (data_dir / record.storage_path).resolve()
    if not path.is_relative_to(store):  # a stored path must never leave the store
        logger.warning("evidence %s of ticket %s: path %r is outside the evidence store; "
                       "refused", evidence_id, ticket_id, record.storage_path)
        abort(404, f"The file of evidence {evidence_id} is not in the evidence store.")
    if not path.is_file():
        abort(404, f"The file of evidence {evidence_id} is missing from the evidence store.")
    name = re.sub(r"[^\w.-]", "_", record.filename or "") or f"evidence-{record.sha256[:12]}"
    response = send_file(path, mimetype=record.content_type, as_attachment=True,
                         download_name=name, max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# --- agents --------------------------------------------------------------------------------


@bp.get("/tickets/kpis")
@login_required
def ticket_kpis() -> str:
    """Show the helpdesk KPIs of a period (default: the last seven days), with the heat map."""
    try:
        since, until = kpis.default_period(now(), _day_arg("since"), _day_arg("until"))
        report = kpis.ticket_kpis(db_session(), since, until, now())
    except InvalidInput as err:
        abort(400, str(err))
    return render_template("kpis.html", report=report, minimum=kpis.MIN_AGENT_SAMPLE,
                           nps_min=kpis.NPS_MIN_ANSWERS,
                           weekdays=("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"))


def _day_arg(name: str) -> datetime | None:
    """A period bound from the query string: a date (midnight UTC) or an ISO time with offset."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    problem = (f"{name}: {raw[:40]!r} is not a date (2026-11-20) or an ISO 8601 time with an "
               "offset")
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(problem) from None
    if len(raw) == 10:
        moment = moment.replace(tzinfo=UTC)
    elif moment.tzinfo is None:
        raise InvalidInput(problem)
    try:
        return within_range(moment)
    except ValueError as err:
        raise InvalidInput(f"{name}: {err}") from None


@bp.get("/agents")
@login_required
def agents() -> str:
    """Show the agents: team, skills, presence and load, with a shift switch each."""
    db = db_session()
    return render_template("agents.html",
                           agents=list(db.scalars(select(Agent).order_by(Agent.team, Agent.id))),
                           open_counts=routing.open_counts(db),
                           queued=db.scalar(select(func.count()).select_from(Ticket).where(
                               Ticket.assignee_id.is_(None),
                               Ticket.status.in_(states.OPEN_STATUSES))) or 0)


@bp.post("/agents/<agent_id>/shift")
@login_required
def agent_shift(agent_id: str) -> BaseResponse:
    """Start an agent's shift (the queue is worked) or end it (tickets are handed over)."""
    db = _agent_form_allowed("start or end another agent's shift", agent_id)
    on_shift = request.form.get("on_shift")
    try:
        if on_shift == "1":
            assigned = start_shift(db, agent_id, now(), actor=current_user().id)
            message = (f"{agent_id} is on shift and online; {assigned} queued "
                       f"ticket{'s' if assigned != 1 else ''} assigned.")
        elif on_shift == "0":
            handed = end_shift(db, agent_id, now(), actor=current_user().id)
            moves = ", ".join(f"#{t.id} → {a.id if a else 'the queue'}" for t, a in handed)
            message = (f"{agent_id} is off shift. "
                       + (f"Handed over: {moves}." if moves else
                          "No ticket to hand over (tickets with a first contact stay)."))
        else:
            raise InvalidInput("on_shift must be 1 (start the shift) or 0 (end it)")
    except HubError as err:
        _refused(db, err, f"agent {agent_id} shift")
    else:
        db.commit()
        flash(message, "ok")
    return redirect(url_for("tickets.agents") + f"#agent-{agent_id}")


@bp.post("/agents/<agent_id>/presence")
@login_required
def agent_presence(agent_id: str) -> BaseResponse:
    """An agent on shift steps away or is back (hub.tickets.agents.set_online)."""
    db = _agent_form_allowed("change another agent's presence", agent_id)
    online = request.form.get("online")
    try:
        if online not in ("0", "1"):
            raise InvalidInput("online must be 1 (back) or 0 (away)")
        assigned = set_online(db, agent_id, online == "1", now(), actor=current_user().id)
    except HubError as err:
        _refused(db, err, f"agent {agent_id} presence")
    else:
        db.commit()
        flash(f"{agent_id} is back online; {assigned} queued ticket"
              f"{'s' if assigned != 1 else ''} assigned." if online == "1" else
              f"{agent_id} is away: no new tickets until back; their tickets stay.", "ok")
    return redirect(url_for("tickets.agents") + f"#agent-{agent_id}")


def _agent_form_allowed(what: str, agent_id: str) -> Session:
    """The session for a form about ``agent_id``, after refusing one without its token (400),
    about an unknown agent (404), or about another agent from someone who does not manage
    agents (403, naming ``what`` they may not do)."""
    if not _csrf_ok():
        abort(400, EXPIRED)
    db = db_session()
    if db.get(Agent, agent_id) is None:
        abort(404, f"There is no agent {agent_id!r}.")
    if agent_id != current_user().id and not current_user().manages_agents:
        abort(403, f"Only the administrator or a supervisor may {what}.")
    return db


@bp.route("/agents/new", methods=["GET", "POST"])
@login_required
@managers_only
def agent_new() -> str | BaseResponse | tuple[str, int]:
    """Register an agent: the profile form, empty; on POST save it (off shift)."""
    return _agent_form(None)


@bp.route("/agents/<agent_id>/edit", methods=["GET", "POST"])
@login_required
@managers_only
def agent_edit(agent_id: str) -> str | BaseResponse | tuple[str, int]:
    """Change an agent's profile; saving hands over the tickets they no longer cover."""
    if db_session().get(Agent, agent_id) is None:
        abort(404, f"There is no agent {agent_id!r}.")
    return _agent_form(agent_id)


def _agent_form(agent_id: str | None) -> str | BaseResponse | tuple[str, int]:
    db = db_session()
    record = db.get(Agent, agent_id) if agent_id else None
    if request.method == "GET":
        return render_template("agent_form.html", agent=record, form=_profile_form(record),
                               errors={}, **_agent_choices(db, agent_id))
    if not _csrf_ok():
        abort(400, EXPIRED)
    new_id = (agent_id or request.form.get("id", "")).strip()
    profile, errors = _profile_from(request.form)
    password = _new_password(new_id, errors)
    if not AGENT_ID.match(new_id):
        errors["id"] = f"must be {AGENT_ID_RULE}, got {new_id!r}"
    elif agent_id is None and (taken := _reserved_id(db, new_id)):
        errors["id"] = taken
    elif profile is not None and not errors:
        try:
            saved = save_agent(db, new_id, profile, now(), actor=current_user().id,
                               create_only=agent_id is None)
        except Conflict as err:  # the id is taken
            db.rollback()
            errors["id"] = str(err).split(";")[0]
        except HubError as err:
            db.rollback()
            errors["form"] = str(err)
        else:
            message = _saved_message(saved)
            if password is not None:
                accounts.set_password(db, saved.agent, password, now(),
                                      actor=current_user().id)
                message += " Password set: the agent can sign in."
            elif request.form.get("remove_password") == "1" and current_user().is_admin:
                accounts.remove_password(db, saved.agent, now(), actor=current_user().id)
                message += " Password removed: the agent can no longer sign in."
            db.commit()
            flash(message, "ok")
            return redirect(url_for("tickets.agents") + f"#agent-{new_id}")
    posted: dict[str, Any] = request.form.to_dict() | {"password": "",
        "id": new_id, "skills": request.form.getlist("skills"),
        "languages": request.form.getlist("languages")}
    return render_template("agent_form.html", agent=record, form=posted, errors=errors,
                           **_agent_choices(db, agent_id)), 422


def _reserved_id(db: Session, agent_id: str) -> str | None:
    """Why a new agent may not take ``agent_id`` (the administrator's or a system actor's
    name), or None."""
    try:
        accounts.check_new_agent_id(db, agent_id, hub_settings().web)
    except InvalidInput as err:
        return str(err)
    return system_actor_problem(agent_id)


def _new_password(agent_id: str, errors: dict[str, str]) -> str | None:
    """The password the administrator typed for the agent, if any (only the administrator
    sets passwords); a problem goes into ``errors``."""
    password = request.form.get("password", "")
    if not password or not current_user().is_admin:
        return None
    problem = accounts.password_problem(password, agent_id, request.form.get("name", ""))
    if problem is not None:
        errors["password"] = problem
        return None
    return password


def _agent_choices(db: Session, agent_id: str | None) -> dict[str, Any]:
    return {"changes": changes_of(db, agent_id) if agent_id else [],
            "teams": DEFAULT_CONFIG.teams, "categories": CATEGORIES, "languages": LANGUAGES,
            "all_skills": ALL_SKILLS, "id_rule": AGENT_ID_RULE,
            "written_form": shifts.WRITTEN_FORM}


def _profile_form(agent: Agent | None) -> dict[str, Any]:
    """The form's fields for an agent (a new one: the profile's defaults)."""
    if agent is None:
        return {"team": DEFAULT_CONFIG.default_team, "skills": [ALL_SKILLS],
                "capacity": 5, "active": "1"}
    windows = "\n".join(written_shifts(agent.shifts))
    return {"id": agent.id, "name": agent.name, "team": agent.team, "skills": agent.skills,
            "languages": agent.languages, "regions": ", ".join(agent.regions),
            "capacity": agent.capacity, "shifts": windows,
            **{flag: "1" for flag in ("online", "supervisor", "active")
               if getattr(agent, flag)}}


def _profile_from(form: MultiDict[str, str]) -> tuple[AgentProfile | None, dict[str, str]]:
    """The profile a posted form describes, or the problem of each field."""
    errors: dict[str, str] = {}
    raw_capacity = str(form.get("capacity", "")).strip()
    capacity: int | str = raw_capacity
    if re.fullmatch(r"\d{1,4}", raw_capacity):
        capacity = int(raw_capacity)
    else:
        errors["capacity"] = f"must be a whole number from 0 to 1000, got {raw_capacity!r}"
    windows = []
    for number, line in enumerate(str(form.get("shifts", "")).splitlines(), start=1):
        if line.strip():
            try:
                windows.append(shifts.window_from_text(line))
            except InvalidInput as err:
                errors.setdefault("shifts", f"line {number}: {err}")
    data = {"name": form.get("name", ""), "team": form.get("team", ""),
            "skills": form.getlist("skills"), "languages": form.getlist("languages"),
            "regions": [r for r in re.split(r"[,，\s]+", str(form.get("regions", ""))) if r],
            "capacity": capacity if isinstance(capacity, int) else 0, "shifts": windows,
            **{flag: form.get(flag) == "1" for flag in ("online", "supervisor", "active")}}
    try:
        profile = AgentProfile.model_validate(data)
    except ValidationError as err:
        for name, problem in describe(err, "field").items():
            errors.setdefault(name.split(".")[0], problem)
        return None, errors
    return (None, errors) if errors else (profile, errors)


def _saved_message(saved: AgentSaved) -> str:
    agent = saved.agent
    parts = [f"{agent.name} ({agent.id}) " + ("registered, off shift." if saved.created
                                              else "saved.")]
    if saved.handed_over:
        moves = ", ".join(f"#{t.id} → {a.id if a else 'the queue'}"
                          for t, a in saved.handed_over)
        parts.append(f"Handed over: {moves}.")
    if saved.assigned:
        parts.append(f"{saved.assigned} queued ticket{'s' if saved.assigned != 1 else ''} "
                     "assigned.")
    return " ".join(parts)


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account() -> str | BaseResponse | tuple[str, int]:
    """Who is signed in; an agent changes their own password here."""
    user = current_user()
    db = db_session()
    agent = None if user.is_admin else db.get(Agent, user.id)
    if request.method == "GET" or agent is None:
        return render_template("account.html", agent=agent, error=None)
    if not _csrf_ok():
        abort(400, EXPIRED)
    try:
        accounts.change_own_password(db, agent, request.form.get("current", ""),
                                     request.form.get("new", ""),
                                     request.form.get("repeated", ""), now())
    except InvalidInput as err:
        db.rollback()
        return render_template("account.html", agent=agent, error=str(err)), 422
    db.commit()
    accounts.open_session(session, user, hub_settings().web, db, now())  # this one stays in
    logger.info("agent %s changed their password", user.id)
    flash("Password changed. Sessions opened with the old one have ended.", "ok")
    return redirect(url_for("tickets.account"))


# --- template helpers ----------------------------------------------------------------------

def span(seconds: float) -> str:
    """Return a duration as "2 d 3 h", "5 h 20 min" or "12 min"."""
    seconds = abs(int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min" if minutes else "< 1 min"


@bp.app_template_global("sla_flag")
def sla_flag(clock: SlaClock | None) -> str:
    """Return "breached", "warned" or "" for a clock (from its stored times and flags)."""
    if clock is None:
        return ""
    overdue = (clock.state == states.RUNNING and clock.due_at is not None
               and as_utc(clock.due_at) <= now())
    if clock.breached_at is not None or clock.state == states.MET_LATE or overdue:
        return "breached"
    if clock.state in states.ACTIVE_CLOCK_STATES and (clock.warned_50 or clock.warned_80):
        return "warned"
    return ""


@bp.app_template_global("remaining")
def remaining(due: datetime | None) -> str:
    """Return the time left until ``due`` ("in 2 h 5 min") or past it ("40 min overdue")."""
    if due is None:
        return "—"
    left = (as_utc(due) - now()).total_seconds()
    return f"in {span(left)}" if left >= 0 else f"{span(left)} overdue"


@bp.app_template_global("urgency_colour")
def urgency_colour(urgency: str | None) -> str:
    """Return the badge colour of an urgency level."""
    return URGENCY_COLOURS.get(urgency or "", "grey")


@bp.app_template_filter("minutes")
def minutes(value: float | None) -> str:
    """Return an SLA target in minutes as "30 min" or "48 h"."""
    if value is None:
        return "—"
    return f"{value:g} min" if value < 60 else f"{value / 60:g} h"


@bp.app_template_filter("language_name")
def language_name(code: str) -> str:
    """Return a language code as a name ("zh" -> "Chinese"); an unknown code as it is."""
    return LANGUAGES.get(code, code)


@bp.app_template_filter("written_shifts")
def written_shifts(stored: list[Any] | None) -> list[str]:
    """An agent's stored shift windows as people write them ("Mon-Fri 09:00-18:00")."""
    try:
        return [shifts.window_text(w) for w in shifts.parse_windows(stored or [])]
    except ValidationError:
        return ["(stored windows unreadable: ignored)"]


@bp.app_template_filter("change_value")
def change_value(value: Any) -> str:
    """A recorded value of an agent's record, short: lists joined, shift windows as written,
    nothing as a dash."""
    if value is None or value == []:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list) and all(isinstance(v, dict) and "days" in v for v in value):
        return "; ".join(written_shifts(value))
    if isinstance(value, list):
        return ", ".join(change_value(v) if isinstance(v, dict | list) else str(v)
                         for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {change_value(v)}" for k, v in value.items())
    return str(value)


@bp.app_template_filter("phone")
def phone(e164: str) -> str:
    """Return a stored phone number grouped as people read it ("+86 138 0000 0001")."""
    return phones.written(e164)


@bp.app_template_filter("filesize")
def filesize(value: int | None) -> str:
    """Return a byte count as "512 B", "12.3 KB" or "4.5 MB"."""
    if value is None:
        return "—"
    if value < 1024:
        return f"{value} B"
    if value < 1024 * 1024:
        return f"{value / 1024:.1f} KB"
    return f"{value / 1024 / 1024:.1f} MB"


@bp.app_template_filter("iso_when")
def iso_when(value: str | None) -> str:
    """Return an ISO 8601 time stored in a ticket's context as the UI shows times."""
    if not value:
        return "—"
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return str(value)
    return as_utc(parsed).strftime("%Y-%m-%d %H:%M UTC")
