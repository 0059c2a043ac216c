"""The large-mail path reaches the same verdict as the small one on everything but memory.

A message over `gateway.spool_inline_max` is spooled to a file and parsed through a
skeleton (gateway/large_mail.py, parsers/skeleton.py). Every corpus message is fed
through both paths, padded over the limit, and the parsed fields that decide routing,
threading and loops must be equal (issue 19 found four ways they were not)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from gateway import large_mail
from gateway.pipeline.process import Source, process_pending, spool
from parsers.message import parse_email
from storage.models import OutboxRow, SpoolEntry, Ticket
from storage.spool import SpoolSink, Stored
from tests.hardening import rows

CORPORA = os.environ.get("SUPPORTGW_CORPORA")
SKIP = {".md", ".json", ".py", ".txt", ".rb", ".go", ".js", ".php", ".cs", ".yml", ".yaml"}


def corpus_paths() -> list[Path]:
    if not CORPORA:
        return []
    return sorted(p for p in Path(CORPORA).rglob("*")
                  if p.is_file() and p.suffix not in SKIP and p.stat().st_size < 2_000_000)


def pad(raw: bytes, over: int) -> bytes:
    """`raw` with a leading X-Pad header that takes it past `over` bytes and changes nothing else."""
    nl = b"\r\n" if b"\r\n" in raw[:4096] else b"\n"
    return b"X-Pad: " + (b"x" * 76 + nl + b" ") * ((over - len(raw)) // 70 + 2) + b"end" + nl + raw


def decisive(e) -> dict:
    """What routing, threading and loop detection read of a ParsedEmail."""
    return dict(
        sender=e.sender, to=e.to, cc=e.cc, reply_to=e.reply_to, subject=e.subject, message_id=e.message_id,
        in_reply_to=e.in_reply_to, references=e.references, automatic=(e.automatic, e.automatic_reason),
        text=e.text, reply_text=e.reply_text, language=e.language,
        # a stored part's own Content-* fields are what the large path changes, by design
        headers=tuple(h for h in e.headers if h[0].lower() != "x-pad" and not h[0].lower().startswith("content-")),
        # a forwarded message's bytes are stored as received rather than re-flattened: same mail, other bytes
        attachments=tuple((a.content_type,) if a.content_type.startswith("message/") else
                          (a.content_type, a.sha256, a.size) for a in e.attachments),
    )


def both_paths(app, raw: bytes):
    sink = SpoolSink(app.spool_blobs, inline_max=app.config.gateway.spool_inline_max)
    sink.write(raw)
    stored = sink.finish()
    assert isinstance(stored, Stored)
    entry = SpoolEntry(raw=None, sha256=stored.sha256, size=stored.size)
    return parse_email(raw, own_addresses=app.own_addresses), large_mail.parse_stored(app, entry)


@pytest.mark.skipif(not CORPORA, reason="SUPPORTGW_CORPORA is not set")
def test_every_corpus_message_reaches_the_same_verdict_on_both_paths(make_app, monkeypatch):
    app = make_app(gateway={"spool_inline_max": 4096})
    monkeypatch.setattr(large_mail, "PART_THRESHOLD", 1024)  # store every part it can: the hard case
    paths = corpus_paths()
    assert len(paths) > 1000
    differ = []
    for path in paths:
        small, large = both_paths(app, pad(path.read_bytes(), 4096))
        a, b = decisive(small), decisive(large)
        differ += [f"{path.relative_to(CORPORA)}: {k}" for k in a if a[k] != b[k]]
    assert differ == []


MB = 1024 * 1024
BIG = base64.encodebytes(os.urandom(MB + MB // 4)).replace(b"\n", b"\r\n")


def _single(headers: bytes, ctype: bytes = b"application/octet-stream") -> bytes:
    return (b"From: Alice Customer <alice@customer.example.com>\r\nTo: support@support.example.test\r\n" + headers +
            b"MIME-Version: 1.0\r\nContent-Type: " + ctype + b"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + BIG)


UU_BAD_LINE = (b"begin 644 log.bin\r\n" + (b"M" + b"86)C" * 15 + b"\r\n") * 30000 + b"M\x00\xff this line is broken\r\n"
               + b"`\r\nend\r\n")
ISSUE_CASES = {
    "control character in a single part's Message-ID": _single(
        b"Message-ID: <ctl\x0b1@customer.example.com>\r\nSubject: Server down\r\n"),
    "form feed in a header": _single(b"Message-ID: <ff1@customer.example.com>\r\nX-Note: a\x0cb\r\nSubject: Server down\r\n"),
    "bad line in a large uuencoded attachment": (
        b"From: Alice Customer <alice@customer.example.com>\r\nTo: support@support.example.test\r\n"
        b"Message-ID: <uu1@customer.example.com>\r\nSubject: Server down\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nLog attached.\r\n"
        b"--B\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n" +
        UU_BAD_LINE + b"--B--\r\n"),
}


@pytest.mark.parametrize("case", ISSUE_CASES)
def test_a_large_mail_from_the_issue_becomes_the_same_ticket(make_app, case):
    raw = ISSUE_CASES[case]
    assert len(raw) > MB
    small, large = both_paths(make_app(), raw)
    assert decisive(small) == decisive(large)
    app = make_app()
    spool(app, [(_stored(app, raw), Source("smtp", "", ("support@support.example.test",)))])
    process_pending(app)
    [entry] = rows(app, SpoolEntry)
    assert entry.raw is None and entry.status == "processed", entry.error
    [ticket] = rows(app, Ticket)
    assert (ticket.subject, ticket.requester_email) == ("Server down", "alice@customer.example.com")


def test_a_large_top_level_delivery_report_is_automatic_and_never_acknowledged(make_app):
    report = b"Reporting-MTA: dns; mx.customer.example.net\r\n\r\n" + (
        b"Final-Recipient: rfc822; gone@customer.example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n") * 20000
    raw = (b"From: Mail Robot <robot@mx.customer.example.net>\r\nTo: support@support.example.test\r\n"
           b"Message-ID: <dsn1@mx.customer.example.net>\r\nSubject: Delivery report\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: message/delivery-status\r\n\r\n" + report)
    assert len(raw) > MB
    app = make_app()
    small, large = both_paths(app, raw)
    assert small.automatic and decisive(small) == decisive(large)
    spool(app, [(_stored(app, raw), Source("smtp", "", ("support@support.example.test",)))])
    process_pending(app)
    assert [r for r in rows(app, OutboxRow) if r.kind == "acknowledgement"] == []


def _stored(app, raw: bytes) -> Stored:
    sink = SpoolSink(app.spool_blobs, inline_max=app.config.gateway.spool_inline_max)
    sink.write(raw)
    return sink.finish()
