"""A ticket's history (`Event` rows, written by `storage.history.record_event`)."""

from __future__ import annotations

from sqlalchemy import bindparam, select

from storage.models import Event
from storage.rows import read

_E = Event.__table__.c
# Built once, on table columns: asked for every customer follow-up (gateway.desk.send_later)
_ANY_OF_KIND = select(_E.id).where(_E.ticket_id == bindparam("ticket_id"), _E.kind == bindparam("kind")).limit(1)


def any_of(session, ticket_id: int, kind: str) -> bool:
    """The ticket has an event of `kind` (events are appended rows: written before this reads)."""
    return read(session, _ANY_OF_KIND, {"ticket_id": ticket_id, "kind": kind}).first() is not None


def of_ticket(session, ticket_id: int, kinds=None, *, actor: str | None = None,
              newest_first: bool = False) -> list[Event]:
    """The ticket's events (of `kinds`, a name or several; by `actor`), oldest first unless `newest_first`."""
    stmt = select(Event).where(Event.ticket_id == ticket_id)
    if isinstance(kinds, str):
        stmt = stmt.where(Event.kind == kinds)
    elif kinds is not None:
        stmt = stmt.where(Event.kind.in_(tuple(kinds)))
    if actor is not None:
        stmt = stmt.where(Event.actor == actor)
    return list(session.execute(stmt.order_by(Event.id.desc() if newest_first else Event.id)).scalars())


def newest(session, ticket_id: int, kind: str) -> Event | None:
    """The ticket's newest event of `kind`."""
    return session.execute(select(Event).where(Event.ticket_id == ticket_id, Event.kind == kind)
                           .order_by(Event.id.desc()).limit(1)).scalars().first()


def since(session, ticket_id: int, kind: str, at) -> list[Event]:
    """The ticket's events of `kind` at `at` or later (all of them when `at` is None), oldest first."""
    stmt = select(Event).where(Event.ticket_id == ticket_id, Event.kind == kind)
    if at is not None:
        stmt = stmt.where(Event.at >= at)
    return list(session.execute(stmt.order_by(Event.id)).scalars())


def actors_and_data(session, ticket_id: int) -> list[tuple]:
    """(actor, data) of every event on the ticket, oldest first."""
    return list(session.execute(select(Event.actor, Event.data).where(Event.ticket_id == ticket_id)
                                .order_by(Event.id)).all())
