"""People check the classifier: the review queue, confirmations and corrections, the hand-over
a new category needs, and the corrections exported as training rows."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hub.console import main
from hub.errors import Conflict, InvalidInput, NotFound
from hub.models import Ticket
from hub.tickets import intake, states
from hub.tickets.models import TicketAssignment, TicketTransition, TriageCorrection
from hub.tickets.triage_review import check_triage, training_rows
from hub.triage import data
from tests.hub.conftest import AUTH, T0
from tests.hub.tickets_helpers import CONFIG, add_agent, social, triage
from tests.hub.ui_helpers import admin_app, csrf_token, logged_in


def complain(session: Session, handle: str, minutes: float = 0, *, confidence: float = 0.9,
             category: str = "spoiled", text: str = "烂了, all mouldy") -> Ticket:
    return intake.receive(session, social(handle, text=text), T0 + timedelta(minutes=minutes),
                          triage=triage(confidence=confidence, category=category),
                          config=CONFIG).ticket


def check(session: Session, ticket: Ticket, minutes: float = 5, **fields: object
          ) -> TriageCorrection:
    return check_triage(session, ticket.id, actor="ana", now=T0 + timedelta(minutes=minutes),
                        config=CONFIG, **fields)  # type: ignore[arg-type]


def test_an_unsure_classifier_puts_the_ticket_in_the_review_queue(session: Session) -> None:
    add_agent(session, "ana")
    sure = complain(session, "a", confidence=0.9)
    unsure = complain(session, "b", confidence=CONFIG.triage_review_below - 0.01)
    untriaged = intake.receive(session, social("c"), T0, triage=lambda _t: intake.NoTriage(),
                               config=CONFIG).ticket
    assert (sure.triage_state, unsure.triage_state, untriaged.triage_state) == (
        "auto", "review", "review")
    assert unsure.assignee_id == "ana"  # routed on the suggestion: its clock does not wait


def test_confirming_keeps_the_triage_and_records_the_check(session: Session) -> None:
    add_agent(session, "ana")
    ticket = complain(session, "a", confidence=0.4)
    found = check(session, ticket, reason="looks right")
    assert ticket.triage_state == "confirmed"
    assert (found.suggested_category, found.category, found.suggested_urgency, found.urgency,
            found.confidence, found.model_version) == ("spoiled", "spoiled", "P2", "P2", 0.4,
                                                       "test-1")
    last = session.scalars(select(TicketTransition).order_by(TicketTransition.id.desc())).first()
    assert last is not None
    assert (last.from_status, last.to_status, last.details, last.reason) == (
        "new", "new", {"triage": "confirmed"}, "looks right")


def test_a_new_category_hands_the_ticket_to_an_agent_who_covers_it(session: Session) -> None:
    add_agent(session, "ana", skills=("spoiled",))
    add_agent(session, "bo", skills=("late",))
    ticket = complain(session, "a", confidence=0.5)
    assert ticket.assignee_id == "ana"
    check(session, ticket, category="late", urgency="P1")
    assert (ticket.category, ticket.urgency, ticket.priority, ticket.triage_state) == (
        "late", "P1", "P1", "corrected")
    assert ticket.assignee_id == "bo"
    latest = session.scalars(select(TicketAssignment).order_by(TicketAssignment.id.desc())).first()
    assert latest is not None and (latest.agent_id, latest.reason) == ("bo", "triage")
    audit = session.scalars(select(TicketTransition).order_by(TicketTransition.id.desc())).first()
    assert audit is not None
    assert audit.details == {"triage": "corrected", "category": ["spoiled", "late"],
                             "urgency": ["P2", "P1"], "reassigned": "bo"}


def test_a_new_category_nobody_covers_sends_the_ticket_to_the_queue(session: Session) -> None:
    add_agent(session, "ana", skills=("spoiled",))
    ticket = complain(session, "a")
    check(session, ticket, category="service")
    assert ticket.assignee_id is None


def test_an_assignee_who_covers_the_new_category_keeps_it(session: Session) -> None:
    add_agent(session, "ana")  # every skill
    add_agent(session, "bo")
    ticket = complain(session, "a")
    before = ticket.assignee_id
    check(session, ticket, category="damaged")
    assert ticket.assignee_id == before


@pytest.mark.parametrize(("fields", "message"), [
    ({"category": "rotten"}, "category must be one of"),
    ({"urgency": "P0"}, "urgency must be one of"),
    ({"actor": " "}, "actor is required"),
])
def test_bad_checks_are_refused_naming_the_field(session: Session, fields: dict[str, object],
                                                 message: str) -> None:
    add_agent(session, "ana")
    ticket = complain(session, "a", confidence=0.4)
    with pytest.raises(InvalidInput, match=message):
        check_triage(session, ticket.id, now=T0, config=CONFIG,
                     **{"actor": "ana", **fields})  # type: ignore[arg-type]
    assert (ticket.category, ticket.triage_state) == ("spoiled", "review")


def test_unknown_and_merged_tickets_are_refused(session: Session) -> None:
    with pytest.raises(NotFound):
        check_triage(session, 99, actor="ana", now=T0)
    ticket = complain(session, "a")
    ticket.status, ticket.merged_into = states.MERGED, 1
    with pytest.raises(Conflict, match="merged into ticket 1"):
        check(session, ticket)


def test_training_rows_take_the_latest_check_and_skip_evaluation_texts(
        session: Session) -> None:
    add_agent(session, "ana")
    first = complain(session, "a", text="送来的草莓全烂了")
    intake.receive(session, social("a", text="还有，骑手很凶", post_id="weibo:a/2"),
                   T0 + timedelta(minutes=2), triage=triage(), config=CONFIG)
    check(session, first, 3, category="damaged")
    check(session, first, 4, category="spoiled")
    evaluated = complain(session, "b", text="菜 都 凉了")
    check(session, evaluated, category="temperature")
    rows = list(training_rows(session.scalars(select(TriageCorrection)),
                              exclude_texts=["菜 都  凉了"]))
    assert rows == [{"id": f"ticket{first.id}", "category": "spoiled",
                     "review": "送来的草莓全烂了"}]  # the first message, as triaged


def test_the_hand_labelled_training_rows_include_exported_corrections(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = len(data.zh_train())
    corrections = tmp_path / "corrections.csv"
    corrections.write_text("id,category,review\nticket7,late,两个小时才送到\n", encoding="utf-8")
    monkeypatch.setattr(data, "CORRECTIONS", corrections)
    rows = data.zh_train()
    assert len(rows) == before + 1 and rows[-1].category == "late"


# --- over HTTP, in the admin UI, and the export command -------------------------------------


def test_the_api_checks_triage_and_lists_the_review_queue(session: Session,
                                                          client: FlaskClient) -> None:
    add_agent(session, "ana")
    unsure = complain(session, "a", confidence=0.3)
    complain(session, "b")
    session.commit()
    listed = client.get("/api/v1/tickets?triage=review", headers=AUTH).get_json()
    assert [t["id"] for t in listed["tickets"]] == [unsure.id]
    assert listed["tickets"][0]["triage_state"] == "review"
    bad = client.post(f"/api/v1/tickets/{unsure.id}/triage", json={"actor": "ana",
                                                                   "category": "rotten"},
                      headers=AUTH)
    assert bad.status_code == 422 and "category" in bad.get_json()["fields"]
    done = client.post(f"/api/v1/tickets/{unsure.id}/triage",
                       json={"actor": "ana", "category": "late", "reason": "两小时"},
                       headers=AUTH)
    assert done.status_code == 201
    body = done.get_json()
    assert (body["correction"]["suggested"]["category"], body["correction"]["category"],
            body["ticket"]["triage_state"]) == ("spoiled", "late", "corrected")
    assert client.get("/api/v1/tickets?triage=review", headers=AUTH).get_json()["tickets"] == []
    assert client.get("/api/v1/tickets?triage=maybe", headers=AUTH).status_code == 422


def test_the_ticket_page_checks_triage(session: Session, database_url: str,
                                       factory: sessionmaker[Session]) -> None:
    add_agent(session, "ana")
    ticket = complain(session, "a", confidence=0.3)
    session.commit()
    client = logged_in(admin_app(database_url, factory, lambda: T0).test_client())
    pool = client.get("/tickets?triage=review")
    assert f'id="ticket-{ticket.id}"' in pool.text and "triage to check" in pool.text
    page = f"/tickets/{ticket.id}"
    assert 'id="triage-review"' in client.get(page).text
    moved = client.post(f"{page}/triage", data={"csrf_token": csrf_token(client, page),
                                                "category": "missing", "urgency": "P2"},
                        follow_redirects=True)
    assert "triage corrected to missing, P2 (was spoiled, P2)" in moved.text
    assert 'id="triage-review"' not in moved.text
    refused = client.post(f"{page}/triage", data={"csrf_token": csrf_token(client, page),
                                                  "category": "mouldy"}, follow_redirects=True)
    assert "category must be one of" in refused.text
    assert client.post(f"{page}/triage", data={"category": "late"}).status_code == 400


def test_the_export_command_writes_and_updates_training_rows(
        session: Session, database_url: str, tmp_path: Path) -> None:
    add_agent(session, "ana")
    first = complain(session, "a", text="等了两个小时")
    check(session, first, category="late")
    session.commit()
    config = tmp_path / "hub.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n')
    out = tmp_path / "train" / "corrections.csv"

    def export() -> str:
        result = CliRunner().invoke(main, ["--data-dir", str(tmp_path), "hub",
                                           "triage-corrections", "--config", str(config),
                                           "--out", str(out)])
        assert result.exit_code == 0, result.output
        return result.output

    assert "1 rows (1 new, 0 changed) from 1 checks of 1 tickets" in export()
    check(session, first, 9, category="service")
    second = complain(session, "b", text="少了一盒")
    check(session, second, category="missing")
    session.commit()
    assert "2 rows (1 new, 1 changed) from 3 checks of 2 tickets" in export()
    with out.open(encoding="utf-8", newline="") as f:
        assert [(r["id"], r["category"]) for r in csv.DictReader(f)] == [
            (f"ticket{first.id}", "service"), (f"ticket{second.id}", "missing")]

    # a file that is not a training file is refused and left exactly as it was
    for bad, problem in [
            (b"text,label\nx,y\n", "its header is ['text', 'label']"),
            (b"id,category,review\na1,spoiled,moldy\na2,late,slow,EXTRA\na3,other,fine\n",
             "line 3: 4 fields, not 3"),
            (b"id,category,review\na1,spoiled,moldy\na1,late,slow\n", "id 'a1' is given twice"),
            (b"id,category,review\na1,rotten,moldy\n", "category 'rotten' is not one of"),
            (b"id,category,review\na2,,\n", "line 2: the id and the review must not be empty"),
            (b"id,category,review\na1,spoiled,\xff\n", "is not UTF-8 text")]:
        out.write_bytes(bad)
        result = CliRunner().invoke(main, ["--data-dir", str(tmp_path), "hub",
                                           "triage-corrections", "--config", str(config),
                                           "--out", str(out)])
        assert result.exit_code == 1 and "not a training file, left as it was" in result.output
        assert problem in result.output, result.output
        assert out.read_bytes() == bad
    assert [p.name for p in out.parent.iterdir()] == ["corrections.csv"]
