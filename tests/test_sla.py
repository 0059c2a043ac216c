"""The SLA watch: warnings at the configured share, breaches recorded once at the deadline,
pending pauses the resolution clock, warnings wait for working hours, business-time arithmetic."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.desk import handover, ticket_ops
from gateway.jobs import sla
from gateway.clock import ManualClock
from gateway.outbox import message_bytes
from gateway.pipeline.process import Source, ingest
from tests.mail import build, parse
from tests.sla_kit import (ALICE, BOB, CUSTOMER, DAVE, SUPPORT, change, events, mails, marks, new_ticket, ticket,
                           utc)


@pytest.fixture
def clock():
    return ManualClock(utc(2026, 3, 2, 1, 0))  # Monday 09:00 Shanghai


def test_warning_at_the_configured_share_once(make_app, clock):
    app = make_app(clock=clock)
    tid = new_ticket(app)  # first response due 03:00 UTC: 2 business hours
    clock.set(utc(2026, 3, 2, 2, 29))
    assert sla.run_sla_watch(app)["warning"] == 0
    clock.set(utc(2026, 3, 2, 2, 30))  # 75% of 2h elapsed
    assert sla.run_sla_watch(app)["warning"] == 1
    assert sla.run_sla_watch(app)["warning"] == 0  # once
    [w] = mails(app, "sla_warning")
    assert w.to == [ALICE] and w.cc == [] and "first response" in w.subject
    assert [(m.kind, m.deadline, m.at) for m in marks(app, tid)] == [
        ("first_response_warning", utc(2026, 3, 2, 3, 0), utc(2026, 3, 2, 2, 30))]


def test_configured_share_is_used(make_app, clock):
    app = make_app(clock=clock, workflow={"sla_warn_share": 0.5})
    new_ticket(app)
    clock.set(utc(2026, 3, 2, 2, 0))
    assert sla.run_sla_watch(app)["warning"] == 1


def test_breach_is_recorded_at_the_deadline_even_when_the_watch_runs_late(make_app, clock):
    app = make_app(clock=clock)
    tid = new_ticket(app)
    clock.set(utc(2026, 3, 2, 3, 47))  # the watch was down for 47 minutes
    counts = sla.run_sla_watch(app)
    assert counts["breach"] == 1 and counts["warning"] == 0  # no stale warning for a missed deadline
    [m] = marks(app, tid)
    assert (m.kind, m.at, m.handler, m.priority) == ("first_response_breach", utc(2026, 3, 2, 3, 0), ALICE, "P2")


def test_late_first_response_is_recorded_as_a_breach_without_action(make_app, clock):
    app = make_app(clock=clock)
    tid = new_ticket(app)
    clock.set(utc(2026, 3, 2, 3, 10))
    change(app, tid, lambda a, s, t: ticket_ops.mark_first_response(a, t))  # answered, but late
    counts = sla.run_sla_watch(app)
    assert counts["breach"] == 1 and counts["handover"] == 0
    assert ticket(app, tid).handler == ALICE


def _ack(app):
    return parse(message_bytes(mails(app, "acknowledgement")[0]))


def test_pending_pauses_the_resolution_clock_and_the_customers_reply_resumes_it(make_app, clock):
    clock.set(utc(2026, 3, 6, 1, 0))  # Friday 09:00 Shanghai
    app = make_app(clock=clock)
    tid = new_ticket(app)
    assert ticket(app, tid).resolution_due == utc(2026, 3, 6, 10, 0)  # Friday 18:00
    clock.set(utc(2026, 3, 6, 2, 0))  # Friday 10:00: 8 business hours left

    def wait_for_customer(a, s, t):
        ticket_ops.mark_first_response(a, t)
        ticket_ops.set_status(a, s, t, "pending", actor=ALICE, why="asked for logs")

    change(app, tid, wait_for_customer)
    clock.set(utc(2026, 3, 6, 11, 0))  # past the original deadline while pending: no breach
    assert sla.run_sla_watch(app)["breach"] == 0

    clock.set(utc(2026, 3, 6, 12, 0))  # Friday 20:00 Shanghai: the customer replies with the logs
    ack = _ack(app)
    reply = build(frm=CUSTOMER, subject=f"Re: {ack['Subject']}", body="Here are the logs.\n",
                  in_reply_to=ack["Message-ID"], references=ack["Message-ID"], name="Li Ming")
    ingest(app, [(reply, Source("smtp", envelope_from=CUSTOMER, envelope_to=(SUPPORT,)))])
    t = ticket(app, tid)
    assert t.status == "open" and t.paused_at is None and t.paused_seconds == 10 * 3600
    # the 8 working hours left resume from Friday 20:00: Monday 09:00-17:00 Shanghai (not Saturday 04:00)
    assert t.resolution_due == utc(2026, 3, 9, 9, 0)
    clock.set(utc(2026, 3, 9, 8, 59))
    assert sla.run_sla_watch(app)["breach"] == 0
    clock.set(utc(2026, 3, 9, 9, 0))
    assert sla.run_sla_watch(app)["breach"] == 1
    assert [m.kind for m in marks(app, tid)][-1] == "resolution_breach"


def test_wall_clock_policy_shifts_by_the_pause(make_app, clock):
    app = make_app(clock=clock)
    tid = new_ticket(app, subject="Production down", body="Outage: all users affected.\n")  # P1, around the clock
    t = ticket(app, tid)
    assert t.priority == "P1"
    due = t.resolution_due
    change(app, tid, lambda a, s, t: ticket_ops.set_status(a, s, t, "pending", actor=ALICE))
    clock.advance(hours=3)
    change(app, tid, lambda a, s, t: ticket_ops.set_status(a, s, t, "open", actor=ALICE))
    assert ticket(app, tid).resolution_due == due + timedelta(hours=3)


def test_warning_waits_for_working_hours_but_the_breach_is_recorded_on_time(make_app, clock):
    app = make_app(clock=clock)
    tid = new_ticket(app)  # resolution due Monday 18:00 Shanghai = 10:00 UTC = 11:00 Berlin

    def to_dave(a, s, t):
        ticket_ops.mark_first_response(a, t)
        handover.escalate(a, s, t, actor=ALICE, note="tried a restart")

    clock.advance(minutes=30)
    change(app, tid, to_dave)  # dave works 09:00-17:00 Berlin
    clock.set(utc(2026, 3, 2, 7, 45))  # 75% of the 9 business hours; 08:45 in Berlin
    assert sla.run_sla_watch(app)["deferred"] == 1
    clock.set(utc(2026, 3, 2, 7, 59))
    assert sla.run_sla_watch(app)["deferred"] == 1
    assert not mails(app, "sla_warning")
    clock.set(utc(2026, 3, 2, 8, 0))  # 09:00 in Berlin
    assert sla.run_sla_watch(app)["warning"] == 1
    [w] = mails(app, "sla_warning")
    assert w.to == [DAVE]
    clock.set(utc(2026, 3, 2, 10, 20))
    assert sla.run_sla_watch(app)["breach"] == 1
    assert marks(app, tid)[-1].at == utc(2026, 3, 2, 10, 0)


def test_night_breach_hands_over_at_once_while_the_warning_never_went_out(make_app, clock):
    clock.set(utc(2026, 3, 2, 14, 0))  # 22:00 Shanghai: alice is off
    app = make_app(clock=clock)
    tid = new_ticket(app, subject="Production down", body="Outage: all users affected.\n")  # P1: 15 minutes
    assert ticket(app, tid).first_response_due == utc(2026, 3, 2, 14, 15)
    clock.set(utc(2026, 3, 2, 14, 12))
    assert sla.run_sla_watch(app)["deferred"] == 1
    clock.set(utc(2026, 3, 2, 14, 15))
    assert sla.run_sla_watch(app)["handover"] == 1
    assert not mails(app, "sla_warning")
    assert ticket(app, tid).handler == BOB
    assert [(m.kind, m.at) for m in marks(app, tid)] == [("first_response_breach", utc(2026, 3, 2, 14, 15))]
    assert "outside your working hours" in parse(message_bytes(mails(app, "handover")[0])).get_body().get_content()


def test_business_hours_across_a_weekend_and_a_holiday(make_app, clock):
    clock.set(utc(2026, 4, 3, 9, 0))  # Friday 3 April 17:00 Shanghai; 4-6 April is 清明节
    app = make_app(clock=clock)
    tid = new_ticket(app)
    # 1 hour on Friday, the second on Tuesday 7 April 09:00-10:00
    assert ticket(app, tid).first_response_due == utc(2026, 4, 7, 2, 0)
    for when in (utc(2026, 4, 3, 9, 59), utc(2026, 4, 4, 3, 0), utc(2026, 4, 6, 9, 0), utc(2026, 4, 7, 1, 29)):
        clock.set(when)
        assert sum(sla.run_sla_watch(app).values()) == 0, when
    clock.set(utc(2026, 4, 7, 1, 30))  # 30 business minutes left
    assert sla.run_sla_watch(app)["warning"] == 1
    clock.set(utc(2026, 4, 7, 2, 0))
    assert sla.run_sla_watch(app)["handover"] == 1
    assert events(app, tid, "sla_breach")[0].data["deadline"] == utc(2026, 4, 7, 2, 0).isoformat()
