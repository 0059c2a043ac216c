"""A customer's data rights: export everything about them, erase them leaving nothing searchable."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import zipfile
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest
from sqlalchemy import select, text

from gateway.pipeline import process as pipeline
from gateway.desk.customer_erase import erase
from gateway.desk.customer_export import export
from gateway.handlers.survey_handler import record_answer
from storage.models import AuditEntry, Base, Message, OutboxRow, SpoolEntry, Ticket
from storage.spool import SpoolSink
from tests.closure_kit import deliver, flush, resolve
from tests.conftest import TEST_DB

ME = "mei.chen@orbital-demo.example"
NAME = "Meixiu Chenowski"
COLLEAGUE = "olaf@orbital-demo.example"
OTHER = "zed@elsewhere-demo.example"
PHRASE = "violet-anchor-7731"
FILE_BYTES = b"ATTACHMENT-content-zebra-4410"
COMMENT = "survey-comment-quince"


def _mail(frm, name, subject, body, *, cc=None, attach=None, in_reply_to=None):
    m = EmailMessage()
    m["From"] = f"{name} <{frm}>"
    m["To"] = "support@support.example.test"
    if cc:
        m["Cc"] = cc
    m["Subject"] = subject
    m["Message-ID"] = make_msgid(domain="orbital-demo.example")
    if in_reply_to:
        m["In-Reply-To"] = in_reply_to
    m.set_content(body)
    if attach:
        m.add_attachment(attach, maintype="application", subtype="octet-stream", filename="trace.bin")
    return m.as_bytes()


def _tickets(app):
    with app.db.session() as s:
        return {t.requester_email: t.id for t in s.execute(select(Ticket)).scalars()}


def _story(app):
    """Mei's ticket (attachment, Cc colleague, answered, resolved with a knowledge article,
    surveyed), the colleague's own ticket with Mei on Cc, a quarantined mail from Mei, and
    an unrelated customer's ticket."""
    deliver(app, _mail(ME, NAME, "Orbital batch fails", f"The batch fails: {PHRASE}.\n\n{NAME}\n",
                       cc=COLLEAGUE, attach=FILE_BYTES))
    deliver(app, _mail(COLLEAGUE, "Olaf Berg", "Our VPN", f"VPN down again. Ask {NAME} ({ME}) for logs.\n",
                       cc=ME))
    deliver(app, _mail(OTHER, "Zed Other", "Printer", "The printer is jammed.\n"))
    flush(app)
    ids = _tickets(app)
    resolve(app, ids[ME], solution="Restart the scheduler.", kb_tags=("batch",))
    flush(app)
    with app.db.session() as s:
        record_answer(app, s, s.get(Ticket, ids[ME]), score=5, comment=COMMENT, actor=ME, via="mail")
    pipeline.spool(app, [(b"From: " + NAME.encode() + b" <" + ME.encode() + b">\r\nSubject: x\r\n\r\n"
                          + PHRASE.encode() + b" quarantined\r\n", pipeline.Source("smtp", envelope_from=ME))])
    with app.db.session() as s:
        e = s.execute(select(SpoolEntry).order_by(SpoolEntry.id.desc()).limit(1)).scalar_one()
        e.status, e.error = "quarantined", "test: unparseable"
    return ids


def test_export_holds_their_mail_attachments_history_and_survey_but_no_internal_address(make_app, tmp_path):
    app = make_app()
    _story(app)
    out = tmp_path / "mei.zip"
    counts = export(app, ME.upper(), out)
    assert counts["tickets"] == 2 and counts["attachments"] == 1 and counts["unfiled"] == 1
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
        person = json.loads(z.read("person.json"))
        everything = b"".join(z.read(n) for n in names)
        assert "README.txt" in names and b"tickets/<REF>/messages/NNN-in.eml" in z.read("README.txt")
        [mine] = [n for n in names if n.endswith("001-in.eml") and PHRASE.encode() in z.read(n)]
        ref = mine.split("/")[1]
        assert z.read(f"tickets/{ref}/attachments/001-trace.bin") == FILE_BYTES
        ticket = json.loads(z.read(f"tickets/{ref}/ticket.json"))
        assert ticket["your_roles"] == ["requester"] and ticket["status"] == "resolved"
        assert {h["what"] for h in ticket["history"]} >= {"created", "status"}
        assert any(n.startswith(f"tickets/{ref}/messages/") and n.endswith("-out.eml") for n in names)
        assert [n for n in names if n.startswith("unfiled/")]
    assert person["address"] == ME and NAME in person["names"]
    assert person["survey_answers"][0]["comment"] == COMMENT
    for staff in ("alice@support.example.com", "bob@support.example.com", "carol@support.example.com"):
        assert staff.encode() not in everything  # an engineer's own address never reaches a customer
    assert b"zed@elsewhere" not in everything and b"printer is jammed" not in everything
    with app.db.session() as s:
        [audit] = s.execute(select(AuditEntry)).scalars()
        assert audit.kind == "customer_exported" and ME not in json.dumps(audit.data)


