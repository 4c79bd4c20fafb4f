"""Helpdesk KPIs: each figure on its cohort, computed by hand for a small seeded week."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hub.errors import InvalidInput
from hub.models import Ticket
from hub.tickets import intake, sla, states
from hub.tickets.contact import record_contact
from hub.tickets.kpis import MIN_AGENT_SAMPLE, NPS_MIN_ANSWERS, Durations, Nps, Rate, ticket_kpis
from hub.tickets.models import Survey
from hub.tickets.shifts import ShiftWindow
from hub.tickets.workflow import Change, answer_survey, transition
from tests.hub.conftest import T0
from tests.hub.tickets_helpers import CONFIG, add_agent, social, triage
from tests.hub.ui_helpers import admin_app, logged_in

SINCE, UNTIL = T0 - timedelta(hours=1), T0 + timedelta(days=1)  # T0: Friday 09:30 UTC
NOW = T0 + timedelta(hours=5)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def complain(session: Session, handle: str, minutes: float, post: str = "1") -> Ticket:
    """A social post from ``handle`` at T0 + minutes (a new ticket, or joined to its open one)."""
    return intake.receive(session, social(handle, post_id=f"weibo:{handle}/{post}"), at(minutes),
                          triage=triage(), config=CONFIG).ticket


def move(session: Session, ticket: Ticket, to: str, minutes: float, **change: object) -> None:
    fields = {"actor": "ana", "reason": f"to {to}"} | change
    transition(session, ticket.id, to, Change(**fields),  # type: ignore[arg-type]
               at(minutes), config=CONFIG)


def contact(session: Session, ticket: Ticket, minutes: float) -> None:
    record_contact(session, ticket.id, agent="ana", text="我们马上处理", kind="message",
                   now=at(minutes), config=CONFIG)


def resolve(session: Session, ticket: Ticket, minutes: float) -> None:
    move(session, ticket, states.RESOLVED, minutes, resolution="refund")


@pytest.fixture
def week(session: Session) -> Session:
    """Five tickets for ana (office calendar: first contact within 60 business minutes)."""
    add_agent(session, "ana", capacity=20,
              shifts=[{"days": [5], "start": "09:00", "end": "18:00"}])
    # t1: contacted at 20 min (MET), resolved at 60, satisfaction 5
    t1 = complain(session, "a", 0)
    move(session, t1, states.CONFIRMING, 2)
    contact(session, t1, 20)
    move(session, t1, states.HANDLING, 21, handling="simple")
    resolve(session, t1, 60)
    move(session, t1, states.FOLLOWED_UP, 120, satisfaction=5)
    # t2: contacted at 90 (late: due 10:40), waits for evidence 100-160, the customer writes
    # again at 120, resolved at 200, satisfaction 2
    t2 = complain(session, "b", 10)
    move(session, t2, states.CONFIRMING, 12)
    contact(session, t2, 90)
    move(session, t2, states.HANDLING, 95, handling="complex")
    move(session, t2, states.AWAITING_EVIDENCE, 100)
    assert complain(session, "b", 120, post="2").id == t2.id
    move(session, t2, states.HANDLING, 160, actor="user:b", reason="photos")
    resolve(session, t2, 200)
    move(session, t2, states.FOLLOWED_UP, 260, satisfaction=2)
    # t3: never contacted; its first contact was due at 11:00
    complain(session, "c", 30)
    # t4: created 10 minutes before NOW, not contacted yet: pending
    complain(session, "d", 290)
    # t5: contacted at 5, resolved at 30, reopened at 40, resolved again at 70
    t5 = complain(session, "e", 0)
    move(session, t5, states.CONFIRMING, 1)
    contact(session, t5, 5)
    move(session, t5, states.HANDLING, 6, handling="simple")
    resolve(session, t5, 30)
    move(session, t5, states.HANDLING, 40, reason="the refund did not arrive")
    resolve(session, t5, 70)
    # t6: merged into t1 (counted there, not again)
    t6 = complain(session, "f", 15)
    t6.status, t6.merged_into = states.MERGED, t1.id
    sla.on_event(session, t6, sla.MERGED, at(16), CONFIG)
    sla.evaluate_sla(session, NOW, CONFIG)  # what the SLA watch does each minute
    session.commit()
    return session


def test_the_week_by_hand(week: Session) -> None:
    kpis = ticket_kpis(week, SINCE, UNTIL, NOW, CONFIG)
    assert (kpis.created, kpis.resolved) == (5, 3)
    assert kpis.first_response == Durations(3, 20.0, 80.0)  # 5, 20, 80 minutes
    assert kpis.first_contact == Rate(2, 4)  # t1, t5 met; t2 late; t3 missed
    assert kpis.first_contact_pending == 1  # t4
    assert kpis.time_to_resolution == Durations(3, 70.0, 130.0)  # 60, 70, 190 - 60 waiting
    assert kpis.resolution_rate == Rate(3, 5)
    assert kpis.reopen_rate == Rate(1, 4)  # four resolutions, one reopen
    assert kpis.first_contact_resolution == Rate(1, 3)  # t2 asked again, t5 reopened
    assert kpis.csat == Rate(1, 2)
    assert kpis.survey_response == Rate(2, 3)
    assert kpis.by_category == {"spoiled": 5}
    assert kpis.triage_review == Rate(0, 5) and kpis.triage_agreed == Rate(0, 0)
    assert kpis.sla_by_target[states.FIRST_CONTACT] == Rate(2, 4)  # t3's breach counts
    assert kpis.sla.total == sum(r.total for r in kpis.sla_by_target.values())
    assert kpis.sla.hits == sum(r.hits for r in kpis.sla_by_target.values())


def test_triage_review_and_how_often_people_keep_the_classifiers_category(
        week: Session) -> None:
    from hub.tickets.triage_review import check_triage

    unsure = intake.receive(week, social("g"), at(100), triage=triage(confidence=0.3),
                            config=CONFIG).ticket
    check_triage(week, unsure.id, actor="ana", now=at(110), category="late", config=CONFIG)
    check_triage(week, unsure.id, actor="bo", now=at(120), config=CONFIG)  # a second look
    sure = week.get(Ticket, 1)
    assert sure is not None
    check_triage(week, sure.id, actor="ana", now=at(130), config=CONFIG)
    kpis = ticket_kpis(week, SINCE, UNTIL, NOW, CONFIG)
    assert kpis.triage_review == Rate(1, 6)
    assert kpis.triage_agreed == Rate(1, 2)  # each ticket's first check: late was a correction
    assert ticket_kpis(week, at(125), UNTIL, NOW, CONFIG).triage_agreed == Rate(1, 1)


def test_heat_map_and_planned_staffing(week: Session) -> None:
    kpis = ticket_kpis(week, SINCE, UNTIL, NOW, CONFIG)
    friday = kpis.heatmap[4]
    assert (friday[9], friday[10], friday[14]) == (3, 1, 1)  # 09:30 x2 and 09:40; 10:00; 14:20
    assert sum(map(sum, kpis.heatmap)) == kpis.created
    assert [h for h in range(24) if kpis.staffed[4][h]] == list(range(9, 18))
    assert not any(kpis.staffed[3])


def test_agents_are_ranked_only_with_enough_tickets(week: Session) -> None:
    kpis = ticket_kpis(week, SINCE, UNTIL, NOW, CONFIG)
    (ana,) = kpis.agents
    assert (ana.agent_id, ana.resolved, ana.ranked, ana.score) == ("ana", 3, False, None)
    assert (ana.first_contact, ana.csat, ana.fcr) == (Rate(2, 3), Rate(1, 2), Rate(1, 3))

    for n in range(MIN_AGENT_SAMPLE - 3):
        ticket = complain(week, f"more{n}", 300)
        move(week, ticket, states.CONFIRMING, 301)
        contact(week, ticket, 302)
        move(week, ticket, states.HANDLING, 303, handling="simple")
        resolve(week, ticket, 304)
    week.commit()
    later = ticket_kpis(week, SINCE, UNTIL, NOW + timedelta(hours=1), CONFIG)
    (ana,) = later.agents
    parts = [ana.first_contact.value, ana.sla.value, ana.csat.value, ana.fcr.value]
    assert ana.ranked and ana.resolved == MIN_AGENT_SAMPLE
    assert ana.score == pytest.approx(sum(p for p in parts if p is not None) / 4, abs=1e-4)


@pytest.mark.parametrize(("answers", "expected"), [
    ([], Nps(0, 0, 0, 0, None, True)),
    ([0, 6, 7, 8, 9, 10], Nps(6, 2, 2, 2, 0.0, True)),  # 6 detracts, 7-8 pass, 9 promotes
    ([6, 6, 6, 9], Nps(4, 1, 0, 3, -50.0, True)),
    ([10] * (NPS_MIN_ANSWERS - 1), Nps(NPS_MIN_ANSWERS - 1, NPS_MIN_ANSWERS - 1, 0, 0, 100.0,
                                       True)),
    ([9] * 20 + [5] * 10, Nps(30, 20, 0, 10, 33.3, False)),
])
def test_nps_is_promoters_minus_detractors_and_thin_below_thirty_answers(
        answers: list[int], expected: Nps) -> None:
    assert Nps.of(answers) == expected


def test_nps_counts_the_latest_recommend_answer_of_each_resolved_ticket(week: Session) -> None:
    assert ticket_kpis(week, SINCE, UNTIL, NOW, CONFIG).nps == Nps.of([])  # none answered
    first = week.scalars(select(Survey).where(Survey.status == "open")).one()  # t5's
    answer_survey(week, first.token, 2, None, at(80), CONFIG, recommend=3)
    assert ticket_kpis(week, SINCE, UNTIL, NOW, CONFIG).nps == Nps(1, 0, 0, 1, -100.0, True)

    t5 = week.get_one(Ticket, first.ticket_id)
    move(week, t5, states.HANDLING, 90, reason="the refund bounced")
    resolve(week, t5, 100)
    second = week.scalars(select(Survey).where(Survey.status == "open")).one()
    answer_survey(week, second.token, 5, None, at(110), CONFIG, recommend=10)
    assert ticket_kpis(week, SINCE, UNTIL, NOW, CONFIG).nps == Nps(1, 1, 0, 0, 100.0, True)


def test_a_period_before_anything_is_empty_not_an_error(week: Session) -> None:
    kpis = ticket_kpis(week, SINCE - timedelta(days=7), SINCE, NOW, CONFIG)
    assert (kpis.created, kpis.resolved, kpis.agents) == (0, 0, [])
    assert kpis.first_response == Durations(0, None, None)
    assert kpis.csat.value is None and kpis.resolution_rate.value is None


@pytest.mark.parametrize(("since", "until", "message"), [
    (UNTIL, SINCE, "must be after since"),
    (SINCE, SINCE + timedelta(days=400), "at most 366 days"),
    (SINCE.replace(tzinfo=None), UNTIL, "time zone offset"),
])
def test_bad_periods_are_refused(session: Session, since: datetime, until: datetime,
                                 message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        ticket_kpis(session, since, until, NOW, CONFIG)


@pytest.mark.parametrize(("weekday", "local", "covered"), [
    (5, time(22, 0), True), (6, time(5, 59), True), (6, time(6, 0), False),
    (5, time(21, 59), False), (1, time(3, 0), False), (7, time(23, 0), False),
])
def test_a_window_past_midnight_covers_the_next_morning(weekday: int, local: time,
                                                        covered: bool) -> None:
    night = ShiftWindow(days=[5], start="22:00", end="06:00")
    assert night.covers(weekday, local) is covered


def test_the_kpi_page_shows_the_figures_with_their_parts(week: Session, database_url: str,
                                                        factory: sessionmaker[Session]) -> None:
    client = admin_app(database_url, factory, lambda: NOW).test_client()
    assert client.get("/tickets/kpis").status_code == 302  # to the login page
    page = logged_in(client).get("/tickets/kpis?since=2026-11-20&until=2026-11-21")
    assert page.status_code == 200
    text = " ".join(page.text.split())
    assert '<div class="stat-label">Created</div><div class="stat-value">5</div>' in text
    assert "50 %</div><span class=\"sub\">2 of 4</span>" in text  # first contact in time
    assert "1 still within target" in text
    assert "too few to rank" in text and "Ana" in text
    assert ('<div class="stat-label">NPS</div><div class="stat-value">–</div>' in text
            and f"thin: 0 answers, fewer than {NPS_MIN_ANSWERS}" in text)
    assert 'title="3 created · 1 planned on shift"' in text  # Friday 09:00
    assert 'title="0 created · 0 planned on shift"' in text

    refused = client.get("/tickets/kpis?since=last+week")
    assert refused.status_code == 400 and "since" in refused.text
    for bound in ("until=0001-01-01", "until=9999-12-31T23:59:59-12:00",
                  "since=2026-11-20T09:00"):  # out of range; a time without an offset
        refused = client.get(f"/tickets/kpis?{bound}")
        assert refused.status_code == 400 and bound.split("=")[0] in refused.text, bound
    backwards = client.get("/tickets/kpis?since=2026-11-21&until=2026-11-20")
    assert backwards.status_code == 400 and "must be after since" in backwards.text
    assert client.get("/tickets/kpis").status_code == 200  # the last seven days
