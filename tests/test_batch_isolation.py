"""A batch is one transaction without a savepoint per message (gateway/pipeline/process.py):
a message that fails in the middle of it must still be quarantined alone, with nothing it
half did left behind, and the messages before and after it must become tickets as if it
had never been there. The worker's short turns must lose and repeat nothing."""

from __future__ import annotations

from sqlalchemy import select

from gateway.desk import notify
from gateway.pipeline import process as pipeline
from storage.models import Message, OutboxRow, Participant, SpoolEntry, Ticket
from storage.rows import append
from tests.mail import build


def _three(app):
    raws = [build(frm=f"c{i}@customer.example.com", subject=s, msgid=f"<batch-{i}@customer.example.com>")
            for i, s in enumerate(["First question", "POISON routing fails", "Third question"])]
    return pipeline.spool(app, [(raw, pipeline.Source("file")) for raw in raws])


def _poison_notification(monkeypatch):
    """The fault a broken template would be, after the ticket, its message and the
    acknowledgement are already written in the batch's transaction."""
    on_new_ticket = notify.on_new_ticket

    def failing(app, session, ticket, *a, **kw):
        if "POISON" in ticket.subject:
            raise RuntimeError("the notification template blew up")
        return on_new_ticket(app, session, ticket, *a, **kw)

    monkeypatch.setattr(notify, "on_new_ticket", failing)


def test_a_failing_message_mid_batch_is_quarantined_alone(app, monkeypatch):
    _poison_notification(monkeypatch)
    spooled = _three(app)
    counts = pipeline.process_ids(app, [sp.spool_id for sp in spooled])
    assert (counts["created"], counts["quarantined"]) == (2, 1)
    with app.db.session() as s:
        status = {e.message_id: (e.status, e.attempts) for e in s.execute(select(SpoolEntry)).scalars()}
        tickets = s.execute(select(Ticket.subject).order_by(Ticket.id)).scalars().all()
        stored = s.execute(select(Message.message_id)).scalars().all()
        mailed = s.execute(select(OutboxRow.ticket_id).distinct()).scalars().all()
        [error] = s.execute(select(SpoolEntry.error).where(SpoolEntry.status == "quarantined")).scalars()
    assert status == {"batch-0@customer.example.com": ("processed", 1),
                      "batch-1@customer.example.com": ("quarantined", 1),
                      "batch-2@customer.example.com": ("processed", 1)}
    assert tickets == ["First question", "Third question"]  # nothing of the poison's half-made ticket
    assert sorted(stored) == ["batch-0@customer.example.com", "batch-2@customer.example.com"]
    assert len(mailed) == 2
    assert "the notification template blew up" in error


def test_worker_turns_process_each_message_once(app, monkeypatch):
    monkeypatch.setattr(pipeline, "TURN_SECONDS", 0.0)  # every turn ends after one message
    spooled = _three(app)
    turns = []
    monkeypatch.setattr(pipeline, "_log_reports", lambda s: turns.append(len(s.info.get("mail_log", ()))))
    counts = pipeline.process_ids(app, [sp.spool_id for sp in spooled], per_message=True)
    assert counts["created"] == 3
    assert turns == [1, 1, 1]  # one transaction per message when the turn is that short
    with app.db.session() as s:
        assert s.execute(select(Ticket.id)).scalars().all() == [1, 2, 3]
        assert {e.attempts for e in s.execute(select(SpoolEntry)).scalars()} == {1}


def test_a_row_refused_at_the_end_of_a_batch_quarantines_that_message_alone(app, monkeypatch):
    """Appended rows (storage.rows) are written when a query reads their table, else at the
    commit: the last message's rows may be refused only there. They are written before the
    batch ends, where a refusal still runs the batch again message by message."""
    on_new_ticket = notify.on_new_ticket

    def twice(app, session, ticket, *a, **kw):
        out = on_new_ticket(app, session, ticket, *a, **kw)
        if "REFUSED" in ticket.subject:  # the requester a second time: the unique constraint says no
            append(session, Participant, ticket_id=ticket.id, email=ticket.requester_email, name="", role="requester")
        return out

    monkeypatch.setattr(notify, "on_new_ticket", twice)
    raws = [build(frm=f"c{i}@customer.example.com", subject=s, msgid=f"<end-{i}@customer.example.com>")
            for i, s in enumerate(["First question", "Second question", "Third question REFUSED"])]
    spooled = pipeline.spool(app, [(raw, pipeline.Source("file")) for raw in raws])
    counts = pipeline.process_ids(app, [sp.spool_id for sp in spooled])
    assert (counts["created"], counts["quarantined"]) == (2, 1), counts
    with app.db.session() as s:
        status = {e.message_id: e.status for e in s.execute(select(SpoolEntry)).scalars()}
        tickets = s.execute(select(Ticket.subject).order_by(Ticket.id)).scalars().all()
    assert status == {"end-0@customer.example.com": "processed", "end-1@customer.example.com": "processed",
                      "end-2@customer.example.com": "quarantined"}
    assert tickets == ["First question", "Second question"]
