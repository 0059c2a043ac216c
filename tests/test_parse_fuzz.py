"""parse_email never raises: arbitrary bytes and mutated real messages always parse."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers.addresses import is_valid_address
from parsers.bounces import parse_dsn
from parsers.message import parse_email
from parsers.model import ParsedEmail

CORPORA = os.environ.get("SUPPORTGW_CORPORA")

FAST = settings(max_examples=400, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def check(parsed: ParsedEmail) -> None:
    assert isinstance(parsed, ParsedEmail)
    # What becomes a key, a column or a header is stripped of control characters at the
    # parser's edge: SQLite and PostgreSQL must store the same thing (issue 19).
    one_liners = [parsed.subject, parsed.message_id, *parsed.in_reply_to, *parsed.references]
    for a in (parsed.sender, *parsed.to, *parsed.cc, *parsed.reply_to):
        assert a.email == "" or is_valid_address(a.email), a
        one_liners += [a.email, a.name]
    for att in parsed.attachments:
        assert re.fullmatch(r"[a-z0-9!#$%&'*+\-.^_`{|}~]+/[a-z0-9!#$%&'*+\-.^_`{|}~]+", att.content_type), att
        one_liners += [att.content_type, att.content_id, att.filename]
    for value in one_liners:
        assert not CONTROLS.search(value), repr(value)
    assert parsed.message_id and "<" not in parsed.message_id
    assert isinstance(parsed.defects, tuple)
    for value in (parsed.text, parsed.subject, parsed.html, *(v for _, v in parsed.headers)):
        assert "\x00" not in value
        value.encode("utf-8")  # storable: no lone surrogates
    for att in parsed.attachments:
        assert att.filename and "/" not in att.filename and "\\" not in att.filename
        assert ".." not in att.filename and att.size == len(att.content)
    parsed.to_json()


@FAST
@given(st.binary(max_size=4096))
def test_arbitrary_bytes(raw):
    check(parse_email(raw))
    parse_dsn(raw)


HEADER_NAMES = ["From", "To", "Cc", "Subject", "Message-ID", "References", "In-Reply-To",
                "Date", "Content-Type", "Content-Transfer-Encoding", "Content-Disposition",
                "Auto-Submitted", "Return-Path"]
TOKENS = [b"=?utf-8?B?", b"=?gb2312?Q?", b"?=", b"=C4=E3", b"<", b">", b"\xff\xfe", b"\xc4\xe3",
          b"multipart/mixed; boundary=", b"--", b"\r\n", b"\r", b"\n\n", b'"', b";", b"*0*=",
          b"''", b"%E6", b"charset=", b"base64", b"quoted-printable", b"message/rfc822",
          b"filename=../../x", b"\x00", b"@", b",", b"(", b")"]

header_lines = st.tuples(
    st.sampled_from(HEADER_NAMES),
    st.lists(st.one_of(st.sampled_from(TOKENS), st.binary(max_size=12)), max_size=8),
).map(lambda t: t[0].encode() + b": " + b"".join(t[1]) + b"\r\n")


@FAST
@given(st.lists(header_lines, max_size=12), st.binary(max_size=1024))
def test_structured_garbage(headers, body):
    check(parse_email(b"".join(headers) + b"\r\n" + body))


def corpus_sample() -> list[bytes]:
    if not CORPORA:
        return []
    root = Path(CORPORA)
    paths = sorted(p for p in root.rglob("*") if p.is_file() and p.stat().st_size < 64_000)
    return [p.read_bytes() for p in paths[:: max(1, len(paths) // 60)]]


SAMPLE = corpus_sample()


@pytest.mark.skipif(not CORPORA, reason="SUPPORTGW_CORPORA is not set")
@FAST
@given(st.data())
def test_mutated_corpus_messages(data):
    raw = bytearray(data.draw(st.sampled_from(SAMPLE)))
    for _ in range(data.draw(st.integers(1, 8))):
        kind = data.draw(st.sampled_from(["flip", "cut", "insert", "dup"]))
        pos = data.draw(st.integers(0, max(0, len(raw) - 1)))
        if kind == "flip" and raw:
            raw[pos] = data.draw(st.integers(0, 255))
        elif kind == "cut":
            raw = raw[:pos] + raw[pos + data.draw(st.integers(1, 200)):]
        elif kind == "insert":
            raw[pos:pos] = data.draw(st.sampled_from(TOKENS))
        else:
            raw[pos:pos] = raw[pos:pos + data.draw(st.integers(1, 300))]
    check(parse_email(bytes(raw)))
    parse_dsn(bytes(raw))


@pytest.mark.parametrize("raw", [
    b"From: Eve\x01 <eve@evil.example>\r\nTo: a\x00b@x.example, ok@customer.example.com\r\nSubject: s\x07s\r\n"
    b"Message-ID: <m\x01@x.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
    b"--B\r\nContent-Type: text/plain\r\n\r\nhello\r\n--B\r\nContent-Type: application/pd\x00f\r\n"
    b"Content-ID: <c\x00id@x>\r\nContent-Disposition: attachment; filename=a.pdf\r\n\r\n%PDF\r\n"
    b"--B\r\nContent-Type: image/pn\x1bg\r\nContent-Disposition: attachment; filename=b.png\r\n\r\nPNG\r\n--B--\r\n",
])
def test_control_characters_never_reach_addresses_or_content_types(raw):
    e = parse_email(raw)
    check(e)
    assert (e.sender.name, e.sender.email) == ("Eve", "eve@evil.example")
    assert [a.email for a in e.to] == ["ok@customer.example.com"]
    # RFC 2045 5.2: a malformed Content-Type reads as the default, text/plain
    assert [(a.filename, a.content_type) for a in e.attachments] == [("a.pdf", "text/plain"), ("b.png", "text/plain")]
    assert e.message_id == "m@x.example" and e.subject == "s s"