def _everything(app) -> bytes:
    """Every value of every row of every table, and every file under the data folder."""
    chunks = []
    with app.db.session() as s:
        for table in Base.metadata.sorted_tables:
            for row in s.execute(table.select()).all():
                for v in row:
                    chunks.append(v if isinstance(v, bytes)
                                  else json.dumps(v, default=str, ensure_ascii=False).encode())
    for f in Path(app.config.data_dir).rglob("*"):
        if f.is_file() and not f.name.startswith("supportgw.db"):
            chunks.append(f.read_bytes())
    return b"\n".join(chunks)


def test_erase_leaves_nothing_searchable_and_keeps_the_figures(make_app):
    app = make_app()
    ids = _story(app)
    before = _everything(app)
    for needle in (ME, NAME, PHRASE, COMMENT):
        assert needle.encode() in before, needle  # the test would see it if it stayed
    assert FILE_BYTES in before
    counts = erase(app, ME)
    assert counts["tickets_anonymised"] == 1 and counts["spool_rows_deleted"] >= 1
    after = _everything(app)
    for needle in (ME.encode(), NAME.encode(), PHRASE.encode(), COMMENT.encode(), FILE_BYTES,
                   ME.upper().encode(), NAME.lower().encode()):
        assert needle.lower() not in after.lower(), needle
    if not TEST_DB:  # the database file itself: deleted rows must not linger in free pages
        db_file = Path(app.db.url.split("///", 1)[1])
        raw = b"".join(p.read_bytes() for p in db_file.parent.glob(db_file.name + "*"))  # with -wal, -shm
        assert ME.encode() not in raw and PHRASE.encode() not in raw and FILE_BYTES not in raw
    with app.db.session() as s:
        shell = s.get(Ticket, ids[ME])
        assert (shell.status, shell.requester_email, shell.subject) == ("resolved", "erased@erased.invalid", "[erased]")
        other = s.get(Ticket, ids[OTHER])
        assert other.subject == "Printer" and other.requester_email == OTHER
        colleague = s.get(Ticket, ids[COLLEAGUE])
        [first] = s.execute(select(Message).where(Message.ticket_id == colleague.id).limit(1)).scalars()
        assert "VPN down again" in first.text and "[erased]" in first.text
        [audit] = s.execute(select(AuditEntry).where(AuditEntry.kind == "customer_erased")).scalars()
        assert ME not in json.dumps(audit.data) and NAME not in json.dumps(audit.data)
    with pytest.raises(LookupError):  # a second erase finds nothing
        erase(app, ME)


def test_erase_finds_a_name_in_another_script_inside_json_values_too(make_app):
    """A customer named in Chinese: their name is in text and JSON columns (the acknowledgement's
    draft greets them) of their ticket and of a colleague's; none of it stays, whatever the JSON
    columns' text looks like (storage.types.json_text writes UTF-8, the stdlib wrote \\u escapes)."""
    app = make_app()
    me, name = "chen.meixiu@orbital-demo.example", "陈美秀"
    deliver(app, _mail(me, name, "批处理失败", f"批处理失败了。\n\n{name}\n"))
    deliver(app, _mail(COLLEAGUE, "Olaf Berg", "Our VPN", f"Ask {name} ({me}) for the logs.\n", cc=me))
    flush(app)
    before = _everything(app)
    assert name.encode() in before
    erase(app, me)
    after = _everything(app)
    assert name.encode() not in after and me.encode() not in after


