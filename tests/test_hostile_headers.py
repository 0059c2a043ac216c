"""Hostile input, header amplification: what we copy from an inbound mail into the
headers of the mail we send is bounded and folded; no line we send exceeds RFC 5322's
998 characters (issue 19: a 2 MB Subject once went out as 25 MB of over-long lines)."""

from __future__ import annotations

import pytest

from gateway.compose import SUBJECT_MAX, TICKET_SUBJECT_MAX
from storage.models import Ticket
from tests.dates import sent_now
from tests.hardening import dispatch, push, rows
from tests.mail import parse

BIG = 2 * 1024 * 1024
SUBJECTS = {
    "words": ("Printer on fire " * (BIG // 16)).strip(),
    "one-word": "A" * BIG,
    "chinese": "打印机着火了" * (BIG // 18),
}


def _raw(subject: str) -> bytes:
    encoded = subject if subject.isascii() else "=?utf-8?b?" + __import__("base64").b64encode(
        subject.encode()).decode() + "?="
    return (f"From: Alice Customer <alice@customer.example.com>\r\nTo: support@support.example.test\r\n"
            f"Subject: {encoded}\r\nMessage-ID: <big-subject-{len(subject)}@customer.example.com>\r\n"
            f"Date: {sent_now()}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            f"Hello,\r\nthe printer is on fire.\r\n").encode()


@pytest.mark.parametrize("kind", SUBJECTS)
def test_a_two_megabyte_subject_goes_out_bounded_and_folded(app, kind):
    subject = SUBJECTS[kind]
    push(app, _raw(subject))
    [ticket] = rows(app, Ticket)
    assert len(ticket.subject) <= TICKET_SUBJECT_MAX and ticket.subject.endswith("…")
    assert subject.startswith(ticket.subject[:-1])
    sent = dispatch(app).sent
    assert len(sent) >= 2  # the acknowledgement and the owner's notification
    for mail in sent:
        raw = mail["raw"]
        assert len(raw) < 64 * 1024, f"{len(raw)} bytes out for one mail"
        longest = max(len(line) for line in raw.split(b"\r\n"))
        assert longest <= 998, f"a line of {longest} characters"
        msg = parse(raw)
        for name in ("Subject", "Thread-Topic"):
            value = " ".join(str(msg[name]).split())
            assert len(value) <= SUBJECT_MAX and value.endswith("…"), (name, value[:80])


def test_every_line_of_a_composed_mail_is_within_the_limit_whatever_the_inputs():
    from gateway.compose import build_message
    from templates import Rendered

    raw = build_message(
        Rendered("Re: " + "x" * 100_000, "body\n", ""), from_addr=("N" * 5000, "support@support.example.test"),
        to=["alice@customer.example.com"], message_id="ours@support.example.test",
        in_reply_to="i" * 990 + "@customer.example.com", references=["r" * 3000 + "@x", "ok@customer.example.com"],
        thread_topic="topic " * 50_000, thread_root="ours@support.example.test",
        attachments=[("f" * 5000 + ".pdf", "application/pdf", b"%PDF-1.4\n")])
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    msg = parse(raw)
    assert msg["In-Reply-To"] is None and msg["References"] == "<ok@customer.example.com>"
    assert next(p for p in msg.walk() if p.get_filename()).get_filename().endswith("….pdf")
