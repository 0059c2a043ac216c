"""Every Message-ID we have seen or sent, and its ticket (`ThreadId` rows)."""

from __future__ import annotations

from sqlalchemy import bindparam, delete, select, update

from storage.models import ThreadId
from storage.rows import read

# Built once (asked for every message threaded and every mail to staff); rows queued in
# this transaction are written before these read the table (storage.rows).
_T = ThreadId.__table__.c  # Core statements: none of the ORM's per-query cost (storage.rows.read)
_BY_MESSAGE_ID = select(_T.message_id, _T.ticket_id).where(_T.message_id.in_(bindparam("ids", expanding=True)))
_OF_TICKET = select(_T.message_id).where(_T.ticket_id == bindparam("ticket_id")).order_by(_T.id)


def tickets_of(session, message_ids: list[str]) -> list[tuple[str, int]]:
    """(Message-ID, ticket id) for each of `message_ids` we know."""
    return list(read(session, _BY_MESSAGE_ID, {"ids": message_ids}, flush_for=(ThreadId,)).all())


def message_ids_of(session, ticket_id: int) -> list[str]:
    """The ticket's Message-IDs, oldest first."""
    return list(read(session, _OF_TICKET, {"ticket_id": ticket_id}).scalars().all())


def known(session, message_id: str, *, ticket_id: int | None = None) -> bool:
    """We have seen or sent this Message-ID (on that ticket, when `ticket_id` is given)."""
    stmt = select(ThreadId.id).where(ThreadId.message_id == message_id)
    if ticket_id is not None:
        stmt = stmt.where(ThreadId.ticket_id == ticket_id)
    return session.execute(stmt).first() is not None


def move(session, source_id: int, target_id: int) -> None:
    """A merge: the source ticket's Message-IDs lead to the target (one row per Message-ID)."""
    known_ids = select(ThreadId.message_id).where(ThreadId.ticket_id == target_id)
    session.execute(delete(ThreadId).where(ThreadId.ticket_id == source_id, ThreadId.message_id.in_(known_ids)))
    session.execute(update(ThreadId).where(ThreadId.ticket_id == source_id).values(ticket_id=target_id))