def test_the_commands_ask_before_erasing_and_refuse_bad_input(tmp_path):
    from tests.conftest import fresh_database_url
    from tests.gwproc import write_run_config
    from tests.hardening import cli

    cfg, _ = write_run_config(tmp_path, fresh_database_url(tmp_path), 25)
    eml = tmp_path / "m.eml"
    eml.write_bytes(_mail(ME, NAME, "Orbital batch fails", f"{PHRASE}\n"))
    assert cli(cfg, "ingest", str(eml)).returncode == 0
    bad = cli(cfg, "customer", "export", "not-an-address", "-o", str(tmp_path / "x.zip"))
    assert bad.returncode == 2 and bad.stderr.strip() == "supportgw: 'not-an-address' is not an email address"
    asked = cli(cfg, "customer", "erase", ME)
    assert asked.returncode == 1 and "run again with --yes" in asked.stdout and "1 ticket(s) opened" in asked.stdout
    done = cli(cfg, "customer", "export", ME, "-o", str(tmp_path / "mei.zip"))
    assert done.returncode == 0 and zipfile.is_zipfile(tmp_path / "mei.zip"), done.stderr
    again = cli(cfg, "customer", "export", ME, "-o", str(tmp_path / "mei.zip"))
    assert again.returncode == 2 and "exists" in again.stderr
    erased = cli(cfg, "customer", "erase", ME, "--yes")
    assert erased.returncode == 0 and erased.stdout.startswith(f"erased {ME}: tickets anonymised: 1")
    assert cli(cfg, "customer", "export", ME, "-o", str(tmp_path / "none.zip")).returncode == 1
    log = cli(cfg, "retention", "log")
    assert "customer_erased" in log.stdout and ME not in log.stdout


PAT = "pat@partner-demo.example"
QUINN = "quinn@partner-demo.example"
BIG_PHRASE = "saffron-lattice-2209"


def _encoded_b(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


def _raw_mail(frm, headers: str, body: str) -> bytes:
    return (f"From: {frm}\r\nTo: support@support.example.test\r\n{headers}"
            f"Message-ID: {make_msgid(domain='partner-demo.example')}\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n").encode()


def _others_naming_her(app):
    """Other people's mail naming Mei: a large one (kept as a spool blob file) with her name in an
    encoded Cc and in the body, a small one with her name split over two encoded words."""
    filler = "".join(f"line {i:06d} of the long trace, nothing personal here\r\n" for i in range(4000))
    big = _raw_mail(PAT, f"Subject: Big trace\r\nCc: {_encoded_b(NAME)} <{ME}>\r\n",
                    f"{NAME} saw {BIG_PHRASE} first.\r\n{filler}")
    small = _raw_mail(QUINN, f"Subject: Also\r\nCc: =?utf-8?q?{NAME.split()[0]}?=\r\n =?utf-8?q?_{NAME.split()[1]}?= <{ME}>\r\n",
                      "See my colleague on Cc.")
    sink = SpoolSink(app.spool_blobs, inline_max=app.config.gateway.spool_inline_max)
    sink.write(big)
    stored = sink.finish()
    assert not isinstance(stored, bytes)  # the test is about a file-backed one
    deliver(app, stored)
    deliver(app, small)
    flush(app)
    # a stranger's large mail naming her that made no ticket (quarantined): it goes, file and all
    sink = SpoolSink(app.spool_blobs, inline_max=app.config.gateway.spool_inline_max)
    sink.write(_raw_mail("someone@stranger-demo.example", "Subject: about her\r\n", f"Ask {NAME}.\r\n{filler}"))
    held = sink.finish()
    pipeline.spool(app, [(held, pipeline.Source("smtp", envelope_from="someone@stranger-demo.example"))])
    with app.db.session() as s:
        e = s.execute(select(SpoolEntry).where(SpoolEntry.sha256 == held.sha256)).scalar_one()
        e.status, e.error = "quarantined", "test: unparseable"
    return stored.sha256, held.sha256


def _encoded_words(data: bytes) -> str:
    """Every RFC 2047 run in `data`, decoded: what a search of decoded headers would find."""
    from email.header import decode_header, make_header

    runs = re.findall(rb"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=(?:\s+=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=)*", data)
    return "\n".join(str(make_header(decode_header(r.decode()))) for r in runs)


def test_erase_scrubs_others_large_mail_on_disk_and_names_in_encoded_headers(make_app):
    app = make_app(gateway={"spool_inline_max": 64 * 1024})
    _story(app)
    sha, held = _others_naming_her(app)
    blob = app.spool_blobs.path_for(sha)
    assert app.spool_blobs.path_for(held).exists()
    assert BIG_PHRASE.encode() in blob.read_bytes() and ME.encode() in blob.read_bytes()
    assert NAME in _encoded_words(_everything(app))  # both encoded forms are there to be found
    erase(app, ME)
    after = _everything(app)
    for needle in (ME, NAME):
        assert needle.lower().encode() not in after.lower(), needle
        assert needle.lower() not in _encoded_words(after).lower(), needle
    assert not blob.exists()  # the old file is gone; the scrubbed copy is another blob
    assert not app.spool_blobs.path_for(held).exists()
    with app.db.session() as s:
        big = s.execute(select(SpoolEntry).where(SpoolEntry.raw.is_(None))).scalar_one()
        kept = app.spool_blobs.path_for(big.sha256).read_bytes()
        assert big.size == len(kept) and big.sha256 == hashlib.sha256(kept).hexdigest()
        assert b"line 003999 of the long trace" in kept and BIG_PHRASE.encode() in kept  # Pat's mail stays
        assert b"[erased] saw" in kept
    if not TEST_DB:
        db_file = Path(app.db.url.split("///", 1)[1])
        raw = b"".join(p.read_bytes() for p in db_file.parent.glob(db_file.name + "*"))
        assert ME.encode() not in raw and NAME.encode() not in raw
        assert NAME.lower() not in _encoded_words(raw).lower()


def _no_other_snapshot(app, timeout: float = 60.0) -> None:
    """VACUUM FULL keeps a dead row that a transaction still running anywhere on the server may
    see (one still connecting counts for every database): on a busy shared server, wait until
    no other backend holds a snapshot, so what is left in the files is the erase's doing."""
    deadline = time.monotonic() + timeout
    with app.db.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        while time.monotonic() < deadline and conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                "AND (backend_xmin IS NOT NULL OR backend_xid IS NOT NULL)")).scalar():
            time.sleep(0.2)


