"""Reading bounces: failed recipients, status, and the outbox row behind our VERP sender."""

from __future__ import annotations

from pathlib import Path

import pytest

from parsers.bounces import parse_dsn, verp_outbox_id
from tests.conftest import CORPORA, needs_corpora



@pytest.mark.parametrize(
    "address, expected",
    [
        ("bounces+42@help.example.com", 42),
        ("<bounces+7@help.example.com>", 7),
        ("BOUNCES+123456@Help.Example.COM", 123456),
        ("bounces+42=customer.example@relay.example", 42),  # re-VERPed by a forwarder
        ("bounces@help.example.com", None),
        ("bounces+abc@help.example.com", None),
        ("xbounces+42@help.example.com", None),
        ("alice@customer.example", None),
        ("", None),
    ],
)
def test_verp_outbox_id(address, expected):
    assert verp_outbox_id(address) == expected


SENT = (
    b"Return-Path: <bounces+4711@help.example.com>\r\n"
    b"From: Support <support@help.example.com>\r\n"
    b"To: gone@customer.example\r\n"
    b"Subject: [#1234] Your ticket was received\r\n"
    b"Message-ID: <ticket-1234-ack@help.example.com>\r\n"
)


def rfc3464_bounce_of_our_mail() -> bytes:
    return (
        b"From: Mail Delivery System <MAILER-DAEMON@mx.customer.example>\r\n"
        b"To: bounces+4711@help.example.com\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\n"
        b"Auto-Submitted: auto-replied\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n"
        b"\r\n--B\r\nContent-Type: text/plain\r\n\r\n"
        b"I'm sorry to have to inform you that your message could not be delivered.\r\n"
        b"\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mx.customer.example\r\n"
        b"\r\n"
        b"Final-Recipient: rfc822; Gone@Customer.example\r\n"
        b"Original-Recipient: rfc822;gone@customer.example\r\n"
        b"Action: failed\r\n"
        b"Status: 5.1.1\r\n"
        b"Diagnostic-Code: smtp; 550 5.1.1 <gone@customer.example>: Recipient address\r\n"
        b"    rejected: User unknown in virtual mailbox table\r\n"
        b"\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\n" + SENT + b"\r\n--B--\r\n"
    )


def test_rfc3464_bounce_names_recipient_status_and_outbox():
    dsn = parse_dsn(rfc3464_bounce_of_our_mail())
    assert dsn is not None and dsn.standard
    assert dsn.recipients == ("gone@customer.example",)
    assert (dsn.status, dsn.action, dsn.permanent) == ("5.1.1", "failed", True)
    assert "User unknown" in dsn.diagnostic
    assert dsn.outbox_id == 4711
    assert dsn.original_sender == "bounces+4711@help.example.com"


def test_outbox_found_in_returned_headers_when_to_was_rewritten():
    raw = rfc3464_bounce_of_our_mail().replace(
        b"To: bounces+4711@help.example.com", b"To: helpdesk-bounces@help.example.com")
    assert parse_dsn(raw).outbox_id == 4711


def test_qmail_prose_bounce_quoting_our_headers():
    raw = (
        b"Return-Path: <>\n"
        b"From: MAILER-DAEMON@mail.customer.example\n"
        b"To: bounces+99@help.example.com\n"
        b"Subject: failure notice\n\n"
        b"Hi. This is the qmail-send program at mail.customer.example.\n"
        b"I'm afraid I wasn't able to deliver your message to the following addresses.\n"
        b"This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
        b"<gone@customer.example>:\n"
        b"Sorry, no mailbox here by that name. (#5.1.1)\n\n"
        b"--- Below this line is a copy of the message.\n\n" + SENT.replace(b"\r\n", b"\n")
        + b"\nHello\n"
    )
    dsn = parse_dsn(raw)
    assert dsn is not None and not dsn.standard
    assert dsn.recipients == ("gone@customer.example",)
    assert dsn.status == "5.1.1"
    assert dsn.outbox_id == 99


