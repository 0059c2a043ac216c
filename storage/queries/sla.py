"""SLA warnings and breaches already acted on (`SlaMark` rows)."""

from __future__ import annotations

from sqlalchemy import select

from storage.models import SlaMark


def marks_of(session, ticket_id: int) -> set[tuple[str, object]]:
    """(kind, deadline) of every mark on the ticket."""
    return {(k, d) for k, d in session.execute(select(SlaMark.kind, SlaMark.deadline)
                                               .where(SlaMark.ticket_id == ticket_id)).all()}
