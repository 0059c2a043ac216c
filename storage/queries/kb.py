"""The knowledge base (`KbArticle` rows)."""

from __future__ import annotations

from sqlalchemy import select

from storage.models import KbArticle


def newest_first(session):
    """Every article, newest first, read as it is iterated (a search scores them all)."""
    return session.execute(select(KbArticle).order_by(KbArticle.id.desc())).scalars()


def every(session):
    """Every article, in no particular order, read as it is iterated."""
    return session.execute(select(KbArticle)).scalars()
