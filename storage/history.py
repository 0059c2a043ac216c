"""A ticket's history: the events that explain what happened to it, and why.

Owns writing one (`record_event`): an `Event` row, appended in the caller's
transaction (storage.rows) with the state change it explains, so the history
never says something the ticket did not do. Reading it is the caller's query.
Must not: send anything (mail is gateway.outbox's).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from storage.models import Event, Ticket
from storage.rows import append


def record_event(session: Session, ticket: Ticket, kind: str, now, detail: str = "", actor: str = "system",
                 **data) -> None:
    """Add `kind` to the ticket's history at `now`: `detail` in words, `data` for machines."""
    append(session, Event, ticket_id=ticket.id, at=now, kind=kind, actor=actor, detail=detail, data=data)
