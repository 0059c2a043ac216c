"""Tickets (`Ticket` rows): finding one by its reference, and the lists asked of them."""

from __future__ import annotations

from sqlalchemy import select

from storage.models import Ticket


def by_ref(session, ref: str) -> Ticket | None:
    """The ticket with this reference ("SUP-000123"; any case), or None."""
    return session.execute(select(Ticket).where(Ticket.ref == ref.upper())).scalar_one_or_none()


def open_of(session, requester: str, statuses) -> list[Ticket]:
    """The requester's tickets in one of `statuses`, oldest first."""
    return list(session.execute(select(Ticket).where(Ticket.requester_email == requester.lower(),
                                                     Ticket.status.in_(statuses)).order_by(Ticket.id)).scalars())
