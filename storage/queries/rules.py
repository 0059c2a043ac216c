"""Rules generations (`RulesGeneration` rows): what every gateway on a database runs.

These take a connection or a session (gateway/rules_sync.py reads them outside any ORM work)."""

from __future__ import annotations

from sqlalchemy import select

from storage.models import RulesGeneration

# Built once: every process asks at each rules poll.
_NEWEST = select(RulesGeneration.id, RulesGeneration.sha256).order_by(RulesGeneration.id.desc()).limit(1)


def newest(conn):
    """(id, sha256) of the newest generation, or None."""
    return conn.execute(_NEWEST).first()


def text_of(conn, generation: int):
    """(text, source) of that generation, or None."""
    return conn.execute(select(RulesGeneration.text, RulesGeneration.source)
                        .where(RulesGeneration.id == generation)).first()


def newest_text(conn):
    """(id, text, source) of the newest generation, or None."""
    return conn.execute(select(RulesGeneration.id, RulesGeneration.text, RulesGeneration.source)
                        .order_by(RulesGeneration.id.desc()).limit(1)).first()
