"""Tier escalation (DOMAIN.md §4): tier 1 -> the tier-2 team of the category, and back."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.desk import handover, ticket_ops
from gateway.jobs import sla
from gateway.clock import ManualClock
from tests.sla_kit import (ALICE, BOB, CAROL, CUSTOMER, DAVE, DAVE_AWAY, change, copies, events, mails, new_ticket,
                           reply_to_is_signed_for, rules, text_of, ticket, utc)

RESOLUTION_DUE = utc(2026, 3, 2, 10, 0)  # 18:00 Shanghai: 9 business hours after 09:00


@pytest.fixture
def clock():
    return ManualClock(utc(2026, 3, 2, 1, 0))


def _escalate(app, tid, actor=ALICE, note="Restarted the batch; checked the logs: lock waits."):
    out = {}
    change(app, tid, lambda a, s, t: out.setdefault("r", handover.escalate(a, s, t, actor=actor, note=note)))
    return out["r"]


def test_escalate_moves_the_ticket_to_tier_two_with_history_and_what_tier_one_tried(make_app, clock):
    app = make_app(clock=clock)
    tid = new_ticket(app)
    clock.advance(minutes=50)
    assert _escalate(app, tid)
    t = ticket(app, tid)
    assert (t.tier, t.team, t.handler, t.owner, t.escalated_from) == (2, "l2", DAVE, ALICE, ALICE)
    [mail] = mails(app, "escalation_tier2")
    assert mail.to == [DAVE] and mail.cc == []
    assert reply_to_is_signed_for(app, mail, DAVE, tid)
    body = text_of(mail)
    assert "Restarted the batch" in body and "the nightly batch takes hours" in body and CUSTOMER in body
    [ev] = events(app, tid, "escalated")
    assert ev.data["tier1"] == ALICE and ev.data["tier2"] == DAVE and ev.data["team"] == "l2"
    [notice] = mails(app, "customer_takeover")
    assert notice.to == [CUSTOMER] and "specialist" in text_of(notice)
    assert "lock waits" not in text_of(notice)  # what tier 1 tried is internal


def test_database_ticket_of_team_support_goes_to_the_dba_team(make_app, clock, tmp_path):
    # the sample rules send database mail to team dba; keep it in support to use escalation.support.database
    app = make_app(clock=clock, routing=rules(tmp_path, ('category = "database"\nteam = "dba"',
                                                         'category = "database"')))
    tid = new_ticket(app, subject="Deadlock in the database", body="We see a deadlock every night.\n")
    assert ticket(app, tid).category == "database"
    assert _escalate(app, tid)
    assert ticket(app, tid).handler == "erin@support.example.com"


def test_tier_two_resolution_is_reported_back_to_tier_one(make_app, clock):
    app = make_app(clock=clock)
    tid = new_ticket(app)
    _escalate(app, tid)
    clock.advance(hours=2)

    def resolve(a, s, t):
        t.solution = "Added the missing index on batch_jobs."
        ticket_ops.set_status(a, s, t, "resolved", actor=DAVE)
        handover.on_resolved(a, s, t, actor=DAVE)

    change(app, tid, resolve)
    [mail] = mails(app, "tier2_report")
    assert mail.to == [ALICE] and mail.cc == []
    assert "Added the missing index" in text_of(mail)
    assert events(app, tid, "tier2_reported")[0].data["to"] == ALICE
    assert not mails(app, "handback")  # no handover happened


def test_secondarys_escalate_during_a_handover_goes_to_the_manager_not_straight_to_tier_two(make_app, clock):
    # 第五条: the secondary handles only this incident; if she cannot solve it either, the manager is
    # told and decides whether tier 2 comes in; coordination returns to the primary afterwards
    app = make_app(clock=clock)
    tid = new_ticket(app)
    change(app, tid, lambda a, s, t: handover.handover(a, s, t, reason="#handover by mail", actor=ALICE))
    r = _escalate(app, tid, actor=BOB)
    assert r and CAROL in r.detail
    t = ticket(app, tid)
    assert (t.tier, t.team, t.handler, t.owner, t.manager_escalated) == (1, "support", CAROL, CAROL, True)
    assert not mails(app, "escalation_tier2") and not events(app, tid, "escalated")
    [alert] = mails(app, "manager_alert")
    assert alert.to == [CAROL] and "lock waits" in text_of(alert) and "#escalate" in text_of(alert)
    [ev] = events(app, tid, "manager_escalation")
    assert ev.actor == BOB and ev.data["previous"] == BOB and "#escalate" in ev.data["reason"]
    [told] = mails(app, "escalated_to_manager")  # bob asked for tier 2: he learns where it went
    assert told.to == [BOB] and "Carol" in text_of(told) and reply_to_is_signed_for(app, told, BOB, tid)

    # the manager decides: tier 2 comes in, reports back to her; the handback goes to the primary
    assert _escalate(app, tid, actor=CAROL, note="Asked Dave's team.")
    t = ticket(app, tid)
    assert (t.tier, t.handler, t.escalated_from) == (2, DAVE, CAROL)

    def resolve(a, s, t):
        ticket_ops.set_status(a, s, t, "resolved", actor=DAVE)
        handover.on_resolved(a, s, t, actor=DAVE)

    change(app, tid, resolve)
    assert mails(app, "tier2_report")[0].to == [CAROL]
    back = copies(app, "handback")[ALICE]
    assert back.to == [ALICE] and back.cc == [CAROL]
    t = ticket(app, tid)
    assert (t.handler, t.owner, t.manager_escalated, t.handover_reason) == (ALICE, ALICE, False, "")


def test_primarys_escalate_during_a_handover_still_goes_to_tier_two(make_app, clock):
    # the primary coordinates the project (第六条): calling in tier 2 is hers to do, manager not involved
    app = make_app(clock=clock)
    tid = new_ticket(app)
    change(app, tid, lambda a, s, t: handover.handover(a, s, t, reason="#handover by mail", actor=ALICE))
    assert _escalate(app, tid, actor=ALICE)
    t = ticket(app, tid)
    assert (t.tier, t.handler) == (2, DAVE) and not t.manager_escalated
    assert not mails(app, "manager_alert")


def test_resolution_breach_at_tier_one_escalates_automatically(make_app, clock):
    app = make_app(clock=clock)
    tid = new_ticket(app)
    clock.advance(minutes=30)
    change(app, tid, lambda a, s, t: ticket_ops.mark_first_response(a, t))  # alice answered in time
    clock.set(RESOLUTION_DUE - timedelta(seconds=1))
    assert sla.run_sla_watch(app)["escalated"] == 0
    clock.set(RESOLUTION_DUE)
    counts = sla.run_sla_watch(app)
    assert counts["escalated"] == 1 and counts["breach"] == 1
    t = ticket(app, tid)
    assert (t.tier, t.handler, t.escalated_from) == (2, DAVE, ALICE)
    [ev] = events(app, tid, "escalated")
    assert ev.actor == "system:sla" and "resolution deadline" in ev.data["note"]


def test_escalation_refused_at_tier_two_and_without_a_tier_two_team(make_app, clock):
    app = make_app(clock=clock)
    tid = new_ticket(app)
    assert _escalate(app, tid)
    again = _escalate(app, tid, actor=DAVE)
    assert not again and "already at tier 2" in again.detail
    sec = new_ticket(app, subject="Possible data breach", body="We think there was a breach.\n")
    assert ticket(app, sec).team == "security"
    r = _escalate(app, sec)
    assert not r and "no tier-2 team" in r.detail
    assert ticket(app, sec).tier == 1
    assert len(mails(app, "escalation_tier2")) == 1


def test_tier_two_team_all_out_of_office_is_refused(make_app, clock, tmp_path):
    app = make_app(clock=clock, routing=rules(tmp_path, DAVE_AWAY))
    tid = new_ticket(app)
    r = _escalate(app, tid)
    assert not r and "out of office" in r.detail
    t = ticket(app, tid)
    assert (t.tier, t.handler) == (1, ALICE)
    assert "stays responsible" in events(app, tid, "escalation_refused")[0].detail
