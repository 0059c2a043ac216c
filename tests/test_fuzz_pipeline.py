"""Property-based and mutation fuzzing over the parser AND the pipeline: no exception
escapes, and every input ends as a ticket message (or a duplicate of one) or a quarantine
entry with a reason. Mutates real corpus messages; bounded to well under a minute."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.pipeline.process import Source, ingest
from parsers.message import parse_email
from tests.conftest import CORPORA
from tests.hardening import SUPPORT, spool_outcomes_are_complete

SEED_FILES = [
    "talon/standard_replies/android.eml",
    "flufl-bounce/dsn_01.txt",
    "flufl-bounce/postfix_01.txt",
    "mimekit/messages/simple-multipart.anonymized.eml",
    "sisimai-set-of-emails/maildir/bsd/lhost-postfix-01.eml",
    "webklex-php-imap/multipart_without_body.eml",
    "webklex-php-imap/attachment_encoded_filename.eml",
    "flanker/bounce/gmail-invalid-address.eml",
]

BASE = (b"From: Alice <alice@customer.example.com>\r\nTo: support@support.example.test\r\n"
        b"Subject: =?utf-8?b?5omT5Y2w5py6?= printer\r\nMessage-ID: <seed@customer.example.com>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        b"Hello =E4=BD=A0=E5=A5=BD, the printer is on fire.\r\n--zz\r\nContent-Type: text/html\r\n\r\n"
        b"<p onclick=x()>hi<script>1</script></p>\r\n--zz\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--zz--\r\n")

TOKENS = [b"\r\n", b"\n", b"--zz", b"--zz--", b": ", b"=?utf-8?b?", b"?=", b"=?gbk?q?=C4=E3?=", b"\x00", b"\xff\xfe",
          b"Content-Type: multipart/mixed; boundary=zz\r\n", b"Content-Type: message/rfc822\r\n\r\n",
          b"charset=\"x-bogus\"", b"Content-Transfer-Encoding: base64\r\n", b"From: \r\n", b"<>", b"\t", b"; ",
          b"filename*=utf-8''..%2F..%2Fx", b"Auto-Submitted: auto-replied\r\n", b"\xe4\xbd\xa0"]


def _seeds() -> list[bytes]:
    seeds = [BASE]
    if CORPORA:
        for rel in SEED_FILES:
            p = Path(CORPORA) / rel
            if p.is_file():
                seeds.append(p.read_bytes()[:60_000])
    return seeds


def mutate(raw: bytes, rng: random.Random, rounds: int) -> bytes:
    data = bytearray(raw)
    for _ in range(rounds):
        op = rng.randrange(6)
        pos = rng.randrange(len(data) + 1)
        if op == 0 and data:  # flip a byte
            data[min(pos, len(data) - 1)] = rng.randrange(256)
        elif op == 1:  # insert a MIME-ish token
            data[pos:pos] = rng.choice(TOKENS)
        elif op == 2 and data:  # delete a span
            del data[pos:pos + rng.randrange(1, 64)]
        elif op == 3 and data:  # duplicate a span
            start = rng.randrange(len(data))
            data[pos:pos] = data[start:start + rng.randrange(1, 200)]
        elif op == 4:  # truncate
            del data[pos:]
        else:  # swap the line ending style
            data = bytearray(bytes(data).replace(b"\r\n", b"\n") if rng.random() < 0.5 else bytes(data).replace(b"\n", b"\r\n"))
    return bytes(data)


def test_mutated_corpus_mail_through_parser_and_pipeline(app):
    rng = random.Random(20260302)
    seeds = _seeds()
    raws = []
    for i in range(300):
        raw = mutate(rng.choice(seeds), rng, rng.randrange(1, 12))
        parse_email(raw, own_addresses=app.own_addresses)  # must not raise
        raws.append(raw)
    for i in range(0, len(raws), 50):
        counts = ingest(app, [(r, Source("smtp", "", (SUPPORT,))) for r in raws[i:i + 50]])
        assert sum(counts.values()) == 50
    assert spool_outcomes_are_complete(app) == []


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(headers=st.lists(st.tuples(st.sampled_from(["From", "To", "Cc", "Subject", "Message-ID", "In-Reply-To",
                                                   "References", "Content-Type", "Content-Transfer-Encoding",
                                                   "Auto-Submitted", "X-Loop", "Reply-To", "Date", "X-Junk"]),
                                  st.binary(max_size=80)), max_size=10),
       body=st.binary(max_size=600))
def test_arbitrary_headers_and_bodies_never_escape_the_pipeline(app, headers, body):
    raw = b"".join(k.encode() + b": " + v.replace(b"\r", b"").replace(b"\n", b" ") + b"\r\n" for k, v in headers)
    raw += b"\r\n" + body
    parse_email(raw, own_addresses=app.own_addresses)
    counts = ingest(app, [(raw, Source("smtp", "", (SUPPORT,)))])
    assert sum(counts.values()) == 1
    assert spool_outcomes_are_complete(app) == []


@pytest.mark.parametrize("seed", range(3))
def test_pure_noise_is_stored_or_quarantined(app, seed):
    rng = random.Random(seed)
    raws = [bytes(rng.randrange(256) for _ in range(rng.randrange(0, 3000))) for _ in range(20)]
    ingest(app, [(r, Source("smtp", "", (SUPPORT,))) for r in raws])
    assert spool_outcomes_are_complete(app) == []
