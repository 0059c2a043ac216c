"""The audit log of data-rights and operations commands (`AuditEntry` rows)."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from storage.models import AuditEntry


def newest(session, limit: int) -> list[AuditEntry]:
    return list(session.execute(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)).scalars())


def totals(session, kinds: tuple[str, ...], start, end) -> tuple[Counter, Counter]:
    """For the entries of these kinds recorded in [start, end): how many of each kind, and the sum
    of each count their data holds (every value of an entry's data is a count)."""
    entries, sums = Counter(), Counter()
    for kind, data in session.execute(select(AuditEntry.kind, AuditEntry.data).where(
            AuditEntry.kind.in_(kinds), AuditEntry.at >= start, AuditEntry.at < end)):
        entries[kind] += 1
        sums.update({k: v for k, v in (data or {}).items() if isinstance(v, int) and not isinstance(v, bool)})
    return entries, sums
