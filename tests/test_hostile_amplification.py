"""Hostile input, amplification: one inbound mail must never make us mail many people.

A mail naming thousands of CCs used to make each of them a participant, and every
answer and the closure then went to all of them (issue 19)."""

from __future__ import annotations

from sqlalchemy import select

from gateway.desk.inbound import within_participant_cap
from storage.models import Participant
from tests.engineer_mail import CUSTOMER, Desk, events, open_ticket, reply_to
from tests.mail import body_text

MANY = 2000  # the attack used 10,000; the cap's effect is the same and the test stays quick


def _ccs(n: int, start: int = 0) -> str:
    return ", ".join(f"victim{i}@target{i % 7}.example.net" for i in range(start, start + n))


def _participants(app, tid):
    with app.db.session() as s:
        return list(s.execute(select(Participant).where(Participant.ticket_id == tid,
                                                        Participant.role.in_(("requester", "cc")))).scalars())


def test_a_mail_with_thousands_of_ccs_makes_at_most_the_cap_of_participants_and_recipients(make_app, clock):
    desk = Desk(make_app(clock=clock))
    cap = desk.app.config.workflow.max_customer_participants
    assert cap == 20
    tid, note = open_ticket(desk, cc=_ccs(MANY), subject="Website returns 502",
                            body="Hello,\nour website returns 502 since 9:00.\n")
    people = _participants(desk.app, tid)
    assert len(people) == cap and sum(p.role == "requester" for p in people) == 1
    [capped] = events(desk.app, tid, "cc_capped")
    assert capped.data["count"] == MANY - (cap - 1) and capped.data["cap"] == cap
    # the owner is told, in the notification they got
    assert f"{MANY - (cap - 1)} more CC address(es)" in " ".join(body_text(note).split())

    desk.receive(reply_to(note, "Please restart nginx.\n"))
    desk.receive(reply_to(note, "#status resolved\nFixed by restarting nginx.\n"))
    sent = desk.new_mail()
    to_customer = [m for m in sent if CUSTOMER in m["to"]]
    assert len(to_customer) >= 2  # the answer and the closure
    assert max(len(m["to"]) for m in sent) <= cap
    allowed = {p.email for p in people}
    assert all(set(m["to"]) <= allowed for m in to_customer)  # nobody left out got anything


def test_a_follow_up_with_more_ccs_adds_none_past_the_cap(make_app, clock):
    desk = Desk(make_app(clock=clock, workflow={"max_customer_participants": 5}))
    tid, note = open_ticket(desk, cc=_ccs(3), subject="Website returns 502", body="Hello,\nit is down.\n")
    assert len(_participants(desk.app, tid)) == 4
    desk.receive(reply_to(note, "Looking.\n"))
    [answer] = [m for m in desk.new_mail() if CUSTOMER in m["to"]]
    desk.customer_writes(subject="Re: " + answer["msg"]["Subject"], cc=_ccs(40, start=100),
                         in_reply_to=answer["msg"]["Message-ID"], references=answer["msg"]["Message-ID"],
                         body="Still down. Adding my whole company.\n")
    assert len(_participants(desk.app, tid)) == 5
    [capped] = events(desk.app, tid, "cc_capped")
    assert capped.data["count"] == 39 and capped.data["addresses"][0] == "victim101@target3.example.net"


def test_within_participant_cap_keeps_the_first_named_and_counts_duplicates_once():
    names = [("a@x.example", "A"), ("b@x.example", ""), ("a@x.example", "again"), ("c@x.example", "")]
    assert within_participant_cap(3, 1, names) == ([("a@x.example", "A"), ("b@x.example", "")],
                                                   [("c@x.example", "")])
    assert within_participant_cap(3, 5, names)[0] == []


def test_the_outbound_cap_cuts_outside_recipients_never_our_own_people(make_app):
    from gateway.outbox import capped_recipients

    managers = [f"manager{i}@support.example.com" for i in range(25)]
    app = make_app(workflow={"max_customer_participants": 3}, report={"recipients": managers})
    with app.db.session() as s:
        assert capped_recipients(app, s, None, "weekly_report", managers, []) == (managers, [])
        outside = [f"x{i}@customer.example.com" for i in range(10)]
        assert capped_recipients(app, s, None, "relay", outside[:1], outside[1:] + managers[:1]) == (
            outside[:1], outside[1:3] + managers[:1])


def test_the_parse_remembers_short_address_headers_only():
    """parsers.message remembers what an address header's text reads as (a mailbox's To and
    Cc come back mail after mail), but never a huge one: 10,000-address Cc mails, each
    different, must not pile up in memory."""
    from parsers import message

    message.clear_caches()
    huge = ", ".join(f"user{i}@bulk{n}.example" for i in range(10_000) for n in [0])
    for n in range(3):
        raw = (f"From: a@customer.example\r\nTo: support@support.example.test\r\nCc: {huge}, x{n}@x.example\r\n"
               f"Subject: hi {n}\r\nMessage-ID: <h{n}@customer.example>\r\n\r\nhello\r\n").encode()
        assert len(message.parse_email(raw).cc) == 10_001
    remembered = message._read_addresses.cache_info().currsize
    assert remembered == 2  # one From and one To for all three, never a Cc
    message.parse_email(b"From: a@customer.example\r\nTo: support@support.example.test\r\n\r\nhi\r\n")
    assert message._read_addresses.cache_info().hits >= 2  # the same From and To, read once
