"""parse_email never raises: arbitrary bytes and mutated real messages always parse."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers.bounces import parse_dsn
from parsers.message import parse_email
from parsers.model import ParsedEmail
from tests.conftest import CORPORA, needs_corpora


FAST = settings(max_examples=400, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def check(parsed: ParsedEmail) -> None:
    assert isinstance(parsed, ParsedEmail)
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


@needs_corpora
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
