"""The figures behind the health checks (gateway/edges/health.py) and /metrics
(gateway/metrics.py): counts and ages over the spool, the outbox and the SLA marks."""

from __future__ import annotations

from sqlalchemy import func, select

from storage.models import ImapState, OutboxRow, SlaMark, SpoolEntry


def spool_pending(session) -> tuple[int, object]:
    """(how many spooled rows wait, when the oldest of them came in)."""
    return tuple(session.execute(select(func.count(), func.min(SpoolEntry.received_at))
                                 .where(SpoolEntry.status == "pending")).one())


def spool_count(session, status: str) -> int:
    return session.scalar(select(func.count()).where(SpoolEntry.status == status))


def spool_by_status(session) -> dict[str, int]:
    return dict(session.execute(select(SpoolEntry.status, func.count()).group_by(SpoolEntry.status)).all())


def oldest_pending_spool(session):
    return session.scalar(select(func.min(SpoolEntry.received_at)).where(SpoolEntry.status == "pending"))


def outbox_failed_since(session, since) -> int:
    return session.scalar(select(func.count()).where(OutboxRow.status == "failed", OutboxRow.created_at >= since))


def outbox_oldest_due(session):
    """When the longest-waiting pending outbox row was due."""
    return session.scalar(select(func.min(OutboxRow.next_attempt_at)).where(OutboxRow.status == "pending"))


def outbox_by_kind_and_status(session) -> list[tuple[str, str, int]]:
    return list(session.execute(select(OutboxRow.kind, OutboxRow.status, func.count())
                                .group_by(OutboxRow.kind, OutboxRow.status)).all())


def sla_marks_by_kind(session) -> list[tuple[str, int]]:
    return list(session.execute(select(SlaMark.kind, func.count()).group_by(SlaMark.kind)).all())


def mailboxes_synced(session) -> dict[str, object]:
    """When each IMAP mailbox was last drained."""
    return {row.mailbox: row.synced_at for row in session.execute(select(ImapState)).scalars()}
