"""Large messages are streamed to the spool: memory stays at a slice, not the message.

The SMTP edge reads DATA in slices (gateway/edges/smtp_data.py) into a SpoolSink that
keeps small messages in memory and writes large ones to the spool blob store;
`supportgw ingest` and the IMAP poller do the same. Memory is measured with
tracemalloc in the gateway's own process while a separate client process sends.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import textwrap
import tracemalloc
from contextlib import contextmanager
from email.message import EmailMessage

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from gateway.pipeline.process import Source, process_pending, spool
from gateway.edges.smtp import start_listener
from gateway.edges.smtp_data import Unstuffer, read_data
from gateway.runtime.workers import SpoolWriter
from storage.models import AttachmentRow, Message, SpoolEntry, Ticket
from storage.spool import SpoolSink, Stored, open_raw, raw_bytes
from tests.conftest import free_port, wait_for

MB = 1024 * 1024


def big_mail(megabytes: int, msgid: str = "core-dump@customer.example.com") -> bytes:
    m = EmailMessage()
    m["From"] = "Big Customer <big@customer.example.com>"
    m["To"] = "support@support.example.test"
    m["Subject"] = "core dump attached"
    m["Message-ID"] = f"<{msgid}>"
    m.set_content("Our server crashed; the core dump is attached.\n.\n..and a line that starts with dots\n")
    m.add_attachment(os.urandom(megabytes * MB * 3 // 4), maintype="application", subtype="octet-stream",
                     filename="core.bin")
    return m.as_bytes().replace(b"\n", b"\r\n")


def raw_attachment(raw: bytes) -> bytes:
    from email import message_from_bytes, policy

    msg = message_from_bytes(raw, policy=policy.default)
    return next(msg.iter_attachments()).get_content()


@contextmanager
def listening(app):
    """An SMTP listener and its spool writer for `app`, stopped on the way out; yields the port."""
    writer = SpoolWriter(app)
    writer.start()
    ctl = start_listener(app, writer, port=free_port())
    try:
        yield ctl.port
    finally:
        ctl.stop()
        writer.stop()
        writer.join(10)


def send_big(session, megabytes: int) -> tuple[int, bytes]:
    """One big mail over an open smtplib session: the DATA reply."""
    session.ehlo()
    session.mail("big@customer.example.com")
    session.rcpt("support@support.example.test")
    return session.data(big_mail(megabytes))


def stuff(data: bytes) -> bytes:
    """What an SMTP client sends for `data` (CRLF lines) after DATA."""
    lines = data.split(b"\r\n")
    body = b"\r\n".join(b"." + ln if ln.startswith(b".") else ln for ln in lines)
    return body + (b"" if data.endswith(b"\r\n") or not data else b"\r\n") + b".\r\n"


async def _read_through(wire: bytes, cuts: list[int], limit: int | None = None, reader_limit: int = 64):
    reader = asyncio.StreamReader(limit=reader_limit)
    last = 0
    for c in sorted(set(x % (len(wire) + 1) for x in cuts)) + [len(wire)]:
        reader.feed_data(wire[last:c])
        last = c
    reader.feed_data(b"QUIT\r\n")  # a pipelined next command must stay in the stream
    out = bytearray()
    result = await read_data(reader, out.extend, limit)
    rest = await reader.readuntil(b"\r\n")
    return bytes(out), result, rest


lines = st.lists(st.one_of(st.sampled_from([b"", b".", b"..", b". x", b".\r", b"\r", b"end."]),
                           st.binary(max_size=120).map(lambda b: b.replace(b"\r\n", b"\n").replace(b"\n", b""))),
                 max_size=40)


@settings(max_examples=300, deadline=None)
@given(lines=lines, cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_data_reader_unstuffs_exactly_whatever_the_slicing(lines, cuts):
    data = b"".join(ln + b"\r\n" for ln in lines)
    wire = stuff(data)
    out, result, rest = asyncio.run(_read_through(wire, cuts))
    assert out == data
    assert not result.too_big and result.size == len(wire) - 3
    assert rest == b"QUIT\r\n"


def test_data_reader_keeps_reading_past_the_limit_but_stores_nothing():
    data = b"".join(b"line %d of a long message\r\n" % i for i in range(5000))
    out, result, rest = asyncio.run(_read_through(stuff(data), [], limit=10_000, reader_limit=4096))
    assert result.too_big and len(out) <= 10_000 + 4096
    assert rest == b"QUIT\r\n"


def test_unstuffer_handles_a_dot_split_from_its_line_break():
    u = Unstuffer()
    got = b"".join([u.feed(b".leading\r"), u.feed(b"\n"), u.feed(b"..two\r\n"), u.feed(b"."), u.feed(b"x\r\n"),
                    u.close()])
    assert got == b"leading\r\n.two\r\nx\r\n"


def test_sink_keeps_small_messages_in_memory_and_streams_large_ones(app):
    small = SpoolSink(app.spool_blobs, inline_max=1000)
    small.write(b"x" * 1000)
    assert small.finish() == b"x" * 1000
    big = SpoolSink(app.spool_blobs, inline_max=1000)
    payload = os.urandom(5000)
    for i in range(0, 5000, 700):
        big.write(payload[i:i + 700])
    stored = big.finish()
    assert isinstance(stored, Stored) and stored.size == 5000
    assert stored.sha256 == hashlib.sha256(payload).hexdigest() and stored.head == payload[:5000]
    assert app.spool_blobs.path_for(stored.sha256).read_bytes() == payload
    gone = SpoolSink(app.spool_blobs, inline_max=10)
    gone.write(b"y" * 100)
    gone.discard()
    assert list((app.spool_blobs.root / "tmp").iterdir()) == []


SENDER = textwrap.dedent("""
    import smtplib, sys
    raw = open(sys.argv[2], "rb").read()
    with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=300) as s:
        s.sendmail("big@customer.example.com", ["support@support.example.test"], raw)
    print("sent")
