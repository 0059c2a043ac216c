"""Spooled mail (`SpoolEntry` rows) as the desk, the jobs and the command line ask about it;
spooling and settling rows is `storage/spool.py`."""

from __future__ import annotations

from sqlalchemy import delete, func, select

from storage.models import Message, SpoolEntry, Ticket


def entries(session, ids) -> list[SpoolEntry]:
    """The spooled rows with these ids (in no particular order)."""
    return list(session.execute(select(SpoolEntry).where(SpoolEntry.id.in_(ids))).scalars())


def in_status(session, statuses, *, ids=None, reason: str | None = None, since=None) -> list[SpoolEntry]:
    """The rows in one of `statuses` (among `ids`; with this `reason`; received at `since` or
    later, when given), oldest first."""
    stmt = select(SpoolEntry).where(SpoolEntry.status.in_(tuple(statuses))).order_by(SpoolEntry.id)
    if ids is not None:
        stmt = stmt.where(SpoolEntry.id.in_(ids))
    if reason:
        stmt = stmt.where(SpoolEntry.reason == reason)
    if since is not None:
        stmt = stmt.where(SpoolEntry.received_at >= since)
    return list(session.execute(stmt).scalars())


SET_ASIDE = ("suspended", "dropped")  # the suspended area (gateway/handlers/suspend.py)


def set_aside_before(session, cutoff) -> list[tuple[int, str, bool]]:
    """(id, sha256, raw kept on disk) of the suspended area's rows received before `cutoff`."""
    return list(session.execute(select(SpoolEntry.id, SpoolEntry.sha256, SpoolEntry.raw.is_(None))
                                .where(SpoolEntry.status.in_(SET_ASIDE), SpoolEntry.reason != "",
                                       SpoolEntry.received_at < cutoff)).all())


def delete_rows(session, ids: list[int]) -> None:
    session.execute(delete(SpoolEntry).where(SpoolEntry.id.in_(ids)))


def blobs_still_named(session, sha256s) -> set[str]:
    """Which of these blob hashes some spooled row still names."""
    return set(session.execute(select(SpoolEntry.sha256).where(SpoolEntry.sha256.in_(sha256s))).scalars())


def set_aside_by_reason(session, *, processed_since=None, received=None) -> dict[str, int]:
    """The suspended area's mail per reason: processed since `processed_since`, or received in
    `received` = (start, end), most first."""
    stmt = select(SpoolEntry.reason, func.count()).where(SpoolEntry.status.in_(SET_ASIDE), SpoolEntry.reason != "")
    if processed_since is not None:
        stmt = stmt.where(SpoolEntry.processed_at >= processed_since)
    if received is not None:
        stmt = stmt.where(SpoolEntry.received_at >= received[0], SpoolEntry.received_at < received[1])
    return dict(session.execute(stmt.group_by(SpoolEntry.reason).order_by(func.count().desc())).all())


def known_dedupe_keys(session, keys) -> set[str]:
    """Which of these dedupe keys a spooled row already has (an import run twice)."""
    return set(session.execute(select(SpoolEntry.dedupe_key).where(SpoolEntry.dedupe_key.in_(keys))).scalars())


def outcomes(session, ids) -> list[tuple[int, str, str, str | None]]:
    """(spool id, Message-ID, status, ticket ref or None) of these rows, by id; the ticket
    is the stored message's (a handler that opened a ticket stored it there), else the row's.
    A row whose mail was stored more than once comes once per stored message."""
    return list(session.execute(select(SpoolEntry.id, SpoolEntry.message_id, SpoolEntry.status, Ticket.ref)
                                .outerjoin(Message, Message.spool_id == SpoolEntry.id)
                                .outerjoin(Ticket, Ticket.id == func.coalesce(Message.ticket_id, SpoolEntry.ticket_id))
                                .where(SpoolEntry.id.in_(ids)).order_by(SpoolEntry.id)).all())


def unfiled_from(session, address: str) -> list[SpoolEntry]:
    """Spooled mail from `address` (lower case; envelope sender in any case) on no ticket, oldest first."""
    return list(session.execute(select(SpoolEntry).where(func.lower(SpoolEntry.envelope_from) == address,
                                                         SpoolEntry.ticket_id.is_(None))
                                .order_by(SpoolEntry.id)).scalars())


def raw_kept(session, batch: int = 200):
    """(id, raw bytes) of every spooled row that keeps its bytes in the database, read `batch` at a time."""
    return session.execute(select(SpoolEntry.id, SpoolEntry.raw).where(SpoolEntry.raw.isnot(None))).yield_per(batch)


def file_backed(session) -> list[SpoolEntry]:
    """Rows whose raw bytes live in the spool blob store (large mail), oldest first."""
    return list(session.execute(select(SpoolEntry).where(SpoolEntry.raw.is_(None)).order_by(SpoolEntry.id)).scalars())
