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


# ---- issue 18 item 13: a thank-you after the resolution is kept and changes nothing

def _messages(app, tid):
    from sqlalchemy import select

    from storage.models import Message

    with app.db.session() as s:
        return list(s.execute(select(Message).where(Message.ticket_id == tid).order_by(Message.id)).scalars())


def test_thanks_after_resolution_is_kept_and_reopens_nothing(make_app, clock):
    app = make_app(clock=clock)
    tid, closure_mail = _resolved(app)
    clock.advance(hours=2)
    counts = deliver(app, reply_to(closure_mail, body="Thanks, it works!\n"))
    assert counts["thanks"] == 1, counts
    t = ticket(app, tid)
    assert t.status == "resolved" and t.resolved_at is not None
    assert events(app, tid, "reopened") == [] and responses(app) == []
    assert [m.reply_text.strip() for m in _messages(app, tid) if m.kind == "thanks"] == ["Thanks, it works!"]
    assert "thank-you from" in events(app, tid, "thanks")[0].detail  # in the history the owner reads
    assert flush(app) == []  # nobody is paged, the customer gets no automatic answer


def test_chinese_thanks_after_the_window_opens_no_new_ticket(make_app, clock):
    app = make_app(clock=clock, workflow={"reopen_window_days": 14})
    tid, closure_mail = _resolved(app)
    clock.advance(days=20)
    counts = deliver(app, reply_to(closure_mail, body="好了，谢谢！\n"))
    assert counts["thanks"] == 1, counts
    assert len(tickets(app)) == 1 and ticket(app, tid).status == "resolved"


def test_thanks_with_a_question_or_a_problem_still_reopens(make_app, clock):
    app = make_app(clock=clock)
    for body in ("Thanks, but it still fails at night.\n", "谢谢，请问什么时候能彻底修好？\n",
                 "Thanks, it works! One more thing: the printer is down.\n"):
        tid, closure_mail = _resolved(app)
        counts = deliver(app, reply_to(closure_mail, body=body))
        assert counts["threaded"] == 1, (body, counts)
        assert ticket(app, tid).status == "open" and events(app, tid, "reopened")
