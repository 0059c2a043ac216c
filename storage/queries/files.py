"""Files on disk that rows name: attachment files (`AttachmentRow.sha256`) and spooled mail
kept in the blob store (`SpoolEntry.sha256` with `raw` NULL). A file nothing names any more
may go (retention, erasure)."""

from __future__ import annotations

from sqlalchemy import select

from storage.models import AttachmentRow, SpoolEntry


def still_named(s, shas: set[str], *, spool: bool) -> set[str]:
    """Which of these file hashes a row still names: a spool row with its bytes in the blob
    store (`spool`), else an attachment row."""
    if spool:
        return set(s.execute(select(SpoolEntry.sha256).where(SpoolEntry.sha256.in_(shas),
                                                             SpoolEntry.raw.is_(None))).scalars())
    return set(s.execute(select(AttachmentRow.sha256).where(AttachmentRow.sha256.in_(shas))).scalars())
