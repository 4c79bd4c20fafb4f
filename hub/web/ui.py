"""The admin web UI: login, dashboard, order timeline, item trace, fleet and quarantine."""

from __future__ import annotations

import functools
import hmac
import json
import logging
import re
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar, cast

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from hub import alarms, epcis, queries
from hub.errors import InvalidInput, NotFound
from hub.fleet_view import fleet_view
from hub.queries import as_utc
from hub.trace import export_events, item_trace
from hub.web import accounts, charts, coldchain, db_session, hub_settings, now
from hub.web.serialize import payload_preview, segment_readings

logger = logging.getLogger(__name__)

bp = Blueprint("ui", __name__)  # templates and static files are the app's (hub/web/...)
EXPIRED = "The form expired. Reload the page and try again."  # a form's CSRF token
GRADE_COLOURS = {"resell": "green", "discount": "amber", "check": "amber", "scrap": "red"}
SEVERITY_COLOURS = {"critical": "red", "error": "red", "warning": "amber", "info": "grey"}
# What an undecided attribution leads with (as hub.attribution.Attribution.summary does).
UNDECIDED_LEAD = frozenset({"too_little_data", "not_explained_by_temperature",
                            "within_allowances", "weak_evidence"})
F = TypeVar("F", bound=Callable[..., Any])


THROTTLE = "coldloop.sign_in_throttle"  # app.extensions key
ENDED = {  # why the sign-in page was shown (login_required's ``ended``)
    "changed": "Your session has ended: the account was changed or deactivated. Please sign "
               "in again.",
    "idle": f"Your session has ended after {accounts.IDLE_LIMIT.total_seconds() / 3600:g} h "
            "without use. Please sign in again.",
}


def init_app(app: Flask) -> None:
    """Register the admin UI blueprint on ``app``, with its sign-in throttle."""
    app.register_blueprint(bp)
    app.extensions[THROTTLE] = accounts.SignInThrottle()


def login_required(view: F) -> F:
    """Send visitors who have not signed in (or whose session no longer holds: see
    ``hub.web.accounts``) to the sign-in page, then back here; the user is ``g.user``."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        moment = now()
        user = accounts.session_user(session, hub_settings().web, db_session())
        ended = None
        if user is not None and accounts.idle(session, moment):
            user, ended = None, "idle"
        if user is None:
            ended = ended or ("changed" if "user" in session else None)
            session.clear()
            target = request.full_path if request.query_string else request.path
            return redirect(url_for("ui.login", next=target, ended=ended))
        accounts.touch(session, moment)
        g.user = user
        return view(*args, **kwargs)

    return cast(F, wrapped)


def managers_only(view: F) -> F:
    """After ``login_required``: only the administrator and supervisors (403 for agents)."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user().manages_agents:
            abort(403, "Only the administrator or a supervisor may do this.")
        return view(*args, **kwargs)

    return cast(F, wrapped)