def test_erase_on_postgresql_leaves_no_dead_tuple_in_the_table_files(make_app):
    """A plain VACUUM only marks dead tuples' space reusable: their bytes stay in the pages.
    Runs on PostgreSQL whichever backend the suite uses (the SQLite file is checked above)."""
    app = make_app(backend="postgresql")
    _story(app)
    _no_other_snapshot(app)
    erase(app, ME)
    with app.db.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(text("CHECKPOINT"))  # every page on disk, as a copy of the data folder would see it
        paths = conn.execute(text(
            "SELECT pg_relation_filepath(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname IN ('public', 'pg_toast') AND c.relkind IN ('r', 't', 'i') "
            "AND pg_relation_filepath(c.oid) IS NOT NULL AND "
            "(n.nspname = 'public' OR c.oid IN (SELECT reltoastrelid FROM pg_class WHERE relnamespace = "
            "'public'::regnamespace) OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid IN "
            "(SELECT reltoastrelid FROM pg_class WHERE relnamespace = 'public'::regnamespace)))")).scalars().all()
        assert len(paths) > 20
        files = b"".join(bytes(conn.execute(text("SELECT pg_read_binary_file(:p)"), {"p": p}).scalar())
                         for p in paths)
    assert b"orbital-demo.example" in files  # the colleague's address is still there: the test can see bytes
    for needle in (ME, PHRASE, COMMENT, NAME):
        assert needle.encode() not in files, needle
    assert FILE_BYTES not in files


def _decoded_text_parts(app) -> str:
    """The text of every text part of every raw mail kept (spool, outbox, sent Maildir), decoded
    from base64 and quoted-printable: what a reader of the mail sees, not its bytes."""
    from email import message_from_bytes

    raws = []
    with app.db.session() as s:
        raws += [r for r in s.execute(text("SELECT raw FROM spool")).scalars() if r]
        raws += [r for r in s.execute(text("SELECT raw FROM outbox")).scalars() if r]
    raws += [f.read_bytes() for f in (Path(app.config.data_dir) / "sent").rglob("*") if f.is_file()]
    out = []
    for raw in raws:
        for part in message_from_bytes(raw).walk():
            if part.get_content_maintype() == "text" and not part.is_multipart():
                out.append((part.get_payload(decode=True) or b"").decode(part.get_content_charset() or "utf-8",
                                                                          "replace"))
    return "\n".join(out)


