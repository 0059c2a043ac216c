"""Appended rows (storage/rows.py): written in batches, yet every query sees them and
savepoints keep or drop them exactly as if each had been written at once.

Runs on SQLite and, with SUPPORTGW_TEST_DB set, on PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timezone

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
