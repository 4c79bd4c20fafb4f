"""Logging a call by hand: ``/tickets/new``, for a hotline call that came with no transcript.

The agent writes down what the customer said; it goes through intake like a hotline webhook
(``hub.tickets.intake``): triaged, routed, or joined to the customer's open ticket about the
same order. An agent's call counts as the first contact, and the agent may take the ticket
(routing's checks apply). The form carries a reference made when it was shown, the message's
external id, so a form sent twice logs one call. A bad field is shown beside itself, with what
was typed kept.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from flask import Blueprint, Flask, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from hub import phones
from hub.errors import HubError
from hub.models import Customer, Order
from hub.orders import RECORD_ID_RULE, is_record_id
from hub.tickets import intake, manual_assignment
from hub.tickets.models import Agent
from hub.web import db_session, now
from hub.web.ui import EXPIRED, _csrf_ok, current_user, login_required

bp = Blueprint("calls", __name__)  # templates are the app's (hub/web/templates)
CHANNEL = "hotline"
_CALL_REF = re.compile(r"^[A-Za-z0-9_-]{16,43}$")


def init_app(app: Flask) -> None:
    """Register the call form on ``app``."""
    app.register_blueprint(bp)


@bp.route("/tickets/new", methods=["GET", "POST"])
@login_required
def log_call() -> str | BaseResponse | tuple[str, int]:
    """Show the form; on POST take the call in as a complaint and open its ticket."""
    db = db_session()
    is_agent = db.get(Agent, current_user().id) is not None
    if request.method == "GET":
        return _form({"call_ref": secrets.token_urlsafe(16), "take": "1" if is_agent else ""},
                     {}, is_agent)
    if not _csrf_ok():
        abort(400, EXPIRED)
    form = {name: request.form.get(name, "").strip() for name in
            ("call_ref", "customer_id", "phone", "phone_verified", "order_id", "text", "take")}
    complaint, errors = _complaint(form, is_agent)
    if complaint is None:
        return _form(form, errors, is_agent), 422
    try:
        result = intake.receive(db, complaint, now())
    except HubError as err:
        db.rollback()
        return _form(form, {"form": str(err)}, is_agent), 422
    ticket = result.ticket
    if result.duplicate:
        flash(f"This call was already logged, on ticket {ticket.id}.", "ok")
        return redirect(url_for("tickets.ticket", ticket_id=ticket.id))
    said = (f"Ticket {ticket.id} opened from the call." if result.created else
            f"The call was added to ticket {ticket.id}, the customer's open ticket"
            f"{' about this order' if ticket.order_id else ''}.")
    me = current_user().id
    refused = None
    if is_agent and form["take"] == "1" and ticket.assignee_id != me:
        try:
            with db.begin_nested():
                manual_assignment.assign_by_hand(db, ticket.id, me, now(), actor=me,
                                                 reason="took the call")
        except HubError as err:
            refused = err
    if ticket.assignee_id == me:
        said += " It is yours."
    else:
        said += f" It {'stays' if refused else 'is'} {_with(ticket.assignee_id)}" + (
            f": {refused}." if refused else ".")
    db.commit()
    flash(said, "ok")
    return redirect(url_for("tickets.ticket", ticket_id=ticket.id))


def _with(assignee: str | None) -> str:
    return f"with {assignee}" if assignee else "in the queue"


def _complaint(form: dict[str, str], is_agent: bool
               ) -> tuple[intake.Complaint | None, dict[str, str]]:
    """The complaint the form describes, or None and each field's problem."""
    db = db_session()
    errors: dict[str, str] = {}
    if not _CALL_REF.match(form["call_ref"]):
        errors["form"] = EXPIRED
    customer_id, order_id = form["customer_id"] or None, form["order_id"] or None
    for name, value, model in (("customer_id", customer_id, Customer),
                               ("order_id", order_id, Order)):
        if value is None:
            continue
        if not is_record_id(value):
            errors[name] = f"must be {RECORD_ID_RULE}, got {value[:40]!r}"
        elif db.get(model, value) is None:
            errors[name] = f"there is no {name.removesuffix('_id')} {value!r}"
    phone = None
    if form["phone"]:
        try:
            phone = phones.normalise(form["phone"])
        except ValueError as err:
            errors["phone"] = str(err)
    elif form["phone_verified"] == "1":
        errors["phone"] = "give the phone the caller proved is theirs, or untick the box"
    if customer_id is None and form["phone"] == "" and "customer_id" not in errors:
        errors["customer_id"] = "give the customer id or the phone they call from"
    if not form["text"]:
        errors["text"] = "write down what the customer said"
    elif len(form["text"]) > intake.MAX_TEXT:
        errors["text"] = (f"{len(form['text'])} characters, over the limit of "
                          f"{intake.MAX_TEXT}")
    if errors:
        return None, errors
    actor = current_user().id
    return intake.Complaint(
        channel=CHANNEL, text=form["text"], external_id=f"desk:{form['call_ref']}",
        user_id=customer_id, phone=phone, phone_verified=form["phone_verified"] == "1",
        sender=phone, order_id=order_id, author=f"phone:{phone}" if phone else
        f"user:{customer_id}", meta={"logged_by": actor},
        answered_by=actor if is_agent else None), {}


def _form(form: dict[str, Any], errors: dict[str, str], is_agent: bool) -> str:
    return render_template("ticket_new.html", form=form, errors=errors, is_agent=is_agent,
                           max_text=intake.MAX_TEXT)