""")


def test_fifty_megabytes_over_smtp_are_streamed_to_the_spool_with_bounded_memory(make_app, tmp_path):
    app = make_app(smtp={"max_message_size": 80 * MB})
    raw = big_mail(50)
    assert len(raw) > 50 * MB
    path = tmp_path / "big.eml"
    path.write_bytes(raw)
    with listening(app) as port:
        tracemalloc.start()
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        out = subprocess.run([sys.executable, "-c", SENDER, str(port), str(path)],
                             capture_output=True, text=True, timeout=300)
        peak = tracemalloc.get_traced_memory()[1] - before
        tracemalloc.stop()
        assert out.returncode == 0, out.stderr
    # the gateway process never held the message: a few slices at most
    assert peak < 8 * MB, f"receiving {len(raw)} bytes peaked at {peak} bytes of Python memory"
    with app.db.session() as s:
        [entry] = s.execute(select(SpoolEntry)).scalars().all()
        assert entry.raw is None and entry.size == len(raw)
        assert entry.sha256 == hashlib.sha256(raw).hexdigest()
        assert entry.message_id == "core-dump@customer.example.com"
        with open_raw(app.spool_blobs, entry) as fh:
            assert hashlib.sha256(fh.read()).hexdigest() == entry.sha256
    # and it is processed like any other mail, again without reading it whole: a ticket,
    # the attachment decoded as it is read and stored by content
    tracemalloc.start()
    counts = process_pending(app)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert counts["created"] == 1, counts
    assert peak < 16 * MB, f"processing {len(raw)} bytes peaked at {peak} bytes of Python memory"
    attachment = raw_attachment(raw)
    with app.db.session() as s:
        [att] = s.execute(select(AttachmentRow)).scalars().all()
        assert att.filename == "core.bin" and att.size == len(attachment)
        assert att.sha256 == hashlib.sha256(attachment).hexdigest()
        assert app.attachments.path_for(att.sha256).stat().st_size == len(attachment)
        assert s.execute(select(Message.ticket_id)).scalar_one() == s.execute(select(Ticket.id)).scalar_one()


def test_small_messages_stay_in_the_row(running):
    gw = running()
    from tests.mail import build, send

    send(gw.smtp_port, build(subject="small", msgid="<small@customer.example.com>"),
         "a@customer.example.com", ["support@support.example.test"])
    wait_for(lambda: _spooled(gw.app), what="spooled")
    [entry] = _spooled(gw.app)
    assert entry.raw is not None and raw_bytes(gw.app.spool_blobs, entry) == entry.raw
    assert not (gw.app.spool_blobs.root).exists() or not any(gw.app.spool_blobs.root.rglob("*" * 64))


def _spooled(app):
    with app.db.session() as s:
        return s.execute(select(SpoolEntry)).scalars().all()


def test_a_message_over_the_limit_is_refused_and_leaves_no_file(make_app, tmp_path):
    app = make_app(smtp={"max_message_size": 2 * MB}, gateway={"spool_inline_max": 64 * 1024})
    import smtplib

    with listening(app) as port, smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
        code, msg = send_big(s, 3)
        assert code == 552, msg
        assert s.noop()[0] == 250  # the session goes on
    assert _spooled(app) == []
    tmp = app.spool_blobs.root / "tmp"
    assert not tmp.exists() or list(tmp.iterdir()) == []


def test_cli_ingest_streams_a_large_file(make_app, tmp_path):
    from tests.hardening import cli, write_config

    app = make_app(gateway={"spool_inline_max": 64 * 1024})
    raw = big_mail(2, msgid="ingested-big@customer.example.com")
    (tmp_path / "big.eml").write_bytes(raw)
    cfg = write_config(app, tmp_path / "gw.toml", gateway={"spool_inline_max": 64 * 1024})
    out = cli(cfg, "ingest", "--json", str(tmp_path / "big.eml"))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["tickets_created"] == 1
    [entry] = _spooled(app)
    assert entry.raw is None and entry.size == len(raw)
    assert raw_bytes(app.spool_blobs, entry) == raw


def test_spool_accepts_stored_and_inline_messages_together(app):
    sink = SpoolSink(app.spool_blobs, inline_max=4096)
    raw = big_mail(1, msgid="stored@customer.example.com")
    sink.write(raw)
    stored = sink.finish()
    res = spool(app, [(stored, Source("file")), (b"Message-ID: <x@y>\r\nFrom: a@b.example\r\n\r\nhi\r\n", Source("file")),
                      (stored, Source("imap:x"))])
    assert [r.duplicate for r in res] == [False, False, True] and res[0].spool_id == res[2].spool_id
    with app.db.session() as s:
        rows = {e.message_id: e for e in s.execute(select(SpoolEntry)).scalars()}
    assert rows["stored@customer.example.com"].raw is None and rows["x@y"].raw is not None


def test_an_unwritable_blob_store_answers_451_and_small_mail_still_goes_through(make_app):
    """A disk problem under data_dir/spool-blobs must make the sender retry, not lose the mail."""
    import smtplib

    app = make_app(smtp={"max_message_size": 8 * MB}, gateway={"spool_inline_max": 64 * 1024})
    app.spool_blobs.root.parent.mkdir(parents=True, exist_ok=True)
    app.spool_blobs.root.write_bytes(b"not a directory")  # every write under it fails
    with listening(app) as port, smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
        code, msg = send_big(s, 1)
        assert code == 451, msg
        s.mail("small@customer.example.com")
        s.rcpt("support@support.example.test")
        code, _ = s.data(b"From: small@customer.example.com\r\nSubject: hi\r\n\r\nsmall one\r\n")
        assert code == 250
    assert [e.size < 64 * 1024 for e in _spooled(app)] == [True]


def test_half_written_files_of_a_crash_are_swept_at_start(make_app):
    import time

    from gateway.runtime.runner import Gateway

    app = make_app()
    tmp = app.spool_blobs.root / "tmp"
    tmp.mkdir(parents=True)
    old, fresh = tmp / "in.1.dead", tmp / "in.2.busy"
    old.write_bytes(b"x" * 100)
    fresh.write_bytes(b"y" * 100)
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    gw = Gateway(app, imap=False, scheduler=False, smtp=False).start()
    gw.stop()
    assert not old.exists() and fresh.exists()


def test_a_streamed_message_whose_row_never_committed_is_removed_a_day_later(make_app):
    """A 451 after streaming (database down) leaves the file for the sender's retry to find
    by its hash; at a start a day later, files that no spool row names are removed."""
    import time

    from gateway.runtime.runner import Gateway

    app = make_app()
    kept = SpoolSink(app.spool_blobs, inline_max=1024)
    kept.write(big_mail(1, msgid="kept@customer.example.com"))
    stored = kept.finish()
    spool(app, [(stored, Source("smtp"))])
    orphans = []
    for i in range(2):  # streamed, then the spool commit failed
        sink = SpoolSink(app.spool_blobs, inline_max=1024)
        sink.write(big_mail(1, msgid=f"orphan{i}@customer.example.com"))
        orphans.append(app.spool_blobs.path_for(sink.finish().sha256))
    day_old = time.time() - 2 * 86400
    for path in (app.spool_blobs.path_for(stored.sha256), orphans[0]):
        os.utime(path, (day_old, day_old))
    gw = Gateway(app, imap=False, scheduler=False, smtp=False).start()
    gw.stop()
    assert app.spool_blobs.path_for(stored.sha256).exists()  # a spool row names it
    assert not orphans[0].exists()
    assert orphans[1].exists()  # its retry may still come
    process_pending(app)  # whatever the gateway's processor had not done before it stopped
    with app.db.session() as s:  # and the kept file is still readable as the message it was
        assert s.execute(select(Ticket.subject)).scalars().all() == ["core dump attached"]
