"""parsers/skeleton.py: a large message parsed from a stream, its big parts stored as read.

The result must be the parse of the whole message, attachment for attachment,
with memory near the threshold instead of several times the message.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tracemalloc
from email.message import EmailMessage
from pathlib import Path

import pytest

from parsers.message import parse_email
from parsers.skeleton import MARKER, restore, split
from tests.memory_sink import HashingSink
from tests.conftest import corpus

MB = 1024 * 1024


def both(raw: bytes, **kw):
    full = parse_email(raw)
    skeleton, stored = split(io.BytesIO(raw), HashingSink, **kw)
    return full, restore(parse_email(skeleton), stored), skeleton, stored


def key(email):
    """Attachments by content; a forwarded message by type only (the parser re-flattens those)."""
    return sorted((a.sha256 if not a.content_type.startswith("message/") else "", a.content_type)
                  for a in email.attachments)


def test_every_corpus_message_with_attachments_parses_the_same_from_its_skeleton():
    root = corpus()
    checked = 0
    mismatches = []
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
        if path.suffix in (".md", ".json", ".txt", ".py", ".csv"):
            continue
        raw = path.read_bytes()
        full = parse_email(raw)
        if not full.attachments:
            continue
        checked += 1
        _, small, skeleton, stored = both(raw, threshold=2048)
        if (key(full), full.subject, full.sender, full.text) != (key(small), small.subject, small.sender, small.text):
            mismatches.append(str(path.relative_to(root)))
    assert checked > 500
    assert mismatches == []


def mail(*parts, subject="big") -> bytes:
    m = EmailMessage()
    m["From"] = "Customer <c@customer.example.com>"
    m["To"] = "support@support.example.test"
    m["Subject"] = subject
    m["Message-ID"] = "<big@customer.example.com>"
    m.set_content("See the attachments.\n")
    for data, maintype, subtype, name, cte in parts:
        m.add_attachment(data, maintype=maintype, subtype=subtype, filename=name, cte=cte)
    return m.as_bytes().replace(b"\n", b"\r\n")


def test_base64_quoted_printable_and_8bit_parts_are_stored_byte_for_byte():
    binary = os.urandom(700_000)
    text = ("Zeile mit Umlauten äöü und einem sehr langen Satz, der umbrochen werden muss " * 9000).encode()
    full, small, skeleton, stored = both(mail(
        (binary, "application", "octet-stream", "dump.bin", "base64"),
        (text, "application", "x-log", "trace.log", "quoted-printable"),
    ), threshold=64 * 1024)
    assert len(stored) == 2 and len(skeleton) < 4096
    assert key(small) == key(full)
    got = {a.filename: a for a in small.attachments}
    assert got["dump.bin"].sha256 == hashlib.sha256(binary).hexdigest() and got["dump.bin"].size == len(binary)
    assert got["trace.log"].sha256 == hashlib.sha256(text).hexdigest()
    assert small.text == full.text == "See the attachments."
    assert "large-parts-streamed" in small.defects


def test_a_huge_text_body_becomes_message_txt_and_a_normal_one_stays_the_text():
    body = "A log pasted into the mail, line %d\n"
    long_text = "".join(body % i for i in range(200_000))
    m = EmailMessage()
    m["From"] = "c@customer.example.com"
    m["Subject"] = "pasted log"
    m.set_content(long_text)
    raw = m.as_bytes()
    _, small, _, stored = both(raw, threshold=1024, text_threshold=MB)
    [att] = small.attachments
    assert att.filename == "message.txt" and att.content_type == "text/plain"
    assert att.sha256 == hashlib.sha256(long_text.encode()).hexdigest()
    _, kept, _, stored = both(raw, threshold=1024, text_threshold=64 * MB)
    assert stored == {} and kept.text.startswith("A log pasted") and not kept.attachments


def test_a_single_part_message_that_is_all_attachment():
    data = os.urandom(300_000)
    raw = (b"From: c@customer.example.com\r\nSubject: just the file\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: application/pdf; name=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           + base64.encodebytes(data).replace(b"\n", b"\r\n"))
    full, small, _, stored = both(raw, threshold=4096)
    assert key(small) == key(full) and small.attachments[0].size == len(data)
    assert small.subject == "just the file"


def test_a_forwarded_message_is_stored_whole_and_named_after_its_subject():
    inner = EmailMessage()
    inner["From"] = "x@elsewhere.example"
    inner["Subject"] = "Quarterly numbers"
    inner.set_content("numbers " * 100_000)
    outer = EmailMessage()
    outer["From"] = "c@customer.example.com"
    outer["Subject"] = "Fwd: Quarterly numbers"
    outer.set_content("See below.")
    outer.add_attachment(inner)
    full, small, _, stored = both(outer.as_bytes(), threshold=4096)
    [att] = small.attachments
    assert att.content_type == "message/rfc822" and att.filename == full.attachments[0].filename
    assert att.filename == "Quarterly numbers.eml" and att.size > 800_000


def test_uuencoded_parts_are_decoded_as_the_stdlib_would():
    data = os.urandom(50_000)
    import binascii

    lines = [b"begin 644 blob.bin"] + [binascii.b2a_uu(data[i:i + 45]).rstrip(b"\n")
                                       for i in range(0, len(data), 45)] + [b"`", b"end"]
    raw = (b"From: c@customer.example.com\r\nSubject: uu\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
           b"--b1\r\nContent-Type: application/octet-stream; name=\"blob.bin\"\r\n"
           b"Content-Transfer-Encoding: x-uuencode\r\n\r\n" + b"\r\n".join(lines) + b"\r\n--b1--\r\n")
    full, small, _, stored = both(raw, threshold=1024)
    assert key(small) == key(full)
    assert small.attachments[0].sha256 == hashlib.sha256(data).hexdigest()


def test_a_marker_in_a_customers_own_text_is_not_taken_for_a_stored_part():
    raw = (b"From: c@customer.example.com\r\nSubject: sneaky\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
           b"--b1\r\nContent-Type: application/octet-stream; name=\"x.bin\"\r\n\r\n"
           + MARKER + b"0" * 64 + b"\r\n--b1--\r\n")
    full, small, _, stored = both(raw, threshold=64 * 1024)
    assert stored == {} and key(small) == key(full)
    assert small.attachments[0].sha256 == hashlib.sha256(MARKER + b"0" * 64).hexdigest()


def test_memory_stays_near_the_threshold_for_a_twenty_megabyte_message():
    raw = mail((os.urandom(15 * MB), "application", "octet-stream", "core", "base64"))
    assert len(raw) > 20 * MB
    fh = io.BufferedReader(io.BytesIO(raw))
    tracemalloc.start()
    skeleton, stored = split(fh, _CountingSink, threshold=256 * 1024)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(stored) == 1 and next(iter(stored.values())).size == 15 * MB
    assert peak < 4 * MB, peak


class _CountingSink:
    def __init__(self):
        self.h, self.n = hashlib.sha256(), 0

    def write(self, b):
        self.h.update(b)
        self.n += len(b)

    def finish(self):
        return self.h.hexdigest(), self.n


@pytest.mark.parametrize("cut", [b"", b"--b1\r\nContent-Type: application/octet-stream\r\n\r\n" + b"A" * 5000])
def test_truncated_or_broken_structure_never_loses_the_rest(cut):
    raw = (b"From: c@customer.example.com\r\nSubject: cut\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
           + cut)
    full, small, skeleton, stored = both(raw, threshold=1024)
    assert small.text == full.text == "hello"
    assert small.subject == "cut"
