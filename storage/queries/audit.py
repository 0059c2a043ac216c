"""The audit log of data-rights and operations commands (`AuditEntry` rows)."""

from __future__ import annotations

from sqlalchemy import select

from storage.models import AuditEntry


def newest(session, limit: int) -> list[AuditEntry]:
    return list(session.execute(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)).scalars())
