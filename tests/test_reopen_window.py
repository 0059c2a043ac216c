"""A customer's non-score reply to a resolved ticket: within the reopen window it
reopens the ticket; after it, it opens a new ticket linked to the old one."""

from __future__ import annotations

from tests.closure_kit import (
    CUSTOMER, deliver, events, flush, open_ticket, reply_to, resolve, responses, ticket, tickets, to_customer,
)


def _resolved(app):
    tid = open_ticket(app)
    flush(app)
    resolve(app, tid)
    [closure_mail] = to_customer(flush(app))
    return tid, closure_mail["msg"]


def test_reply_within_window_reopens(make_app, clock):
    app = make_app(clock=clock, workflow={"reopen_window_days": 14})
    tid, closure_mail = _resolved(app)
    clock.advance(days=13, hours=23)
    counts = deliver(app, reply_to(closure_mail, body="It failed again tonight, same error.\n"))
    assert counts["threaded"] == 1, counts
    t = ticket(app, tid)
    assert t.status == "open" and t.resolved_at is None
    assert len(tickets(app)) == 1
    assert events(app, tid, "reopened")
    assert responses(app) == []  # prose is not a survey answer


def test_reply_after_window_opens_linked_ticket(make_app, clock):
    app = make_app(clock=clock, workflow={"reopen_window_days": 14})
    tid, closure_mail = _resolved(app)
    clock.advance(days=14, hours=1)
    counts = deliver(app, reply_to(closure_mail, body="It failed again tonight, same error.\n"))
    assert counts["created"] == 1, counts
    old, new = tickets(app)
    assert old.id == tid and old.status == "resolved"
    assert new.linked_ticket_id == tid and new.requester_email == CUSTOMER
    assert new.status == "new"
    assert events(app, new.id, "linked")[0].data["linked"] == old.ref


def test_score_after_window_is_still_an_answer(make_app, clock):
    """A late survey answer is feedback, not a new problem: it opens nothing."""
    app = make_app(clock=clock, workflow={"reopen_window_days": 14})
    tid, closure_mail = _resolved(app)
    clock.advance(days=30)
    counts = deliver(app, reply_to(closure_mail, body="4 - thanks\n"))
    assert counts["survey"] == 1
    assert len(tickets(app)) == 1 and responses(app)[0].score == 4


def test_low_score_then_new_resolution_gets_a_fresh_survey(make_app, clock):
    app = make_app(clock=clock)
    tid, closure_mail = _resolved(app)
    deliver(app, reply_to(closure_mail, body="1\n"))
    assert ticket(app, tid).status == "open"
    flush(app)
    clock.advance(hours=5)
    resolve(app, tid, solution="Replaced the disk.")
    [second] = to_customer(flush(app))
    deliver(app, reply_to(second["msg"], body="5\n"))
    assert [r.score for r in responses(app)] == [1, 5]  # both resolutions keep their answer
    assert ticket(app, tid).status == "resolved"
