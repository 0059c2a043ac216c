"""Hostile input, nesting: a message nested past the parser's limit is kept whole as an
attachment and its text says so; its raw MIME never becomes ticket text (issue 19: 5,000
levels once put 331 KB of MIME into the ticket and 455 KB into each notification)."""

from __future__ import annotations

import hashlib

import pytest

from gateway.pipeline.process import Source, process_pending, spool
from parsers.message import MAX_DEPTH, NESTED_NAME, parse_email
from storage.models import AttachmentRow, Message
from storage.spool import SpoolSink
from tests.hardening import dispatch, rows

HEAD = (b"From: Alice Customer <alice@customer.example.com>\r\nTo: support@support.example.test\r\n"
        b"Subject: nested\r\nMessage-ID: <nested-%d-%s@customer.example.com>\r\nMIME-Version: 1.0\r\n")


def nested(levels: int, kind: str = "multipart", pad: int = 0) -> bytes:
    body = b""
    if kind == "multipart":
        for i in range(levels):
            body += b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
        body += b"Content-Type: text/plain\r\n\r\nthe innermost text\r\n" + b"x" * pad + b"\r\n"
        for i in reversed(range(levels)):
            body += b"--b%d--\r\n" % i
    else:
        for i in range(levels):
            body += b"Content-Type: message/rfc822\r\n\r\nSubject: level %d\r\n" % i
        body += b"Content-Type: text/plain\r\n\r\nthe innermost text\r\n"
    return HEAD % (levels, kind.encode()) + body


@pytest.mark.parametrize("levels", [MAX_DEPTH + 5, 5000])
def test_a_message_nested_too_deep_is_kept_whole_and_the_text_says_so(levels):
    raw = nested(levels)
    e = parse_email(raw)
    assert "nesting-too-deep" in e.defects
    assert len(e.text) < 1000 and NESTED_NAME in e.text and "Content-Type" not in e.text
    [whole] = [a for a in e.attachments if a.filename == NESTED_NAME]
    assert whole.content_type == "message/rfc822" and whole.sha256 == hashlib.sha256(raw).hexdigest()


def _push(app, raw: bytes, *, stored: bool) -> None:
    if stored:  # the large-mail path: the spool keeps a file, the parser reads a skeleton
        sink = SpoolSink(app.spool_blobs, inline_max=4096)
        sink.write(raw)
        item = sink.finish()
    else:
        item = raw
    spool(app, [(item, Source("smtp", "", ("support@support.example.test",)))])
    process_pending(app)


@pytest.mark.parametrize("stored", [False, True], ids=["inline", "large-path"])
def test_a_mime_bomb_makes_a_short_ticket_text_and_small_notifications(app, stored):
    raw = nested(5000, pad=300 * 1024 if stored else 0)
    _push(app, raw, stored=stored)
    [msg] = rows(app, Message, Message.direction == "in")
    assert len(msg.text) < 1000 and NESTED_NAME in msg.text
    [whole] = [a for a in rows(app, AttachmentRow) if a.filename == NESTED_NAME]
    assert whole.sha256 == hashlib.sha256(raw).hexdigest() and whole.size == len(raw)  # the whole message
    assert app.attachments.get(whole.sha256) == raw
    sent = dispatch(app).sent
    assert sent and max(len(m["raw"]) for m in sent) < 32 * 1024  # not forwarded: kept on the ticket
