"""The customer's survey page: ``/survey/<token>``, no login (the link is the permission).

The page shows the question while the link is open and takes one answer
(``hub.tickets.workflow.answer_survey``); a used, withdrawn or expired link says so with a 409,
an unknown one is a 404, and a bad answer is shown again with what was wrong (400).
"""

from __future__ import annotations

from flask import Blueprint, Flask, abort, render_template, request
from werkzeug.wrappers import Response as BaseResponse

from hub.errors import Conflict, InvalidInput, NotFound
from hub.tickets import surveys, workflow
from hub.tickets.models import Survey
from hub.web import db_session, now
from hub.web.ui import _csrf_ok

bp = Blueprint("survey", __name__)  # templates are the app's (hub/web/templates)
SCORES = ((5, "Very good"), (4, "Good"), (3, "OK"), (2, "Poor"), (1, "Very poor"))


def init_app(app: Flask) -> None:
    """Register the survey page on ``app``."""
    app.register_blueprint(bp)


@bp.get("/survey/<token>")
def survey(token: str) -> str | tuple[str, int]:
    """Ask the question, or say why the link cannot be answered."""
    found = _open_survey(token)
    if isinstance(found, tuple):
        return found
    return render_template("survey.html", survey=found, scores=SCORES, error=None, answered=False)


@bp.post("/survey/<token>")
def survey_answer(token: str) -> str | tuple[str, int] | BaseResponse:
    """Take the customer's answer (once)."""
    found = _open_survey(token)
    if isinstance(found, tuple):
        return found
    if not _csrf_ok():
        return render_template("survey.html", survey=found, scores=SCORES, answered=False,
                               error="The form expired. Please choose your answer again."), 400
    score, recommend = _whole(request.form.get("score")), _whole(request.form.get("recommend"))
    db = db_session()
    try:
        workflow.answer_survey(db, token, score, request.form.get("comment"), now(),
                               recommend=recommend)
        db.commit()
    except InvalidInput as err:
        db.rollback()
        return render_template("survey.html", survey=found, scores=SCORES, answered=False,
                               error=_plain(str(err))), 400
    except Conflict as err:
        db.rollback()
        return render_template("survey.html", survey=found, scores=SCORES, answered=False,
                               closed=str(err)), 409
    return render_template("survey.html", survey=found, scores=SCORES, error=None,
                           answered=True)


def _open_survey(token: str) -> Survey | tuple[str, int]:
    db = db_session()
    try:
        found = surveys.find(db, token)
    except NotFound as err:
        abort(404, str(err))
    try:
        surveys.check_open(found, now())
    except Conflict as err:
        return render_template("survey.html", survey=found, scores=SCORES, answered=False,
                               closed=str(err)), 409
    return found


def _whole(raw: str | None) -> object:
    """A form field as a whole number when it is one or two ASCII digits (the answers go up
    to 10); as given otherwise, to be refused later ("٣", "0003", a 5,000-digit number)."""
    if raw and raw.isascii() and raw.isdigit() and len(raw) <= 2:  # isdigit alone takes "²"
        return int(raw)
    return raw or None


def _plain(message: str) -> str:
    """The domain's message in the customer's words."""
    if message.startswith("score"):
        return "Please choose one of the five answers."
    if message.startswith("recommend"):
        return "Please choose a number from 0 to 10, or leave that question out."
    return message[0].upper() + message[1:] + "."
