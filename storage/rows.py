"""Append-only rows written straight to the database, without ORM objects.

Events, thread ids and participants are written once and found again by query;
nothing edits them in the transaction that creates them. Through the unit of
work each cost several times its INSERT (state tracking, flush ordering,
fetching the new id back), and a new ticket writes about ten. `append` runs a
Core INSERT on the session's connection instead: same transaction and savepoint,
visible to the next query, written in the order the calls are made.
"""

from __future__ import annotations

from sqlalchemy import insert
from sqlalchemy.orm import Session


def append(session: Session, model, **values) -> None:
    session.connection().execute(insert(model.__table__), values)


def unflushed(session: Session, model) -> list:
    """ORM objects of `model` added in this transaction and not written yet.

    A count that must include them can query with autoflush off and add these,
    instead of flushing the whole transaction first (one flush per message is
    the bulk of what storing it costs)."""
    return [o for o in session.new if isinstance(o, model)]
