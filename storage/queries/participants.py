"""Who is on a ticket: its requester's CCs and its watchers (`Participant` rows)."""

from __future__ import annotations

from sqlalchemy import bindparam, func, select

from storage.models import Participant
from storage.rows import read

# Participant rows are appended (storage.rows) and written before a query reads them, or
# for an engineer's #cc flushed with that engineer's message: the hot path asks with
# autoflush off. Built once: asked for every follow-up and every notification.
# Those asked with autoflush off are Core statements (table columns): the same query
# without the ORM's per-query cost.
_P = Participant.__table__.c
_CCS = select(_P.email).where(_P.ticket_id == bindparam("ticket_id"), _P.role == "cc")
_WATCHERS = (select(_P.email).where(_P.ticket_id == bindparam("ticket_id"), _P.role == "watcher",
                                    _P.active.is_(True)).order_by(_P.id))
_ACTIVE = (select(Participant.email).where(Participant.ticket_id == bindparam("ticket_id"),
                                           Participant.role == bindparam("role"), Participant.active.is_(True))
           .order_by(Participant.id))
_NO_AUTOFLUSH = {"autoflush": False}


def cc_addresses(session, ticket_id: int) -> set[str]:
    """Every address ever CC'd on the ticket, active or not."""
    return set(read(session, _CCS, {"ticket_id": ticket_id}).scalars())


def active_ccs(session, ticket_id: int, *, autoflush: bool = True) -> list[str]:
    """The ticket's active CCs, in the order they joined. `autoflush=False` for a caller
    that knows no ORM change to a participant is pending (appended rows are written anyway)."""
    return list(session.execute(_ACTIVE, {"ticket_id": ticket_id, "role": "cc"},
                                execution_options={} if autoflush else _NO_AUTOFLUSH).scalars())


def watchers(session, ticket_id: int) -> list[str]:
    """The ticket's active watchers (staff), in the order they joined."""
    return list(read(session, _WATCHERS, {"ticket_id": ticket_id}).scalars())


# Built once: every message is threaded, and building a statement costs SQLAlchemy
# more than running it.
_ROLES = select(_P.role).where(_P.ticket_id == bindparam("ticket_id"), _P.email == bindparam("email"),
                               _P.active.is_(True))
_PEOPLE = select(_P.email).where(_P.ticket_id == bindparam("ticket_id"))


def active_roles(session, ticket_id: int, email: str) -> set[str]:
    """The roles `email` holds on the ticket now (requester, cc, watcher)."""
    return set(read(session, _ROLES, {"ticket_id": ticket_id, "email": email}, flush_for=(Participant,)).scalars())


def addresses(session, ticket_id: int) -> list[str]:
    """Everyone who is or was a participant of the ticket."""
    return list(read(session, _PEOPLE, {"ticket_id": ticket_id}, flush_for=(Participant,)).scalars())


def of_ticket(session, ticket_id: int, *, active_only: bool = False) -> list[Participant]:
    stmt = select(Participant).where(Participant.ticket_id == ticket_id)
    if active_only:
        stmt = stmt.where(Participant.active.is_(True))
    return list(session.execute(stmt).scalars())


def of_address(session, address: str) -> list[Participant]:
    """Every participant row of `address` (lower case; stored in any case)."""
    return list(session.execute(select(Participant).where(func.lower(Participant.email) == address)).scalars())


def roles_of(session, ticket_id: int, email: str) -> set[str]:
    """Every role `email` held on the ticket, active or not."""
    return set(session.execute(select(Participant.role).where(Participant.ticket_id == ticket_id,
                                                              Participant.email == email)).scalars())


def on_another_ticket(session, email: str, ticket_id: int) -> bool:
    """Has `email` (lower case) been a participant of any ticket but `ticket_id`?"""
    return session.execute(select(Participant.id).where(Participant.email == email,
                                                        Participant.ticket_id != ticket_id).limit(1)).first() is not None
