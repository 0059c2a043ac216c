"""The installation's marks (`InstallationMark` rows): read and written by gateway/runtime/installation.py."""

from __future__ import annotations

from sqlalchemy import select

from storage.models import InstallationMark


def marks(session) -> dict[str, str]:
    return dict(session.execute(select(InstallationMark.name, InstallationMark.value)).all())


def put(session, name: str, value: str, *, at, by: str) -> None:
    """Record (or replace) one mark."""
    row = session.get(InstallationMark, name)
    if row is None:
        session.add(InstallationMark(name=name, value=value, at=at, by=by))
    else:
        row.value, row.at, row.by = value, at, by
