"""Quality control's page: ``/qc``, the complex cases' goods to check and what was found.

Open checks come oldest first, each with its ticket, order and items (with their lots and
trace pages) and a form for the outcome and finding (``hub.tickets.qc``); the latest recorded
ones follow. A refused finding is flashed and changes nothing.
"""

from __future__ import annotations

from flask import Blueprint, Flask, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from hub.errors import HubError
from hub.tickets import qc
from hub.web import db_session, now
from hub.web.ui import EXPIRED, _csrf_ok, current_user, login_required

bp = Blueprint("qc", __name__)  # templates are the app's (hub/web/templates)
RECENT = 20


def init_app(app: Flask) -> None:
    """Register the QC page on ``app``."""
    app.register_blueprint(bp)


@bp.get("/qc")
@login_required
def checks() -> str:
    """The open checks and the latest findings."""
    db = db_session()
    return render_template("qc.html", open_checks=qc.open_checks(db),
                           done=qc.done_checks(db, limit=RECENT), outcomes=qc.OUTCOMES,
                           max_finding=qc.MAX_FINDING)


@bp.post("/qc/<int:check_id>/finding")
@login_required
def finding(check_id: int) -> BaseResponse:
    """Record what QC found, as the signed-in user."""
    if not _csrf_ok():
        abort(400, EXPIRED)
    db = db_session()
    try:
        check = qc.record_finding(db, check_id, actor=current_user().id,
                                  outcome=request.form.get("outcome", "").strip()[:32],
                                  finding=request.form.get("finding", ""), now=now())
    except HubError as err:
        db.rollback()
        flash(f"Check {check_id} was not recorded: {err}", "error")
        return redirect(url_for("qc.checks") + f"#check-{check_id}")
    db.commit()
    flash(f"Check {check.id} recorded; ticket {check.ticket_id} has the finding as a note.",
          "ok")
    return redirect(url_for("qc.checks"))
