"""Survey answers by mail, through the pipeline: every accepted form, the odd ones,
who may answer, and what a low score does."""

from __future__ import annotations

import pytest

from tests.closure_kit import (
    ALICE, BOB, CAROL, CUSTOMER, OTHER_CUSTOMER, deliver, events, flush, open_ticket, outbox_rows, reply_to,
    resolve, responses, text_of, ticket, tickets, to_customer,
)


def _closed_ticket(app, **kw):
    tid = open_ticket(app, **kw)
    flush(app)
    resolve(app, tid)
    [closure_mail] = to_customer(flush(app), kw.get("frm", CUSTOMER))
    return tid, closure_mail["msg"]


QUOTED = (
    "4 - fixed, thanks\n\n"
    "On Mon, 2 Mar 2026 at 10:00, Example Support <support@support.example.test> wrote:\n"
    "> How satisfied are you with our help? Reply to this email with a number from\n"
    "> 1 (very dissatisfied) to 5 (very satisfied)\n"
)


@pytest.mark.parametrize("body, score, comment", [
    ("5\n", 5, ""),
    ("5 - great\n", 5, "great"),
    ("4/5 quick answer\n", 4, "quick answer"),
    ("Score: 3\n", 3, ""),
    ("five\n", 5, ""),
    ("★★★★\n", 4, ""),
    ("Hi,\n\n3 - took a while\nbut it works now\n", 3, "took a while\nbut it works now"),
    ("非常满意\n", 5, ""),
    ("满意，谢谢\n", 4, "谢谢"),
    ("５分\n", 5, ""),
    (QUOTED, 4, "fixed, thanks"),
])
def test_score_forms_are_stored(app, body, score, comment):
    tid, closure_mail = _closed_ticket(app)
    counts = deliver(app, reply_to(closure_mail, body=body))
    assert counts["survey"] == 1, counts
    [r] = responses(app)
    assert (r.ticket_id, r.score, r.comment) == (tid, score, comment)
    assert ALICE in r.engineers  # the owner, from the routing (bigbank core-banking primary)
    assert ticket(app, tid).status == ("open" if score <= 2 else "resolved")
    ev = events(app, tid, "survey")[-1]
    assert ev.data["score"] == score and ev.actor == CUSTOMER


def test_html_only_reply_is_read(app):
    tid, closure_mail = _closed_ticket(app)
    html = ('<html><body><div>5 - excellent service</div><div class="gmail_quote">On Mon, 2 Mar 2026 Example '
            'Support wrote:<blockquote type="cite">Reply with a number from 1 to 5</blockquote></div></body></html>')
    deliver(app, reply_to(closure_mail, html=html))
    [r] = responses(app)
    assert (r.score, r.comment) == (5, "excellent service")


def test_thanks_mail_goes_back_to_the_customer(app):
    tid, closure_mail = _closed_ticket(app)
    deliver(app, reply_to(closure_mail, body="5 - great\n"))
    [thanks] = to_customer(flush(app))
    assert thanks["to"] == [CUSTOMER]
    assert "5 out of 5" in text_of(thanks["msg"])
    assert thanks["msg"]["Auto-Submitted"] == "auto-replied"


def test_second_answer_replaces_the_first(app):
    tid, closure_mail = _closed_ticket(app)
    deliver(app, reply_to(closure_mail, body="3\n"))
    deliver(app, reply_to(closure_mail, body="4 - actually fine\n"))
    [r] = responses(app)
    assert r.score == 4
    assert len(events(app, tid, "survey")) == 2


def test_cc_participant_may_answer(app):
    tid, closure_mail = _closed_ticket(app, cc="boss@bigbank.example")
    deliver(app, reply_to(closure_mail, frm="boss@bigbank.example", name="Boss", body="5\n"))
    [r] = responses(app)
    assert r.score == 5


def test_stranger_cannot_answer_someone_elses_survey(app):
    tid, closure_mail = _closed_ticket(app)
    deliver(app, reply_to(closure_mail, frm=OTHER_CUSTOMER, name="Li", body="1 - terrible\n"))
    assert responses(app) == []
    assert ticket(app, tid).status == "resolved"  # a forged low score reopens nothing


def test_score_on_an_open_ticket_is_an_ordinary_reply(app):
    open_ticket(app)
    [ack] = to_customer(flush(app))
    deliver(app, reply_to(ack["msg"], body="5 servers are down now\n"))
    assert responses(app) == []
    assert len(tickets(app)) == 1


def test_automatic_reply_is_not_an_answer(app):
    tid, closure_mail = _closed_ticket(app)
    raw = reply_to(closure_mail, body="5\n")
    raw = raw.replace(b"Subject:", b"Auto-Submitted: auto-replied\r\nSubject:", 1)
    deliver(app, raw)
    assert responses(app) == []


def test_low_score_reopens_for_owner_and_alerts_manager(app):
    tid, closure_mail = _closed_ticket(app)
    with app.db.session() as s:  # the secondary handled it last (a handover)
        from storage.models import Ticket

        s.get(Ticket, tid).handler = BOB
    counts = deliver(app, reply_to(closure_mail, body="1 - still broken, nobody called back\n"))
    assert counts["survey"] == 1
    t = ticket(app, tid)
    assert t.status == "open" and t.resolved_at is None
    assert t.handler == ALICE  # back to the owner
    assert events(app, tid, "reopened")
    [r] = responses(app)
    assert r.score == 1 and set(r.engineers) >= {ALICE, BOB}

    mails = flush(app)
    # one copy each (same To and Cc), so each can answer with their own signed reply address
    alerts = [m for m in mails if "Low satisfaction" in m["msg"]["Subject"]]
    assert sorted(a["to"][0] for a in alerts) == sorted([ALICE, CAROL])
    for alert in alerts:
        assert alert["msg"]["To"] == ALICE
        assert alert["msg"]["Cc"] == CAROL  # the project's manager from the rules
        assert "still broken, nobody called back" in text_of(alert["msg"])
    [thanks] = [m for m in mails if m["to"] == [CUSTOMER]]
    assert "reopened" in text_of(thanks["msg"])


def test_low_score_without_project_alerts_all_managers(app):
    tid, closure_mail = _closed_ticket(app, frm="someone@unknown.example", name="Someone")
    deliver(app, reply_to(closure_mail, frm="someone@unknown.example", name="Someone", body="2\n"))
    assert ticket(app, tid).status == "open"
    rows = outbox_rows(app, "low_score_alert")
    assert rows and all(CAROL in row.to + row.cc for row in rows)  # carol is the only manager=true engineer in the sample rules


def test_score_in_chinese_low(app):
    tid, closure_mail = _closed_ticket(app)
    deliver(app, reply_to(closure_mail, body="非常不满意，问题还在\n"))
    [r] = responses(app)
    assert (r.score, r.comment) == (1, "问题还在")
    assert ticket(app, tid).status == "open"