def test_exim_prose_bounce_uses_x_failed_recipients():
    raw = (
        b"From: Mail Delivery System <Mailer-Daemon@mx.customer.example>\n"
        b"To: bounces+5@help.example.com\n"
        b"Subject: Mail delivery failed: returning message to sender\n"
        b"X-Failed-Recipients: gone@customer.example\n\n"
        b"This message was created automatically by mail delivery software.\n\n"
        b"A message that you sent could not be delivered to one or more of its\n"
        b"recipients. This is a permanent error. The following address(es) failed:\n\n"
        b"  gone@customer.example\n"
        b"    SMTP error from remote mail server after RCPT TO:<gone@customer.example>:\n"
        b"    550 5.1.1 User unknown\n"
    )
    dsn = parse_dsn(raw)
    assert dsn.recipients == ("gone@customer.example",)
    assert dsn.status == "5.1.1" and dsn.outbox_id == 5
    assert "550" in dsn.diagnostic


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff garbage",
        b"From: alice@customer.example\nSubject: printer broken\n\nIt is on fire.\n",
    ],
)
def test_not_a_bounce_gives_none(raw):
    assert parse_dsn(raw) is None


# --- real bounces ------------------------------------------------------------------------

CORPUS_CASES = [
    # file, a failed recipient, status ("" = none given), RFC 3464?
    ("flufl-bounce/dsn_01.txt", "jimmymcegypt@go.com", "5.0.0", True),
    ("flufl-bounce/qmail_01.txt", "psadisc@wwwmail.n-h.de", "", False),
    ("flufl-bounce/exim_01.txt", "delangen@its.tudelft.nl", "5.1.1", False),
    ("flufl-bounce/postfix_01.txt", "xxxxx@local.ie", "5.1.1", False),
    ("flufl-bounce/sina_01.txt", "boboman76@sina.com", "", False),
    ("sisimai-set-of-emails/maildir/bsd/lhost-qmail-01.eml", "kijitora@example.ne.jp", "5.5.0", False),
    ("sisimai-set-of-emails/maildir/bsd/lhost-exim-01.eml", "kijitora@example.ed.jp", "5.7.0", False),
    ("sisimai-set-of-emails/maildir/bsd/lhost-postfix-01.eml", "kijitora@example.org", "5.1.1", True),
    ("flanker/bounce/gmail-invalid-address.eml", "awfawfawfawfawfaw@someserverhere.com", "5.1.0", False),
    ("enmime/dsn/multi_recipient_dsn.raw", "johnh@hpnjld.njd.hp.com", "5.0.0", True),
]


@needs_corpora
@pytest.mark.parametrize("rel, recipient, status, standard", CORPUS_CASES)
def test_corpus_bounce(rel, recipient, status, standard):
    dsn = parse_dsn((Path(CORPORA) / rel).read_bytes())
    assert dsn is not None
    assert recipient in dsn.recipients
    assert dsn.status == status
    assert dsn.standard is standard
    assert "postmaster@" not in " ".join(dsn.recipients)


@needs_corpora
def test_most_corpus_bounces_yield_a_recipient():
    root = Path(CORPORA)
    files = sorted(
        [*root.glob("sisimai-set-of-emails/maildir/bsd/lhost-*.eml"),
         *root.glob("sisimai-set-of-emails/maildir/bsd/rhost-*.eml"),
         *root.glob("sisimai-set-of-emails/maildir/bsd/rfc3464-*.eml"),
         *root.glob("flufl-bounce/*"), *root.glob("flanker/bounce/*"),
         *root.glob("enmime/dsn/*")])
    with_recipient = sum(1 for f in files if (d := parse_dsn(f.read_bytes())) and d.recipients)
    share = with_recipient / len(files)
    print(f"\nbounces with a failed recipient found: {with_recipient}/{len(files)} = {share:.3f}")
    assert share >= 0.95  # measured 0.963; the rest are SNS JSON, list-manager notices