def test_erase_reaches_others_mail_bodies_sent_base64_or_quoted_printable(make_app):
    """A colleague names Mei in mail whose text is not in its bytes as written: a base64 body (with
    an HTML alternative), and a quoted-printable one whose soft line break falls inside her name."""
    app = make_app()
    _story(app)
    b64 = EmailMessage()
    b64["From"], b64["To"], b64["Subject"] = f"Pat <{PAT}>", "support@support.example.test", "Übergabe"
    b64["Message-ID"] = make_msgid(domain="partner-demo.example")
    b64.set_content(f"Grüße! Bitte {NAME} fragen, {ME}.\n", cte="base64")
    b64.add_alternative(f"<p>Grüße! Bitte <b>{NAME}</b> fragen.</p>\n", subtype="html", cte="base64")
    qp = EmailMessage()
    qp["From"], qp["To"], qp["Subject"] = f"Quinn <{QUINN}>", "support@support.example.test", "Notes"
    qp["Message-ID"] = make_msgid(domain="partner-demo.example")
    qp.set_content("é" + "x" * 66 + f" {NAME} knows; mail {ME}.\n", cte="quoted-printable")
    assert NAME.encode() not in qp.as_bytes() and NAME.encode() not in b64.as_bytes()  # hidden in the bytes
    deliver(app, b64.as_bytes())
    deliver(app, qp.as_bytes())
    flush(app)
    assert NAME in _decoded_text_parts(app)
    erase(app, ME)
    seen = _decoded_text_parts(app).lower()
    assert NAME.lower() not in seen and ME not in seen
    assert "grüße! bitte [erased] fragen" in seen and "[erased] knows" in seen  # the rest of the mail is kept
    with app.db.session() as s:  # and the raw mail still reads as mail
        raws = [r for r in s.execute(text("SELECT raw FROM spool WHERE raw IS NOT NULL")).scalars() if r]
    from email import message_from_bytes

    subjects = {str(message_from_bytes(r)["Subject"]) for r in raws}
    assert "Notes" in subjects


def test_erase_reaches_outbound_mail_built_with_its_bytes_on_a_ticket_she_is_not_on(make_app):
    """An engineer answers Zed (whose ticket Mei is not on) with a text attachment and a body that
    name her: that mail is kept as bytes (`outbox.raw`), its text part quoted-printable, and erase
    must find her there too, while the rest of Zed's mail stays."""
    from gateway import outbox
    from templates import Rendered

    app = make_app()
    ids = _story(app)
    notes = f"Handover notes: {NAME} <{ME}> saw {BIG_PHRASE} first.\n".encode()
    with app.db.session() as s:
        zed = s.get(Ticket, ids[OTHER])
        outbox.queue(app, s, kind="relay", ticket=zed, to=[OTHER],
                     rendered=Rendered("Re: Printer", "é" + "x" * 66 + f" {NAME} fixed ours; notes attached.\n", None),
                     attachments=[("notes.txt", "text/plain", notes)])
    with app.db.session() as s:
        [raw] = [r for r in s.execute(text("SELECT raw FROM outbox WHERE raw IS NOT NULL")).scalars() if r]
    assert NAME.encode() not in raw  # her name is hidden in the bytes: the test is about decoding them
    assert NAME in _decoded_text_parts(app) and ME in _decoded_text_parts(app)
    erase(app, ME)
    seen = _decoded_text_parts(app).lower()
    assert NAME.lower() not in seen and ME not in seen
    assert "[erased] fixed ours" in seen and BIG_PHRASE in seen  # Zed's mail is kept, as mail
    after = _everything(app).lower()
    assert ME.encode() not in after and NAME.lower().encode() not in after
    with app.db.session() as s:  # and still goes to Zed
        [row] = [r for r in s.execute(select(OutboxRow).where(OutboxRow.raw.isnot(None))).scalars() if r.raw]
        assert row.to == [OTHER] and OTHER.encode() in row.raw
