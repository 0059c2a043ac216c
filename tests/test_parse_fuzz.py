"""parse_email never raises: arbitrary bytes and mutated real messages always parse, and the
large-mail path (parsers/skeleton.py) reaches the same verdict on them as the small one.

The budget here is small and fixed; `python bench/fuzz.py N` runs the same properties
with N examples each."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers.addresses import is_valid_address
from parsers.bounces import parse_dsn
from parsers.message import parse_email
from parsers.model import ParsedEmail
from parsers.skeleton import restore, split
from tests.memory_sink import HashingSink
from tests.conftest import CORPORA, needs_corpora


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
        assert ".." not in att.filename
        assert att.size == len(att.content) or (att.content == b"" and "large-parts-streamed" in parsed.defects)
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


def mutate(data, raw: bytes) -> bytes:
    """`raw` with one to eight random flips, cuts, token inserts and duplications."""
    raw = bytearray(raw)
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
    return bytes(raw)


def check_mutated(data) -> None:
    raw = mutate(data, data.draw(st.sampled_from(SAMPLE)))
    check(parse_email(raw))
    parse_dsn(raw)


def large_path(raw: bytes, threshold: int = 512) -> ParsedEmail:
    """The large-mail path, every part over `threshold` bytes streamed out (in memory here)."""
    data, stored = split(io.BytesIO(raw), HashingSink, threshold)
    return restore(parse_email(data), stored)


def check_both_paths(data) -> None:
    from tests.test_large_path_parity import decisive

    raw = mutate(data, data.draw(st.sampled_from(SAMPLE)))
    small, large = parse_email(raw), large_path(raw)
    check(large)
    a, b = decisive(small), decisive(large)
    if "no-message-id" in small.defects:  # named after the whole file's hash by gateway.large_mail
        a.pop("message_id"), b.pop("message_id")
    # mangled base64 decodes differently streamed than whole (the stdlib is laxer); which
    # parts there are and of what type decides things, their bytes do not
    a["attachments"] = tuple(t[0] for t in a["attachments"])
    b["attachments"] = tuple(t[0] for t in b["attachments"])
    assert a == b, {k: (str(a[k])[:300], str(b[k])[:300]) for k in a if a[k] != b[k]}


@needs_corpora
@FAST
@given(st.data())
def test_mutated_corpus_messages(data):
    check_mutated(data)


@needs_corpora
@settings(FAST, max_examples=150, derandomize=True)  # a fixed budget: the same examples every run
@given(st.data())
def test_mutated_corpus_messages_reach_the_same_verdict_on_the_large_path(data):
    check_both_paths(data)


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
