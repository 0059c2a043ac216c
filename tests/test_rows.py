"""Appended rows (storage/rows.py): written in batches, yet every query sees them and
savepoints keep or drop them exactly as if each had been written at once.

Runs on SQLite and, with SUPPORTGW_TEST_DB set, on PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, func, select, text, update

from storage.models import Event, Participant, ThreadId, Ticket
from storage.rows import append, tables_read

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


def _ticket(s) -> Ticket:
    t = Ticket(requester_email="a@customer.example", created_at=NOW, updated_at=NOW)
    s.add(t)
    s.flush()
    return t


def _thread_ids(app, ticket_id: int) -> list[str]:
    with app.db.session() as s:
        return list(s.execute(select(ThreadId.message_id).where(ThreadId.ticket_id == ticket_id)
                              .order_by(ThreadId.id)).scalars())


def test_a_query_on_their_table_sees_them_and_other_tables_wait(app):
    with app.db.session() as s:
        t = _ticket(s)
        append(s, ThreadId, message_id="<1@x>", ticket_id=t.id, outbound=False)
        append(s, Event, ticket_id=t.id, at=NOW, kind="created", actor="x", detail="", data={})
        assert s.scalar(select(func.count(ThreadId.id)).where(ThreadId.ticket_id == t.id)) == 1
        # the event was not needed by that query: still waiting, and seen when asked for
        assert [tbl.name for tbl in s.info["appended_rows"]] == ["events"]
        assert s.scalars(select(Event.kind).where(Event.ticket_id == t.id)).all() == ["created"]


def test_commit_writes_them_in_the_order_they_were_appended(app):
    with app.db.session() as s:
        tid = _ticket(s).id
        for i in range(5):
            # differing column sets must not reorder rows (one executemany per run of equal keys)
            extra = {"outbound": True} if i % 2 else {}
            append(s, ThreadId, message_id=f"<{i}@x>", ticket_id=tid, **extra)
    assert _thread_ids(app, tid) == [f"<{i}@x>" for i in range(5)]


def test_a_rolled_back_savepoint_drops_its_rows_and_keeps_earlier_ones(app):
    with app.db.session() as s:
        tid = _ticket(s).id
        append(s, ThreadId, message_id="<before@x>", ticket_id=tid, outbound=False)
        with pytest.raises(RuntimeError):
            with s.begin_nested():
                append(s, ThreadId, message_id="<inside@x>", ticket_id=tid, outbound=False)
                raise RuntimeError("poison message")
        with s.begin_nested():
            append(s, ThreadId, message_id="<kept@x>", ticket_id=tid, outbound=False)
        with pytest.raises(RuntimeError):
            with s.begin_nested():  # a later failure must not take the released savepoint's rows
                append(s, ThreadId, message_id="<second-poison@x>", ticket_id=tid, outbound=False)
                s.execute(select(ThreadId.id)).all()  # written inside this savepoint, then rolled back
                raise RuntimeError("poison message")
    assert _thread_ids(app, tid) == ["<before@x>", "<kept@x>"]


def test_a_rolled_back_transaction_writes_nothing(app):
    with app.db.session() as s:
        tid = _ticket(s).id
    with pytest.raises(RuntimeError):
        with app.db.session() as s:
            append(s, ThreadId, message_id="<lost@x>", ticket_id=tid, outbound=False)
            raise RuntimeError("boom")
    with app.db.session() as s:  # a new transaction on a fresh session starts clean
        append(s, ThreadId, message_id="<next@x>", ticket_id=tid, outbound=False)
    assert _thread_ids(app, tid) == ["<next@x>"]


def test_a_change_to_their_table_comes_after_them(app):
    with app.db.session() as s:
        tid = _ticket(s).id
        append(s, Participant, ticket_id=tid, email="b@customer.example", name="B", role="cc")
        s.execute(update(Participant).where(Participant.ticket_id == tid).values(active=False))
    with app.db.session() as s:
        assert s.scalars(select(Participant.active).where(Participant.ticket_id == tid)).all() == [False]


@pytest.mark.parametrize("stmt, expected", [
    (select(Participant.email).where(Participant.ticket_id == 1), {"participants"}),
    (select(Ticket), {"tickets"}),
    (select(Ticket.id).where(Ticket.id.in_(select(ThreadId.ticket_id))), {"tickets", "thread_ids"}),
    (select(Ticket).join(Participant, Participant.ticket_id == Ticket.id), {"tickets", "participants"}),
    (update(Participant).values(active=False), {"participants"}),
    (delete(Event), {"events"}),
    (text("SELECT 1"), None),  # cannot tell: everything is written first
    (select(select(Event.id).subquery().c.id), None),
])
def test_tables_read(stmt, expected):
    assert tables_read(stmt) == expected


def test_a_released_savepoint_is_undone_when_its_transaction_rolls_back(app):
    """A savepoint opened before anything was written is still inside the session's
    transaction. SQLite's driver begins a transaction only before a write, so a SAVEPOINT
    sent first would be the transaction itself and its RELEASE a commit."""
    with pytest.raises(RuntimeError):
        with app.db.session() as s:
            s.execute(select(func.count(Ticket.id)))  # a read first, as a worker's batch does
            with s.begin_nested():
                s.add(Ticket(requester_email="undo@customer.example", created_at=NOW, updated_at=NOW))
            raise RuntimeError("the batch fails after this message's savepoint was released")
    with app.db.session() as s:
        assert s.scalar(select(func.count(Ticket.id))
                        .where(Ticket.requester_email == "undo@customer.example")) == 0


def test_savepoints_of_one_session_commit_together(app):
    """Every message of a batch lands in one commit, not one commit per message."""
    with app.db.session() as s:
        for i in range(3):
            with s.begin_nested():
                s.add(Ticket(requester_email=f"batch{i}@customer.example", created_at=NOW, updated_at=NOW))
        with app.db.session() as other:  # another connection sees none of them before the commit
            assert other.scalar(select(func.count(Ticket.id))
                                .where(Ticket.requester_email.like("batch%"))) == 0
    with app.db.session() as s:
        assert s.scalar(select(func.count(Ticket.id)).where(Ticket.requester_email.like("batch%"))) == 3


# --- read: the hot path's small reads without the ORM (raw on SQLite), update_later, insert_now

def _read_both(s, stmt, params):
    """rows.read's rows, and SQLAlchemy's own for the same statement and values."""
    from storage.rows import read

    got = read(s, stmt, params).all()
    return [tuple(r) for r in got], [tuple(r) for r in s.connection().execute(stmt, params).all()]


def test_read_binds_and_answers_as_sqlalchemy_does(app):
    from storage.queries.messages import _COUNT_FROM
    from storage.queries.participants import _WATCHERS

    from datetime import timedelta

    from storage.models import Message

    with app.db.session() as s:
        t = _ticket(s)
        for i, at in enumerate([NOW - timedelta(hours=2), NOW - timedelta(minutes=30), NOW]):
            s.add(Message(ticket_id=t.id, direction="in", kind="customer", message_id=f"<{i}@x>",
                          sender_email="a@customer.example", created_at=at))
        s.flush()
        append(s, Participant, ticket_id=t.id, email="w@support.example", name="", role="watcher")
        # a window that cuts the rows: the `since` value must be bound as SQLAlchemy binds it (a
        # time in another zone, stored in UTC), or the count differs
        since = (NOW - timedelta(hours=1)).astimezone(timezone(timedelta(hours=8)))
        mine, theirs = _read_both(s, _COUNT_FROM, {"sender": "a@customer.example", "since": since})
        assert mine == theirs == [(2,)]
        mine, theirs = _read_both(s, _WATCHERS, {"ticket_id": t.id})  # the appended row is seen
        assert mine == theirs == [("w@support.example",)]
        # IN lists (threading's look-up by Message-ID): one placeholder per value, whatever the length
        from storage.queries.threads import _BY_MESSAGE_ID

        for i in range(3):
            append(s, ThreadId, message_id=f"<{i}@x>", ticket_id=t.id, outbound=False)
        for ids in (["<1@x>"], ["<0@x>", "<nope@x>", "<2@x>"], ["<nope@x>"], [], ["<2@x>", "<1@x>"]):
            mine, theirs = _read_both(s, _BY_MESSAGE_ID, {"ids": ids})
            assert sorted(mine) == sorted(theirs) == sorted((m, t.id) for m in ids if m != "<nope@x>"), ids


def test_read_flushes_a_pending_change_to_what_it_reads_and_nothing_else(app):
    from storage.models import Message
    from storage.rows import read
    from gateway.pipeline.process import _STORED

    with app.db.session() as s:
        t = _ticket(s)
        s.add(Message(ticket_id=t.id, direction="in", kind="customer", message_id="<m@x>",
                      sender_email="a@customer.example", created_at=NOW))
        params = {"message_id": "<m@x>", "sender": "a@customer.example"}
        assert read(s, _STORED, params).first() is None  # no flush asked for: not written yet
        assert read(s, _STORED, params, flush_for=(ThreadId,)).first() is None  # not what it reads
        assert read(s, _STORED, params, flush_for=(Message,)).first() is not None


def test_update_later_is_written_with_the_rows_and_dropped_with_a_savepoint(app):
    from storage.models import SpoolEntry
    from storage.rows import update_later

    with app.db.session() as s:
        e = SpoolEntry(source="file", received_at=NOW, size=1, sha256="x", message_id="", dedupe_key="k1",
                       raw=b"x", status="pending")
        s.add(e)
        s.flush()
        savepoint = s.begin_nested()
        update_later(s, SpoolEntry, e.id, status="quarantined", attempts=1)
        savepoint.rollback()
        at = NOW.astimezone(timezone(timedelta(hours=-5)))  # bound as its type binds it: stored in UTC
        update_later(s, SpoolEntry, e.id, status="processed", attempts=1, processed_at=at)
        # a query of the table writes it first
        assert s.execute(text("SELECT status, attempts FROM spool WHERE id = :i"), {"i": e.id}).one() == (
            "processed", 1)
        assert e.status == "pending"  # the loaded object is left as it was
        got = s.execute(select(SpoolEntry.processed_at).where(SpoolEntry.id == e.id)).scalar_one()
        assert got == at and got.utcoffset() == timedelta(0)


def test_insert_now_writes_the_row_at_once_and_keeps_the_object_loaded(app):
    from sqlalchemy import event

    from storage import hot

    with app.db.session() as s:
        t = Ticket(requester_email="a@customer.example", created_at=NOW, updated_at=NOW)
        t.id = hot.next_id(s, Ticket)
        t.ref = f"TS-{t.id:06d}"
        hot.insert_now(s, t)
        sent: list[str] = []
        event.listen(s.connection(), "before_cursor_execute", lambda *a: sent.append(a[2]))
        assert (t.status, t.tags, t.first_responded_at) == ("new", [], None)  # defaults, no load
        assert s.execute(text("SELECT ref FROM tickets WHERE id = :i"), {"i": t.id}).scalar_one() == t.ref
        t.status = "open"
        s.flush()
        assert [q.split()[0] for q in sent] == ["SELECT", "UPDATE"]  # no reload of the row
    with app.db.session() as s:
        assert s.get(Ticket, t.id).status == "open"


def test_hot_get_loads_a_ticket_as_the_orm_does(app):
    """storage.hot.get: on SQLite a ticket not in the session is read past the ORM; the object
    must hold what the ORM's own load holds (times aware, JSON and booleans decoded), be a loaded
    row of the session (a change to it one UPDATE), and be the one object for its id."""
    from sqlalchemy import event, inspect

    from storage import hot

    with app.db.session() as s:
        t = _ticket(s)
        t.tags, t.held, t.first_response_due = ["vpn", "客户"], True, NOW
        tid = t.id
    columns = [a.key for a in inspect(Ticket).column_attrs]
    with app.db.session() as s:
        theirs = {k: getattr(s.get(Ticket, tid), k) for k in columns}
    with app.db.session() as s:
        mine = hot.get(s, Ticket, tid)
        assert {k: getattr(mine, k) for k in columns} == theirs
        assert mine.first_response_due.utcoffset() == timedelta(0) and mine.held is True
        assert hot.get(s, Ticket, tid) is mine and s.get(Ticket, tid) is mine
        assert hot.get(s, Ticket, 10**9) is None and hot.get(s, Ticket, None) is None
        statements = []
        event.listen(s.get_bind(), "before_cursor_execute", lambda *a: statements.append(a[2]))
        mine.status = "open"
        s.flush()
        assert len(statements) == 1 and statements[0].startswith("UPDATE tickets SET status=")
    with app.db.session() as s:
        assert s.get(Ticket, tid).status == "open"


def test_the_driver_binds_timestamps_and_json_as_sqlalchemy_does():
    """storage.bulk.driver_bind: on SQLite (the only database whose values it binds itself), the
    direct processors write exactly SQLAlchemy's text, as storage.db sets the engine up, or stored
    times would compare and sort differently from those written through SQLAlchemy."""
    from sqlalchemy.dialects import sqlite

    from storage.bulk import driver_bind
    from storage.types import JSONType, UTCDateTime, json_text

    dialect = sqlite.dialect(json_serializer=json_text)
    for type_, values in (
        (UTCDateTime(), [NOW, NOW.replace(microsecond=7), datetime(999, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
                         datetime(2026, 12, 2, 1, 30, 0, 250, tzinfo=timezone(timedelta(hours=8)))]),
        (JSONType(), [{"to": ["李伟 <li@x.example>"], "n": 3, "ok": True}, [], "text", {"1": None}]),
    ):
        theirs = type_.dialect_impl(dialect).bind_processor(dialect)
        mine = driver_bind(type_, dialect)
        assert mine is not theirs
        for v in values:
            assert mine(v) == theirs(v), v
    with pytest.raises(ValueError, match="naive datetime"):
        driver_bind(UTCDateTime(), dialect)(datetime(2026, 12, 2, 9, 0))
