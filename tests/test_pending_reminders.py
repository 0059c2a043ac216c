"""Tickets waiting on the customer: one reminder, then auto-resolution, on a ManualClock."""

from __future__ import annotations

from datetime import timedelta

from gateway.desk import ticket_ops
from gateway.jobs.pending import run_pending_reminders
from storage.models import Ticket
from tests.closure_kit import (
    ALICE, CUSTOMER, deliver, events, flush, open_ticket, reply_to, text_of, ticket, to_customer,
)

WF = {"pending_reminder_hours": 72, "pending_autoresolve_hours": 168, "reopen_window_days": 14}


def _pending(app, tid):
    with app.db.session() as s:
        ticket_ops.set_status(app, s, s.get(Ticket, tid), "pending", actor=ALICE, why="asked for logs")


def test_reminder_then_auto_resolve(make_app, clock):
    app = make_app(clock=clock, workflow=WF)
    tid = open_ticket(app)
    flush(app)
    _pending(app, tid)

    clock.advance(hours=71, minutes=59)
    assert run_pending_reminders(app) == {}
    assert to_customer(flush(app)) == []

    clock.advance(minutes=1)
    assert run_pending_reminders(app) == {"reminded": 1}
    [reminder] = to_customer(flush(app))
    assert "Waiting for your reply" in reminder["msg"]["Subject"]
    assert "in about 4 days" in text_of(reminder["msg"])
    assert reminder["msg"]["Auto-Submitted"] == "auto-generated"
    assert ticket(app, tid).reminded_at == clock.now()

    # idempotent: running again (another process, a restart) sends nothing more
    clock.advance(hours=10)
    assert run_pending_reminders(app) == {}
    assert to_customer(flush(app)) == []

    clock.set(ticket(app, tid).paused_at + timedelta(hours=168))
    assert run_pending_reminders(app) == {"auto_resolved": 1}
    t = ticket(app, tid)
    assert t.status == "resolved" and t.resolved_at == clock.now()
    assert events(app, tid, "auto_resolved")[0].actor == "system:pending"
    [notice] = to_customer(flush(app))
    assert "Closed for lack of reply" in notice["msg"]["Subject"]
    assert "within 14 days" in text_of(notice["msg"])
    assert run_pending_reminders(app) == {}


def test_customer_reply_stops_the_countdown_and_next_pending_period_reminds_again(make_app, clock):
    app = make_app(clock=clock, workflow=WF)
    tid = open_ticket(app)
    [ack] = to_customer(flush(app))
    _pending(app, tid)
    clock.advance(hours=80)
    run_pending_reminders(app)
    flush(app)
    deliver(app, reply_to(ack["msg"], body="Here are the logs you asked for.\n"))
    assert ticket(app, tid).status == "open"

    clock.advance(hours=200)
    assert run_pending_reminders(app) == {}  # open tickets are not ours
    _pending(app, tid)
    clock.advance(hours=72)
    assert run_pending_reminders(app) == {"reminded": 1}  # a new pending period, a new reminder


def test_both_thresholds_passed_at_once_only_resolves(make_app, clock):
    """After downtime the job must not send a reminder and a closure in the same breath."""
    app = make_app(clock=clock, workflow=WF)
    tid = open_ticket(app)
    flush(app)
    _pending(app, tid)
    clock.advance(hours=500)
    assert run_pending_reminders(app) == {"auto_resolved": 1}
    kinds = [m["msg"]["Subject"] for m in to_customer(flush(app))]
    assert len(kinds) == 1 and "Closed for lack of reply" in kinds[0]


def test_reply_to_auto_resolved_notice_reopens(make_app, clock):
    app = make_app(clock=clock, workflow=WF)
    tid = open_ticket(app)
    flush(app)
    _pending(app, tid)
    clock.advance(hours=170)
    run_pending_reminders(app)
    [notice] = to_customer(flush(app))
    clock.advance(days=2)
    deliver(app, reply_to(notice["msg"], frm=CUSTOMER, body="Sorry, I was away. It still fails.\n"))
    assert ticket(app, tid).status == "open"
