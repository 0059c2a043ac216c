"""A reopened ticket's next resolution is its own: the closure mail and a #kb article carry
the answer given after the reopen, never the one the customer has just rated 1/5.

Told as one conversation through the real pipeline: the customer writes, the engineer
answers from the notification, the customer rates the closure mail 1, and the engineer
closes again."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from storage.models import KbArticle
from tests.closure_kit import reply_to as customer_reply_to
from tests.closure_kit import text_of
from tests.engineer_mail import CUSTOMER, Desk, customer_mail, events, open_ticket, reply_to, ticket

OLD = "Clear the browser cache and log in again."
NEW = "The load balancer had a stale certificate; it is replaced and the site answers again."


def _closure(mails):
    return [m for m in customer_mail(mails) if "Resolved:" in (m["msg"]["Subject"] or "")]


def _open(desk: Desk):
    return open_ticket(desk, subject="Website down", body="Hello,\nour website returns 502 since 9:00.\n")


def _rated_one(desk: Desk, answer: str = "1 - still broken\n"):
    """A ticket resolved with OLD and answered by the customer (rated 1/5, or written to again):
    reopened. Returns (id, a notification)."""
    tid, note = _open(desk)
    desk.receive(reply_to(note, f"#status resolved\n{OLD}"))
    [closure] = _closure(desk.new_mail())
    assert OLD in text_of(closure["msg"])
    desk.receive(customer_reply_to(closure["msg"], frm=CUSTOMER, body=answer, name="Li Wei"))
    assert ticket(desk.app, tid).status == "open"
    desk.new_mail()
    return tid, note


def test_second_closure_and_kb_article_carry_the_answer_given_after_the_reopen(app):
    desk = Desk(app)
    tid, note = _rated_one(desk)

    desk.receive(reply_to(note, f"#kb website certificates\n{NEW}"))
    mails = desk.new_mail()
    [closure] = _closure(mails)
    body = text_of(closure["msg"])
    assert NEW in body
    assert OLD not in body, "the second closure repeated the solution the customer rated 1/5"
    with app.db.session() as s:
        [article] = s.execute(select(KbArticle)).scalars().all()
    assert article.solution == NEW
    assert ticket(app, tid).solution == NEW
    # each resolution keeps its own solution in the history
    assert [e.data["solution"] for e in events(app, tid, "closure_sent")] == [OLD, NEW]


@pytest.mark.parametrize("answer", ["1 - still broken\n", "It still returns 502 for me.\n"],
                         ids=["low score", "customer writes again"])
def test_closing_again_without_a_new_answer_does_not_resend_the_old_one(app, answer):
    desk = Desk(app)
    tid, note = _rated_one(desk, answer)

    desk.receive(reply_to(note, "#close"))
    [closure] = _closure(desk.new_mail())
    assert OLD not in text_of(closure["msg"])
    assert ticket(app, tid).solution == ""


def test_low_score_alert_still_shows_the_solution_that_was_rated(app):
    desk = Desk(app)
    tid, note = _open(desk)
    desk.receive(reply_to(note, f"#status resolved\n{OLD}"))
    [closure] = _closure(desk.new_mail())
    desk.receive(customer_reply_to(closure["msg"], frm=CUSTOMER, body="1\n", name="Li Wei"))
    alerts = [m for m in desk.new_mail() if "Low satisfaction" in (m["msg"]["Subject"] or "")]
    assert alerts  # one copy per engineer told (owner, manager), each with its own reply address
    for alert in alerts:
        assert OLD in text_of(alert["msg"])