def current_user() -> accounts.User:
    """The signed-in user of this request (views behind ``login_required``)."""
    user: accounts.User = g.user
    return user


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | BaseResponse | tuple[str, int]:
    """Show the sign-in form; on POST open the administrator's or an agent's account."""
    target = _safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("login.html", next=target,
                               error=ENDED.get(request.args.get("ended", "")))
    if not _csrf_ok():
        return render_template("login.html", next=target,
                               error="The form expired. Please sign in again."), 400
    web = hub_settings().web
    name = request.form.get("username", "")
    address = request.remote_addr or "-"
    throttle: accounts.SignInThrottle = current_app.extensions[THROTTLE]
    wait = throttle.wait(name, address, now())
    if wait is not None:
        minutes = max(1, -(-int(wait.total_seconds()) // 60))
        logger.warning("sign-in for user %r from %s refused: too many failures", name[:64],
                       address)
        return render_template(
            "login.html", next=target, username=name,
            error=f"Too many failed sign-ins for this user name or from this address. Try "
                  f"again in {minutes} min."), 429
    db = db_session()
    user = accounts.authenticate(db, web, name, request.form.get("password", ""))
    if user is None:
        throttle.failed(name, address, now())
        logger.warning("failed sign-in for user %r from %s", name[:64], address)
        return render_template("login.html", next=target, username=name,
                               error="Wrong user name or password."), 401
    throttle.succeeded(name)
    accounts.open_session(session, user, web, db, now())
    logger.info("%s %s signed in from %s", user.role, user.id, request.remote_addr)
    return redirect(target or url_for("ui.dashboard"))


@bp.post("/logout")
def logout() -> BaseResponse:
    """Forget the signed-in user."""
    if not _csrf_ok():
        abort(400, EXPIRED)
    session.clear()
    return redirect(url_for("ui.login"))


@bp.get("/")
@login_required
def dashboard() -> str:
    """Show the headline counts, the latest grades, open tickets and the fleet."""
    db = db_session()
    return render_template("dashboard.html", counts=queries.dashboard_counts(db),
                           grades=queries.recent_grades(db, limit=15),
                           tickets=queries.open_tickets(db, limit=10),
                           gateways=queries.fleet(db), trials=model_trials(db))


@bp.get("/orders")
@login_required
def find_order() -> BaseResponse:
    """Open the order typed into the search box."""
    order_id = request.args.get("order_id", "").strip()
    if not order_id:
        return redirect(url_for("ui.dashboard"))
    return redirect(url_for("ui.order", order_id=order_id))


@bp.get("/orders/<order_id>")
@login_required
def order(order_id: str) -> str:
    """Show an order's items and the timeline of its return."""
    view = queries.order_view(db_session(), order_id)
    if view is None:
        abort(404, f"There is no order {order_id!r}.")
    pickups = {p.item_id: p for p in view.pickups}  # the newest pickup of each item
    return render_template("order.html", view=view, pickups=pickups)


@bp.get("/trace/<item_id>")
@login_required
def trace(item_id: str) -> str:
    """Show an item's cold chain: who is responsible and why, source, QC, segments, charts."""
    try:
        found = item_trace(db_session(), item_id, coldchain())
    except NotFound:
        abort(404, f"There is no item {item_id!r}.")
    report, result = found.report, found.attribution
    segment_charts = [] if report is None else [
        charts.segment_chart(readings, seg.start, seg.end, threshold_c=seg.profile_threshold_c,
                             limit_c=seg.limit_c, gaps=seg.gaps)
        for seg, readings in zip(report.segments, segment_readings(found), strict=True)]
    if result is None:
        lead = []
    elif result.party == "undetermined":
        lead = [r for r in result.reasons if r.code in UNDECIDED_LEAD]
    else:
        lead = result.toward(result.party)
    return render_template("trace.html", trace=found, item=found.chain.item, report=report,
                           attribution=result, lead=lead, charts=segment_charts)


@bp.get("/trace/<item_id>/epcis.jsonld")
@login_required
def trace_epcis(item_id: str) -> Response:
    """Download the item's ledger events as an EPCIS 2.0 document (as the API exports it)."""
    try:
        events = export_events(db_session(), item_ids=[item_id])
    except NotFound:
        abort(404, f"There is no item {item_id!r}.")
    body = json.dumps(epcis.document(events, created=now()), ensure_ascii=False, indent=2)
    filename = re.sub(r"[^A-Za-z0-9_.-]", "_", item_id)
    return Response(body, mimetype="application/ld+json", headers={
        "Content-Disposition": f'attachment; filename="{filename}.epcis.jsonld"'})


@bp.get("/fleet")
@login_required
def fleet() -> str:
    """Show the gateways, stations, probes and fleet alarms."""
    db = db_session()
    return render_template("fleet.html", view=fleet_view(db, now(), hub_settings().fleet),
                           open_alarms=alarms.list_alarms(db, open_only=True, limit=200),
                           cleared=alarms.list_alarms(db, open_only=False, limit=20),
                           settings=hub_settings().fleet)


@bp.post("/fleet/alarms/<int:alarm_id>/ack")
@login_required
def acknowledge_alarm(alarm_id: int) -> BaseResponse:
    """Acknowledge a fleet alarm as the signed-in user."""
    if not _csrf_ok():
        abort(400, EXPIRED)
    db = db_session()
    try:
        alarms.acknowledge(db, alarm_id, current_user().id, now())
    except NotFound as err:
        abort(404, str(err))
    except InvalidInput as err:  # an admin user name too long to record
        abort(400, str(err))
    db.commit()
    return redirect(url_for("ui.fleet") + "#alarms")


@bp.get("/quarantine")
@login_required
def quarantine() -> str:
    """Show the messages the hub could not accept."""
    return render_template("quarantine.html",
                           messages=queries.quarantine(db_session(), limit=200))


def error_page(err: HTTPException) -> tuple[str, int]:
    """Render an HTTP error as a page of the admin UI."""
    status = err.code or 500
    message = err.description if status < 500 else "Something went wrong on the hub."
    return render_template("error.html", status=status, title=err.name, message=message), status


@bp.app_context_processor
def _template_globals() -> dict[str, Any]:
    return {"csrf_token": _csrf_token, "current_user": g.get("user")}


@bp.app_template_filter("when")
def _when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return as_utc(value).strftime("%Y-%m-%d %H:%M UTC")


@bp.app_template_filter("ago")
def _ago(value: datetime | None) -> str:
    if value is None:
        return "never"
    seconds = int((now() - as_utc(value)).total_seconds())
    if seconds < 0:
        return "in the future"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return "just now" if seconds < 10 else f"{seconds} s ago"


@bp.app_template_filter("preview")
def _preview(payload: bytes, length: int = 160) -> str:
    text = payload_preview(payload)
    return text if len(text) <= length else text[: length - 1] + "…"


@bp.app_template_global("grade_colour")
def _grade_colour(grade: str | None) -> str:
    return GRADE_COLOURS.get(grade or "", "grey")


@bp.app_template_global("severity_colour")
def _severity_colour(severity: str | None) -> str:
    return SEVERITY_COLOURS.get(severity or "", "grey")


def _csrf_token() -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def _csrf_ok() -> bool:
    sent = request.form.get("csrf_token", "")
    expected = session.get("csrf")
    return isinstance(expected, str) and hmac.compare_digest(sent.encode(), expected.encode())


def _safe_next(target: str | None) -> str | None:
    # Only paths on this site: "//host" or "/\\host" would send the admin elsewhere.
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    return target


def model_trials(db: Any) -> dict[str, str]:
    """Per gateway id, the last model trial's verdict as reported ("grader-2: promoted, 96 %")."""
    from hub.commands import sync_status

    trials = {}
    for row in sync_status(db):
        answer = row.reported_command or {}
        shadow = answer.get("shadow")
        if answer.get("name") == "model" and isinstance(shadow, dict):
            trials[row.gateway_id] = (f"{shadow.get('model')}: {answer.get('status')}, "
                                      f"{100 * float(shadow.get('agreement', 0)):.0f} % agreement"
                                      f" over {shadow.get('scans')} scans")
    return trials
