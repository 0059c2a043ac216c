"""Bounces of our own mail: a DSN back to our VERP address marks the outbox row bounced,
lands on the ticket as automatic mail, and tells the engineer; it is never answered.
Also the owner notice when the relay refuses a row for good (dispatch.on_failed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway import outbox
from gateway.outbox import message_bytes
from gateway.runtime.transports import PermanentFailure, TemporaryFailure
from storage.models import Message, OutboxAttempt, OutboxRow, SpoolEntry, Ticket
from templates import Rendered
from tests.conftest import corpus
from tests.hardening import (
    SUPPORT, CaptureTransport, acks, build_dsn, count, dispatch, events, push, rows,
)
from tests.mail import build, parse

CUSTOMER = "ops@bigbank.example"  # bigbank's core-banking project: alice is the primary
OWNER = "alice@support.example.com"


def _ticket_with_sent_ack(app, transport=None):
    push(app, build(frm=CUSTOMER, name="Ops Team", subject="Core banking batch failed"))
    transport = transport or CaptureTransport()
    dispatch(app, transport)
    [ack] = acks(app)
    assert ack.status == "sent"
    [sent] = [m for m in transport.sent if m["from"] == f"bounces+{ack.id}@support.example.test"]
    assert ack.message_id in parse(sent["raw"])["Message-ID"]
    return ack, sent


def _notices(app, kind="bounce_notice"):
    return rows(app, OutboxRow, OutboxRow.kind == kind)


def test_dsn_to_verp_address_marks_row_bounced_and_tells_the_owner(app):
    ack, sent = _ticket_with_sent_ack(app)
    assert sent["from"] == f"bounces+{ack.id}@support.example.test"
    dsn = build_dsn(sent["from"], CUSTOMER, original=sent["raw"])

    outcome = push(app, dsn, to=(sent["from"],))
    assert outcome["bounced"] == 1

    [row] = rows(app, OutboxRow, OutboxRow.id == ack.id)
    assert row.status == "bounced"
    assert "5.1.1" in row.last_error and "User unknown" in row.last_error
    attempts = rows(app, OutboxAttempt, OutboxAttempt.outbox_id == ack.id)
    assert [a.ok for a in attempts] == [True, False]  # the send, then the report
    assert not attempts[-1].temporary and "5.1.1" in attempts[-1].detail

    [ticket] = rows(app, Ticket)
    stored = rows(app, Message, Message.ticket_id == ticket.id)
    assert [m.kind for m in stored] == ["customer", "automatic"]
    assert stored[1].automatic and stored[1].sender_email.startswith("mailer-daemon@")
    [ev] = events(app, "bounced")
    assert ev.data["status"] == "5.1.1" and ev.data["outbox_id"] == ack.id

    # the report is never answered; the engineer is told, in the ticket's thread
    assert len(acks(app)) == 1
    [notice] = _notices(app)
    assert notice.to == [OWNER] and notice.automatic
    out = dispatch(app)
    [mail] = [parse(m["raw"]) for m in out.sent if m["from"] == f"bounces+{notice.id}@support.example.test"]
    assert ticket.ref in mail["Subject"] and CUSTOMER in mail["Subject"]
    body = mail.get_body(("plain",)).get_content()
    assert "5.1.1" in body and "User unknown" in body and "Core banking batch failed" in body
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["Reply-To"].startswith("support+t")  # the engineer can answer onto the ticket


def test_relay_bounce_is_matched_by_returned_message_id_alone(app):
    # An engineer's answer (relayed to the customer) bounces; the report reaches the
    # plain support address, but quotes the headers of our mail.
    push(app, build(frm=CUSTOMER, subject="Interest calculation wrong"))
    [ticket] = rows(app, Ticket)
    with app.db.session() as s:
        t = s.get(Ticket, ticket.id)
        relay_mid = outbox.queue(app, s, kind="relay", ticket=t, to=[CUSTOMER], reply_to_for=CUSTOMER,
                                 rendered=Rendered("Re: Interest calculation wrong", "Fixed in 4.2.\n", ""))
        relay_id = s.scalar(select(OutboxRow.id).where(OutboxRow.message_id == relay_mid))
    out = dispatch(app)
    raw = next(m["raw"] for m in out.sent if f"bounces+{relay_id}@".encode() in m["from"].encode())
    dsn = build_dsn(SUPPORT, "someone-else@bigbank.example", original=raw, to_header=SUPPORT)

    assert push(app, dsn, to=(SUPPORT,))["bounced"] == 1
    [row] = rows(app, OutboxRow, OutboxRow.id == relay_id)
    assert row.status == "bounced"
    assert len(_notices(app)) == 1


def test_delayed_report_is_stored_but_changes_nothing(app):
    ack, sent = _ticket_with_sent_ack(app)
    dsn = build_dsn(sent["from"], CUSTOMER, original=sent["raw"], status="4.4.1", action="delayed",
                    diagnostic="smtp; 451 4.4.1 mailbox temporarily unavailable")
    assert push(app, dsn, to=(sent["from"],))["delivery_delayed"] == 1
    [row] = rows(app, OutboxRow, OutboxRow.id == ack.id)
    assert row.status == "sent"
    assert rows(app, OutboxAttempt, OutboxAttempt.outbox_id == ack.id)[-1].temporary
    assert len(events(app, "delivery_delayed")) == 1
    assert _notices(app) == [] and len(acks(app)) == 1


def test_report_without_proof_does_not_touch_the_row(app):
    # bounces+<id> is a guessable number: a "report" that neither quotes our Message-ID
    # nor names a recipient of that row proves nothing about it.
    ack, sent = _ticket_with_sent_ack(app)
    forged = build_dsn(sent["from"], "victim@elsewhere.example")
    push(app, forged, to=(sent["from"],))
    [row] = rows(app, OutboxRow, OutboxRow.id == ack.id)
    assert row.status == "sent"
    assert _notices(app) == []
    assert len(acks(app)) == 1  # kept in the suspended area (it refers to no ticket), never answered
    assert count(app, Message, Message.automatic.is_(True)) == 0
    assert [e.reason for e in rows(app, SpoolEntry, SpoolEntry.status == "suspended")] == ["bounce"]


def test_bounce_of_the_bounce_notice_tells_nobody(app):
    ack, sent = _ticket_with_sent_ack(app)
    push(app, build_dsn(sent["from"], CUSTOMER, original=sent["raw"]), to=(sent["from"],))
    out = dispatch(app)
    [notice] = _notices(app)
    [notice_mail] = [m for m in out.sent if m["from"] == f"bounces+{notice.id}@support.example.test"]
    again = build_dsn(notice_mail["from"], OWNER, original=notice_mail["raw"])
    assert push(app, again, to=(notice_mail["from"],))["bounced"] == 1
    [notice] = _notices(app)
    assert notice.status == "bounced"
    assert len(_notices(app)) == 1 and _notices(app, "delivery_failed") == []


def test_relay_refusing_for_good_tells_the_owner_once(app):
    push(app, build(frm=CUSTOMER, subject="Statement export broken"))
    t = CaptureTransport()
    t.fail_with = PermanentFailure("550 5.1.1 <ops@bigbank.example>: mailbox unavailable")
    dispatch(app, t)
    [ack] = acks(app)
    assert ack.status == "failed"
    [notice] = _notices(app, "delivery_failed")
    assert notice.to == [OWNER]
    assert "mailbox unavailable" in parse(message_bytes(notice)).get_body(("plain",)).get_content()
    about_ack = [e for e in events(app, "delivery_failed") if e.data.get("outbox_id") == ack.id]
    assert len(about_ack) == 2  # the failure, then "told alice"
    # the notice itself cannot be delivered either: no notice about the notice
    dispatch(app, t)
    assert rows(app, OutboxRow, OutboxRow.id == notice.id)[0].status == "failed"
    assert len(_notices(app, "delivery_failed")) == 1
    t.fail_with = None
    assert dispatch(app, t).sent == []


def test_temporary_failures_until_max_attempts_then_owner_told(make_app, clock):
    app = make_app(clock=clock, outbound={"max_attempts": 3, "backoff_base": 60})
    push(app, build(frm=CUSTOMER, subject="Slow reports"))
    t = CaptureTransport()
    t.fail_with = TemporaryFailure("451 4.3.0 relay busy")
    for _ in range(3):
        dispatch(app, t)
        clock.advance(hours=1)
    [ack] = acks(app)
    assert ack.status == "failed" and ack.attempts == 3
    assert len(_notices(app, "delivery_failed")) == 1


# --- real bounces, rewritten to come back to our VERP address ------------------------

CORPUS_DSNS = [
    # file, the failed recipient it names, the status it gives
    ("flufl-bounce/dsn_01.txt", "jimmymcegypt@go.com", "5.0.0"),
    ("flufl-bounce/postfix_01.txt", "xxxxx@local.ie", "5.1.1"),
    ("flufl-bounce/exim_01.txt", "delangen@its.tudelft.nl", "5.1.1"),
    ("flufl-bounce/qmail_01.txt", "psadisc@wwwmail.n-h.de", ""),
    ("sisimai-set-of-emails/maildir/bsd/lhost-postfix-01.eml", "kijitora@example.org", "5.1.1"),
    ("enmime/dsn/multi_recipient_dsn.raw", "johnh@hpnjld.njd.hp.com", "5.0.0"),
]


@pytest.mark.parametrize("rel, failed, status", CORPUS_DSNS)
def test_real_bounce_rewritten_to_our_verp_address(app, rel, failed, status):
    raw = Path(corpus(rel)).read_bytes()
    ack, sent = _ticket_with_sent_ack(app)
    rewritten = re.sub(re.escape(failed).encode(), CUSTOMER.encode(), raw, flags=re.I)
    outcome = push(app, rewritten, to=(sent["from"],))
    assert outcome["bounced"] == 1, outcome
    [row] = rows(app, OutboxRow, OutboxRow.id == ack.id)
    assert row.status == "bounced"
    assert status in row.last_error
    assert len(_notices(app)) == 1 and len(acks(app)) == 1
