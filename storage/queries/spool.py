"""Spooled mail (`SpoolEntry` rows) as the desk, the jobs and the command line ask about it;
spooling and settling rows is `storage/spool.py`."""

from __future__ import annotations

from sqlalchemy import select

from storage.models import SpoolEntry


def entries(session, ids) -> list[SpoolEntry]:
    """The spooled rows with these ids (in no particular order)."""
    return list(session.execute(select(SpoolEntry).where(SpoolEntry.id.in_(ids))).scalars())
