"""Leases (`Lease` rows): who does a thing for every gateway on a database (gateway/leases.py)."""

from __future__ import annotations

from sqlalchemy import select

from storage.models import Lease


def holder_of(session, name: str) -> str | None:
    return session.execute(select(Lease.holder).where(Lease.name == name)).scalar_one_or_none()
