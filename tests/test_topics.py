"""A new question inside an old thread: the engineer is told and offered #split; with
workflow.auto_split_new_topic a resolved ticket gets a new linked ticket instead of a reopen."""

from __future__ import annotations

import pytest

from parsers.topics import new_topic
from tests import closure_kit as ck
from tests.engineer_mail import ALICE, Desk, latest_ticket_id, reply_to, ticket
from tests.mail import body_text, build

THREAD = ("Core banking batch job fails", "The nightly batch job of the core banking system fails with "
          "error 0x80 since Monday; the scheduler log shows a timeout.")
NEW_QUESTION = ("By the way, how do I export last month's invoices to CSV? Our accountant needs them "
                "by Friday for the audit.")


@pytest.mark.parametrize("subject, text, expected", [
    ("Re: Core banking batch job fails", "Any update? It still happens.", ""),  # short: never a new topic
    ("Re: [TS-000001] We received your request: Core banking batch job fails",
     "The batch failed again tonight with the same timeout in the scheduler log. What else can we check?", ""),
    ("Re: Core banking batch job fails", NEW_QUESTION, "unrelated"),
    ("Invoice export to CSV", "Thanks for fixing it. One more thing for you.", "subject"),
    ("回复：Core banking batch job fails", "另外想问一下，如何把上个月的发票导出成表格？财务周五之前要用。", "unrelated"),
    ("Re: Core banking batch job fails", "We exported invoices to CSV last week, everything fine there.", ""),
])
def test_new_topic_verdicts(subject, text, expected):
    assert new_topic(subject, text, *THREAD) == expected


def test_the_notification_says_it_is_a_new_question_and_split_makes_it_one(make_app, clock):
    desk = Desk(make_app(clock=clock))
    desk.customer_writes(subject=THREAD[0], body=THREAD[1])
    [ack] = [m["msg"] for m in desk.new_mail() if m["to"] == [ck.CUSTOMER] or "li.wei" in m["to"][0]]
    desk.receive(build(frm=ack["To"], to=ack["Reply-To"], subject="Re: " + ack["Subject"], body=NEW_QUESTION,
                       in_reply_to=ack["Message-ID"], name="Li Wei"),
                 rcpts=[ack["Reply-To"].split("<")[-1].rstrip(">")])
    [note] = [m["msg"] for m in desk.new_mail() if m["to"] == [ALICE]]
    text = body_text(note)
    assert "This looks like a NEW QUESTION" in text and "Reply #split" in text
    desk.receive(reply_to(note, "#split", frm=ALICE))
    new = ticket(desk.app, latest_ticket_id(desk.app))
    assert new.linked_ticket_id == 1 and new.id == 2


def _resolved(app):
    tid = ck.open_ticket(app)
    ck.flush(app)
    ck.resolve(app, tid)
    [closure_mail] = ck.to_customer(ck.flush(app))
    return tid, closure_mail["msg"]


def test_auto_split_new_topic_opens_a_linked_ticket_instead_of_reopening(make_app, clock):
    app = make_app(clock=clock, workflow={"auto_split_new_topic": True})
    tid, closure_mail = _resolved(app)
    counts = ck.deliver(app, ck.reply_to(closure_mail, body=NEW_QUESTION + "\n"))
    assert counts["created"] == 1, counts
    old, new = ck.tickets(app)
    assert old.status == "resolved" and new.linked_ticket_id == tid
    assert ck.events(app, tid, "new_topic")[0].data["into"] == new.ref
    # the same matter still reopens
    counts = ck.deliver(app, ck.reply_to(closure_mail, body="The batch job fails again tonight with the "
                                                            "same timeout. Can you look again?\n"))
    assert counts["threaded"] == 1 and ck.ticket(app, tid).status == "open"


def test_without_auto_split_a_new_question_reopens_as_before(make_app, clock):
    app = make_app(clock=clock)
    tid, closure_mail = _resolved(app)
    ck.deliver(app, ck.reply_to(closure_mail, body=NEW_QUESTION + "\n"))
    assert len(ck.tickets(app)) == 1 and ck.ticket(app, tid).status == "open"


def test_benchmark_figure_on_the_generated_corpus():
    from bench.new_topic import figures, generated

    cases = generated(300)
    said = [(bool(new_topic(*args)), truth) for args, truth in cases]
    assert not [1 for s, t in said if s and not t]  # no plain follow-up of the corpus is called new
    assert sum(s == t for s, t in said) / len(said) >= 0.95, figures(cases, new_topic)
