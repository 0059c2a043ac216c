"""Tickets waiting on the customer: one reminder, then auto-resolution with a notice.

`run_pending_reminders(app)` is a scheduler job. A ticket `pending` for
`workflow.pending_reminder_hours` gets one reminder (recorded in
`ticket.reminded_at`); after `workflow.pending_autoresolve_hours` it is
resolved with a notice that a reply within the reopen window reopens it.
"pending since" is `ticket.paused_at`, set when the SLA clock paused.

Idempotent: a reminder is sent once per pending period (a reminder older than
the current pause belongs to an earlier one), and a resolved ticket is no
longer pending. On PostgreSQL the rows are locked (SKIP LOCKED) so two
gateways running the job at once act on each ticket once.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from gateway.desk import handover, ticket_ops
from gateway import outbox
from gateway.desk.automatic import may_send_automatic
from gateway.desk.closure import customer_ccs
from storage.history import record_event
from storage.models import Ticket
from storage.queries import tickets

ACTOR = "system:pending"


def run_pending_reminders(app) -> Counter:
    wf = app.config.workflow
    remind_after = timedelta(hours=wf.pending_reminder_hours)
    resolve_after = timedelta(hours=wf.pending_autoresolve_hours)
    counts: Counter = Counter()
    now = app.now()
    with app.db.session() as s:
        for ticket in tickets.in_status(s, "pending", lock=not app.db.is_sqlite):
            since = ticket.paused_at or ticket.updated_at
            waited = now - since
            if waited >= resolve_after:
                auto_resolve(app, s, ticket, waited)
                counts["auto_resolved"] += 1
            elif waited >= remind_after and (ticket.reminded_at is None or ticket.reminded_at < since):
                remind(app, s, ticket, since)
                counts["reminded"] += 1
    return counts


def _mail(app, s, ticket: Ticket, kind: str, **context) -> bool:
    rcpt = ticket.requester_email
    if not may_send_automatic(app, s, rcpt, kind):
        return False
    rendered = app.templates_for(ticket).render(kind, ticket.language, ticket=ticket,
                                                customer_name=ticket.requester_name,
                                                team_name=app.team_name(ticket), **context)
    outbox.reply_to_customer(app, s, ticket, kind, rendered, cc=customer_ccs(app, s, ticket),
                             automatic="auto-generated")
    return True


def _days(hours: float) -> int:
    return max(1, round(hours / 24))


def remind(app, s, ticket: Ticket, since) -> None:
    wf = app.config.workflow
    left = wf.pending_autoresolve_hours - wf.pending_reminder_hours
    sent = _mail(app, s, ticket, "pending_reminder", since=since, days_left=_days(left),
                 hours_left=round(left))
    ticket.reminded_at = app.now()
    record_event(s, ticket, "pending_reminder", app.now(),
                 "reminder sent: waiting for the customer" if sent else "reminder due, no customer address",
                 actor=ACTOR)


def auto_resolve(app, s, ticket: Ticket, waited: timedelta) -> None:
    why = f"no reply from the customer for {waited.total_seconds() / 3600:.0f} hours"
    ticket_ops.set_status(app, s, ticket, "resolved", actor=ACTOR, why=why)
    record_event(s, ticket, "auto_resolved", app.now(), why, actor=ACTOR)
    _mail(app, s, ticket, "auto_resolved", reopen_days=app.config.workflow.reopen_window_days)
    handover.on_resolved(app, s, ticket, actor=ACTOR)
