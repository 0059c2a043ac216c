"""The import's pool changes where the work is done, never what is stored.

`supportgw import` scans, parses and routes in a pool of processes that read the files
themselves, and the writer routes a conversation itself only when the pool guessed its first
customer message wrong. One process or several, the same history gives the same rows: tickets
(their refs, routing and dates), messages, spool rows, thread ids, participants, attachments
and events; and not one outbox row.
"""

from __future__ import annotations

import mailbox
from datetime import timedelta

from sqlalchemy import func, select

from bench import bench_config, history_corpus
from bench.corpus import generate
from gateway.app import build_app
from gateway.edges.import_sources import FileSource
from gateway.edges.importer import Importer
from parsers.message import parse_email
from storage.models import AttachmentRow, Event, Message, OutboxRow, Participant, SpoolEntry, ThreadId, Ticket
from tests.conftest import drop_database, fresh_database_url

# when the import ran, not what it imported
NOW_COLUMNS = {"received_at", "processed_at"}


def _rows(app) -> dict:
    out = {}
    with app.db.session() as s:
        for model in (Ticket, Message, SpoolEntry, ThreadId, Participant, AttachmentRow, Event):
            cols = [c for c in model.__table__.columns if c.name not in NOW_COLUMNS]
            rows = s.execute(select(*cols).order_by(model.__table__.c.id)).all()
            if model is Event:  # the "imported" event is dated by the import's own clock
                rows = [r for r in rows if r.kind != "imported"]
            out[model.__tablename__] = [tuple(r) for r in rows]
        assert s.scalar(select(func.count()).select_from(OutboxRow)) == 0
        # what the pool read from the files and parsed is the mail the spool keeps, as the live
        # parse reads it
        for raw, mid, sender, subject, text, html in s.execute(
                select(SpoolEntry.raw, Message.message_id, Message.sender_email, Message.subject, Message.text,
                       Message.html).join(Message, Message.spool_id == SpoolEntry.id)):
            e = parse_email(raw)
            assert (e.message_id, e.sender.email, e.subject, e.text, e.html) == (mid, sender, subject, text, html)
    return out


def _import(tmp_path, name, sources, workers):
    url = fresh_database_url(tmp_path / name)
    app = build_app(bench_config(tmp_path / name, database={"url": url}))
    try:
        counts = Importer(app, [FileSource(str(p)) for p in sources], close_after=timedelta(days=30),
                          workers=workers, batch=120).run()
        return counts, _rows(app)
    finally:
        app.db.dispose()
        drop_database(url)


def test_one_process_or_a_pool_the_history_is_stored_the_same(tmp_path):
    history_corpus.write(tmp_path / "hist", 150)
    box = mailbox.mbox(str(tmp_path / "generated.mbox"), create=True)
    for raw in generate(250):  # attachments, HTML, several languages
        box.add(raw)
    box.close()
    sources = [tmp_path / "hist" / "inbox.mbox", tmp_path / "hist" / "Sent", tmp_path / "generated.mbox"]
    one, rows_one = _import(tmp_path, "one", sources, workers=1)
    pool, rows_pool = _import(tmp_path, "pool", sources, workers=2)
    assert one["imported"] == pool["imported"] > 500 and one["transactions"] > 3
    assert rows_one["attachments"] and rows_one["tickets"]
    for table in rows_one:
        assert rows_one[table] == rows_pool[table], table
