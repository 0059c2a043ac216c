"""Tickets (`Ticket` rows): finding one by its reference, and the lists asked of them."""

from __future__ import annotations

from sqlalchemy import func, select

from storage.models import Ticket


def by_ref(session, ref: str) -> Ticket | None:
    """The ticket with this reference ("SUP-000123"; any case), or None."""
    return session.execute(select(Ticket).where(Ticket.ref == ref.upper())).scalar_one_or_none()


def open_of(session, requester: str, statuses) -> list[Ticket]:
    """The requester's tickets in one of `statuses`, oldest first."""
    return list(session.execute(select(Ticket).where(Ticket.requester_email == requester.lower(),
                                                     Ticket.status.in_(statuses)).order_by(Ticket.id)).scalars())


def newest(session, limit: int, *, status: str | None = None) -> list[Ticket]:
    """The `limit` newest tickets (in `status`, when given), newest first."""
    stmt = select(Ticket).order_by(Ticket.id.desc()).limit(limit)
    if status:
        stmt = stmt.where(Ticket.status == status)
    return list(session.execute(stmt).scalars())


def ids_in(session, statuses) -> list[int]:
    """The ids of the tickets in one of `statuses`, oldest first."""
    return list(session.execute(select(Ticket.id).where(Ticket.status.in_(statuses)).order_by(Ticket.id)).scalars())


def in_status(session, status: str, *, lock: bool = False) -> list[Ticket]:
    """The tickets in `status`, oldest first; `lock`: FOR UPDATE SKIP LOCKED (PostgreSQL),
    so that two processes running the same job take different tickets."""
    stmt = select(Ticket).where(Ticket.status == status).order_by(Ticket.id)
    if lock:
        stmt = stmt.with_for_update(skip_locked=True)
    return list(session.execute(stmt).scalars())


def requested_by(session, address: str) -> list[Ticket]:
    """The tickets `address` (lower case) opened, whatever the case it was stored in; oldest first."""
    return list(session.execute(select(Ticket).where(func.lower(Ticket.requester_email) == address)
                                .order_by(Ticket.id)).scalars())


def with_ids(session, ids) -> list[Ticket]:
    return list(session.execute(select(Ticket).where(Ticket.id.in_(ids)).order_by(Ticket.id)).scalars())


def queue(session, statuses, visible=True) -> list[Ticket]:
    """The desk's queue: tickets in `statuses` that the clause `visible` lets the reader see,
    by team, priority and age."""
    return list(session.execute(select(Ticket).where(Ticket.status.in_(statuses), visible)
                                .order_by(Ticket.team, Ticket.priority, Ticket.created_at)).scalars())


def queue_counts(session, statuses, visible=True) -> list[tuple[str, str, str, int]]:
    """(team, priority, status, how many) over the same tickets as `queue`."""
    return list(session.execute(select(Ticket.team, Ticket.priority, Ticket.status, func.count())
                                .where(Ticket.status.in_(statuses), visible)
                                .group_by(Ticket.team, Ticket.priority, Ticket.status)
                                .order_by(Ticket.team, Ticket.priority, Ticket.status)).all())
