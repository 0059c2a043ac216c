"""Who is on a ticket: its requester's CCs and its watchers (`Participant` rows)."""

from __future__ import annotations

from sqlalchemy import bindparam, select

from storage.models import Participant

# Participant rows are appended (storage.rows) and written before a query reads them, or
# for an engineer's #cc flushed with that engineer's message: the hot path asks with
# autoflush off. Built once: asked for every follow-up and every notification.
_CCS = (select(Participant.email).where(Participant.ticket_id == bindparam("ticket_id"), Participant.role == "cc")
        .execution_options(autoflush=False))
_ACTIVE = (select(Participant.email).where(Participant.ticket_id == bindparam("ticket_id"),
                                           Participant.role == bindparam("role"), Participant.active.is_(True))
           .order_by(Participant.id))
_NO_AUTOFLUSH = {"autoflush": False}


def cc_addresses(session, ticket_id: int) -> set[str]:
    """Every address ever CC'd on the ticket, active or not."""
    return set(session.execute(_CCS, {"ticket_id": ticket_id}).scalars())


def active_ccs(session, ticket_id: int, *, autoflush: bool = True) -> list[str]:
    """The ticket's active CCs, in the order they joined. `autoflush=False` for a caller
    that knows no ORM change to a participant is pending (appended rows are written anyway)."""
    return list(session.execute(_ACTIVE, {"ticket_id": ticket_id, "role": "cc"},
                                execution_options={} if autoflush else _NO_AUTOFLUSH).scalars())


def watchers(session, ticket_id: int) -> list[str]:
    """The ticket's active watchers (staff), in the order they joined."""
    return list(session.execute(_ACTIVE, {"ticket_id": ticket_id, "role": "watcher"},
                                execution_options=_NO_AUTOFLUSH).scalars())
