"""The last sweep of an erasure (gateway/desk/customer_erase.py): every text and JSON column
of every table, searched for a needle and rewritten."""

from __future__ import annotations

from sqlalchemy import String, Text, cast, func, select, update
from sqlalchemy.types import JSON, LargeBinary

from storage.models import Base


def rewrite_containing(session, needle: str, rewrite) -> int:
    """Every text and JSON value of every table containing `needle` (lower case; matched
    case-insensitively with LIKE) is replaced by `rewrite(value)`; returns how many."""
    n = 0
    like = f"%{needle}%"
    for table in Base.metadata.sorted_tables:
        pk = list(table.primary_key.columns)
        for col in table.columns:
            if isinstance(col.type, LargeBinary) or col.primary_key:
                continue
            if isinstance(col.type, JSON):
                probe = func.lower(cast(col, Text))
            elif isinstance(col.type, (String, Text)):
                probe = func.lower(col)
            else:
                continue
            for row in session.execute(select(*pk, col).where(probe.like(like))).all():
                key, value = row[:-1], row[-1]
                session.execute(update(table).where(*(c == k for c, k in zip(pk, key)))
                                .values({col.name: rewrite(value)}))
                n += 1
    return n
