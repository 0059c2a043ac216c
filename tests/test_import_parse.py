"""The import's lean parse (parsers.message.parse_history) stores what the live parse would.

`supportgw import` parses every message of a history with parse_history: the stdlib's compat32
parse and our own walk, without mail-parser's pass over every part. These tests hold it to
parse_email on real mail from the shared corpora, field by field for everything an import stores
or routes by, so that a ticket imported from a history reads exactly as if the live path had
taken the mail.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from parsers.message import parse_email, parse_head, parse_history
from tests.conftest import corpus

STORED = ("message_id", "references", "in_reply_to", "subject", "sender", "to", "cc", "reply_to", "text",
          "reply_text", "html", "automatic", "automatic_reason", "language", "headers", "signature")


def _sample(every: int = 3) -> list[Path]:
    root = corpus()
    files = sorted(p for p in root.rglob("*") if p.is_file() and ".git" not in p.parts
                   and p.suffix in ("", ".eml", ".msg", ".txt") and p.stat().st_size < 2_000_000)
    return files[::every]


def _files(e) -> list[tuple]:
    return [(a.filename, a.content_type, a.size, a.sha256, a.inline, a.content) for a in e.attachments]


def test_the_lean_parse_stores_what_the_live_parse_does_on_the_corpora():
    compared, differ = 0, []
    for p in _sample():
        raw = p.read_bytes()
        if b":" not in raw[:2000]:  # not a mail (a README, a script)
            continue
        full, lean = parse_email(raw), parse_history(raw)
        compared += 1
        wrong = [f for f in STORED if getattr(full, f) != getattr(lean, f)]
        if _files(full) != _files(lean):
            wrong.append("attachments")
        # the date an import stores is the head scan's (parse_head), for both parses alike
        if lean.date != parse_head(raw).date:
            wrong.append("date")
        if wrong:
            differ.append(f"{p}: {', '.join(wrong)}")
    assert compared > 400, f"only {compared} corpus mails found"
    assert not differ, "\n".join(differ[:20])


@pytest.mark.parametrize("raw", [
    b"",
    b"\xef\xbb\xbfFrom: a@example.com\r\nSubject: bom\r\n\r\nbody\r\n",
    b"Subject: no from, no id\n\nhello\n",
    b"Content-Type: multipart/mixed; boundary=x\n\n" + b"--x\nContent-Type: multipart/mixed; boundary=x\n\n" * 400,
])
def test_the_lean_parse_never_raises_and_agrees_on_odd_input(raw):
    full, lean = parse_email(raw), parse_history(raw)
    assert [getattr(lean, f) for f in STORED] == [getattr(full, f) for f in STORED]
    assert _files(lean) == _files(full)


HEAD = ("message_id", "references", "in_reply_to", "subject", "sender", "to", "cc")


@pytest.mark.parametrize("raw", [
    b"From: a@example.com\r\nTo: b@example.com\r\nSubject: crlf\r\n\r\nbody\r\nTo: c@example.com\r\n",
    b"From: a@example.com\rTo: b@example.com\rSubject: cr alone\r\rbody\rCc: c@example.com\r",
    b"From: a@example.com\nSubject: no body",
    b"\nFrom: a@example.com\n\nan empty first line: no headers at all\n",
    b"From: a@example.com\nnot a header\nTo: b@example.com\n\nbody\n",
    "Content-Type: text/plain; charset=gbk\nFrom: 客户 <a@example.com>\nSubject: 你好\n\n正文\n".encode("gbk"),
])
def test_the_head_scan_reads_the_headers_as_the_full_parse_does_on_odd_input(raw):
    head, full = parse_head(raw), parse_email(raw)
    assert [getattr(head, f) for f in HEAD] == [getattr(full, f) for f in HEAD]


def test_the_head_scan_reads_the_headers_as_the_full_parse_does_on_the_corpora():
    """The conversations are rebuilt from the head scan (gateway/edges/importer.py): it must
    read every header they use exactly as the parse that stores the message."""
    differ = []
    for p in _sample():
        raw = p.read_bytes()
        head, full = parse_head(raw), parse_email(raw)
        wrong = [f for f in HEAD if getattr(head, f) != getattr(full, f)]
        if wrong:
            differ.append(f"{p}: {', '.join(wrong)}")
    assert not differ, "\n".join(differ[:20])
