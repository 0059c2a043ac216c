"""Never loop: automatic mail goes through the whole pipeline, is stored on a ticket, and
triggers nothing automatic. Over the real corpora (not only the parser's verdict), plus
the per-correspondent rate limit, content repetition, our own address and X-Loop."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from storage.models import Event, Message, OutboxRow, SpoolEntry, Ticket
from tests.conftest import CORPORA, needs_corpora
from tests.hardening import SUPPORT, acks, count, events, push, push_many, rows, spool_outcomes_are_complete
from tests.mail import build
from tests.test_loops import (
    AUTOMATIC_GLOBS, NOT_AUTOMATIC_AFTER_ALL, NOT_ORDINARY, ORDINARY_GLOBS, corpus_files,
)

# Limits out of the way: these tests measure the automatic verdict, not the rate limits.
NO_LIMITS = {"rate_limit_per_hour": 100000, "repeat_limit_per_hour": 0}
# The corpora are years old: these tests are about robots, not age, so old mail is not filed
# as history here (tests/test_history_mail.py covers that).
ANY_AGE = {"history_age_days": 0}


def _ingest_files(app, files):
    raws = [(Path(CORPORA) / f).read_bytes() for f in files]
    for i in range(0, len(raws), 100):
        push_many(app, raws[i:i + 100])


@needs_corpora
def test_corpus_bounces_and_auto_replies_through_the_pipeline_queue_no_mail(make_app):
    app = make_app(outbound=NO_LIMITS, workflow=ANY_AGE)
    files = corpus_files(AUTOMATIC_GLOBS, NOT_AUTOMATIC_AFTER_ALL)
    assert len(files) > 900
    _ingest_files(app, files)

    queued = rows(app, OutboxRow)
    staff = app.engineer_addresses()
    to_outside = [r for r in queued if not set(r.envelope_to) <= staff]
    print(f"\nautomatic corpus mail: {len(files)} files, outbox rows queued: {len(queued)} "
          f"(internal notifications to engineers), to anyone else: {len(to_outside)}")
    assert acks(app) == []
    assert to_outside == []  # not one mail to a robot
    assert spool_outcomes_are_complete(app) == []
    with app.db.session() as s:
        stored = s.execute(select(Message.automatic, Message.kind).where(Message.direction == "in")).all()
        quarantined = s.execute(select(SpoolEntry.id).where(SpoolEntry.status == "quarantined")).all()
        suspended = s.execute(select(SpoolEntry.id).where(SpoolEntry.status == "suspended")).all()
    assert quarantined == []
    # None of it refers to mail we sent: robots go to the suspended area, kept with their
    # reasons (spool_outcomes_are_complete); what stays (list mail, a bounce known by its
    # subject alone) is stored as automatic mail on a ticket and never answered.
    print(f"suspended: {len(suspended)}, stored on tickets: {len(stored)}")
    # (byte-identical copies in the corpus are spool duplicates; ~1% stays, known by a subject alone)
    assert len(suspended) >= 0.97 * (len(suspended) + count(app, SpoolEntry, SpoolEntry.status == "processed"))
    assert len(suspended) > 850
    assert all(auto and kind == "automatic" for auto, kind in stored)
    assert count(app, Event, Event.kind == "auto_suppressed") >= len(stored)


@needs_corpora
def test_ordinary_corpus_mail_through_the_pipeline_is_acknowledged(make_app):
    # these mails were written to other people and reach us by the envelope alone: [spam]
    # quiet_unaddressed (tests/test_spam_blind_copy.py) would hold back a stranger's
    # acknowledgement; here the question is only whether ordinary mail is mistaken for a robot
    app = make_app(outbound=NO_LIMITS, workflow=ANY_AGE, spam={"quiet_unaddressed": False})
    files = corpus_files(ORDINARY_GLOBS, NOT_ORDINARY)
    assert len(files) > 100
    _ingest_files(app, files)

    assert spool_outcomes_are_complete(app) == []
    with app.db.session() as s:
        entries = list(s.execute(select(SpoolEntry).order_by(SpoolEntry.id)).scalars())
        missing = []
        for e in entries:
            msg = s.execute(select(Message).where(Message.spool_id == e.id)).scalar_one_or_none()
            if msg is None:
                continue  # a duplicate of an earlier file (same Message-ID and sender)
            assert not msg.automatic, (e.id, msg.subject)
            created = s.execute(select(Event.id).where(Event.ticket_id == msg.ticket_id,
                                                       Event.kind == "created")).first()
            first = s.execute(select(Message.id).where(Message.ticket_id == msg.ticket_id)
                              .order_by(Message.id)).first()[0] == msg.id
            if created and first and msg.sender_email:
                n = s.execute(select(OutboxRow.id).where(OutboxRow.source_spool_id == e.id,
                                                         OutboxRow.kind == "acknowledgement")).all()
                if len(n) != 1:
                    missing.append((e.id, msg.sender_email, msg.subject))
    n_acks = len(acks(app))
    print(f"\nordinary corpus mail: {len(files)} files, acknowledgements queued: {n_acks}")
    assert missing == []
    assert n_acks >= 0.9 * len(files) * 0.5 and n_acks > 50


def test_rate_limit_per_correspondent(make_app, clock):
    app = make_app(clock=clock, outbound={"rate_limit_per_hour": 3})
    for i in range(5):
        push(app, build(subject=f"Question {i}", body=f"Different question number {'abcde'[i]}\n"))
        clock.advance(minutes=5)
    assert len(acks(app)) == 3
    limited = [e for e in events(app, "auto_suppressed") if "rate limit" in e.detail]
    assert len(limited) == 2
    # another correspondent is not affected
    push(app, build(frm="bob@customer.example.com", subject="Mine", body="Mine\n"))
    assert len(acks(app)) == 4
    # an hour after the first acknowledgement, alice gets one again
    clock.advance(minutes=40)
    push(app, build(subject="Later question", body="Something new\n"))
    assert len(acks(app)) == 5
    assert count(app, Message) == 7  # every mail stored


def test_content_repetition_is_a_loop_even_without_automatic_headers(make_app, clock):
    # A robot that opens "a new ticket" for each of our mails and confirms it, with a
    # counter and a time in the text, and no Auto-Submitted header at all.
    app = make_app(clock=clock, outbound={"rate_limit_per_hour": 100, "repeat_limit_per_hour": 3})
    robot = "helpdesk@partner.example.org"
    for i in range(6):
        push(app, build(frm=robot, name="Partner Helpdesk", subject=f"Re: [PT-{4711 + i}] Ticket #{4711 + i} received",
                        body=f"Your request #{4711 + i} was received at 10:{30 + i}. We will answer soon.\n"))
        clock.advance(minutes=2)
    assert len(acks(app)) == 3  # the 4th identical mail within the hour is a loop
    reasons = [e.detail for e in events(app, "auto_suppressed")]
    assert len(reasons) == 3 and all("content repetition" in r for r in reasons)
    assert count(app, Message, Message.sender_email == robot) == 6

    # the same sender writing something else is a person again
    push(app, build(frm=robot, subject="Invoice question", body="Could you resend the March invoice?\n"))
    assert len(acks(app)) == 4
    # and an hour later the window has passed
    clock.advance(hours=1, minutes=1)
    push(app, build(frm=robot, subject="Re: Ticket #9999 received",
                    body="Your request #9999 was received at 11:45. We will answer soon.\n"))
    assert len(acks(app)) == 5


def test_a_robots_per_mail_tracking_links_do_not_hide_the_repetition(make_app, clock):
    app = make_app(clock=clock, outbound={"rate_limit_per_hour": 100, "repeat_limit_per_hour": 3})
    robot = "notify@tracker.example.org"
    for token in ("a7Fq2", "Zk9pL", "mQ3xT", "Wb8Rn", "hY5cV"):
        push(app, build(frm=robot, subject="Your request was received",
                        body=f"Track it at https://tracker.example.org/t/{token}?s=mail-{token}\n"))
        clock.advance(minutes=2)
    assert len(acks(app)) == 3
    assert len(events(app, "auto_suppressed")) == 2


def test_our_own_address_as_sender_gets_no_answer(app):
    push(app, build(frm=SUPPORT, name="Example Support", subject="Looks like a customer", body="hello\n"))
    push(app, build(frm="support+t1xabcdefghijklmnop@support.example.test", subject="plus form", body="x\n"))
    push(app, build(frm="bounces+12@support.example.test", subject="bounce address", body="y\n"))
    assert acks(app) == []
    # our own mail coming back refers to no ticket: a loop, kept in the suspended area
    assert [e.reason for e in rows(app, SpoolEntry)] == ["loop"] * 3
    assert count(app, Message) == 0


def test_x_loop_with_our_address_gets_no_answer(app):
    push(app, build(subject="Ticket received", headers={"X-Loop": SUPPORT}))
    push(app, build(frm="bob@customer.example.com", subject="Other loop", headers={"X-Loop": "helpdesk@else.example"}))
    [ack] = acks(app)
    assert ack.to == ["bob@customer.example.com"]  # someone else's X-Loop is not ours
    [looped] = rows(app, SpoolEntry, SpoolEntry.status == "suspended")
    assert looped.reason == "loop" and "header:X-Loop" in looped.verdict["reasons"]
    assert count(app, Message) == 1


@pytest.mark.parametrize("headers, sender", [
    ({"Auto-Submitted": "auto-replied"}, "alice@customer.example.com"),
    ({"Precedence": "bulk"}, "alice@customer.example.com"),
    ({"List-Id": "<users.lists.example.org>"}, "alice@customer.example.com"),
    ({"X-Auto-Response-Suppress": "All"}, "alice@customer.example.com"),
    ({"X-Autoreply": "yes"}, "alice@customer.example.com"),
    ({}, "MAILER-DAEMON@mx.example.net"),
    ({}, "postmaster@customer.example.com"),
])
def test_each_kind_of_automatic_mail_referring_to_no_ticket_is_suspended_not_answered(app, headers, sender):
    push(app, build(frm=sender, name="", subject="Automatic reply: Printer", headers=headers))
    assert acks(app) == [] and rows(app, Message) == []
    [e] = rows(app, SpoolEntry)
    assert e.status == "suspended" and e.verdict["reasons"]


@pytest.mark.parametrize("headers", [
    {"Auto-Submitted": "auto-replied"}, {"Precedence": "bulk"}, {"X-Auto-Response-Suppress": "All"},
    {"X-Autoreply": "yes"},
])
def test_each_kind_of_automatic_mail_on_a_ticket_is_stored_there_but_not_answered(app, headers):
    push(app, build(subject="Printer on fire"))
    [ack] = acks(app)
    push(app, build(subject="Automatic reply: Printer on fire", headers=headers, in_reply_to=f"<{ack.message_id}>"))
    assert len(acks(app)) == 1
    msgs = rows(app, Message)
    assert len(msgs) == 2 and msgs[1].automatic and msgs[1].kind == "automatic"


@pytest.mark.parametrize("headers", [{"Precedence": "bulk"}, {"List-Id": "<users.lists.example.org>"},
                                     {"Auto-Submitted": "auto-generated"}])
def test_list_and_system_mail_is_a_ticket_but_never_answered(app, headers):
    # a person may be behind a list or a customer's monitoring system: not suspended, not answered
    push(app, build(subject="Disk full on db-3", headers=headers))
    assert acks(app) == [] and len(rows(app, Ticket)) == 1
    assert rows(app, Message)[0].automatic


def test_null_sender_gets_no_answer(app):
    raw = build(subject="No sender").replace(b"From: Alice Customer <alice@customer.example.com>\r\n", b"")
    push(app, raw, envelope_from="")
    assert acks(app) == []
    # kept, but for a person to look at: a ticket with nobody to answer helps no one (issue 18)
    assert count(app, Message) == 0
    assert [e.error.split(":")[0] for e in rows(app, SpoolEntry)] == ["no usable sender"]
