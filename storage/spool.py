"""The inbound spool: raw bytes committed before any source is acknowledged.

`add_many` writes a whole batch in one transaction (group commit) and tells,
for each message, whether it was new or a duplicate of one already spooled.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.models import SpoolEntry


@dataclass(frozen=True)
class Incoming:
    raw: bytes
    source: str
    message_id: str = ""
    envelope_from: str = ""
    envelope_to: tuple[str, ...] = ()


@dataclass(frozen=True)
class Spooled:
    spool_id: int
    duplicate: bool


def dedupe_key(message_id: str, sha256: str) -> str:
    return hashlib.sha256(f"{message_id}\x00{sha256}".encode()).hexdigest()


def _row(item: Incoming, now: datetime) -> SpoolEntry:
    digest = hashlib.sha256(item.raw).hexdigest()
    return SpoolEntry(
        source=item.source, received_at=now, size=len(item.raw), sha256=digest,
        message_id=item.message_id[:998], dedupe_key=dedupe_key(item.message_id, digest),
        envelope_from=item.envelope_from[:998], envelope_to=list(item.envelope_to), raw=item.raw,
        status="pending", error="", attempts=0,
    )


def add_many(session: Session, items: list[Incoming], now: datetime) -> list[Spooled]:
    """Insert new messages; duplicates (same Message-ID and content) point at the first copy."""
    rows = [_row(i, now) for i in items]
    keys = {r.dedupe_key for r in rows}
    existing = dict(session.execute(
        select(SpoolEntry.dedupe_key, SpoolEntry.id).where(SpoolEntry.dedupe_key.in_(keys))
    ).all()) if keys else {}
    result: list[Spooled | None] = [None] * len(rows)
    fresh: dict[str, SpoolEntry] = {}
    for i, r in enumerate(rows):
        if r.dedupe_key in existing or r.dedupe_key in fresh:
            continue
        fresh[r.dedupe_key] = r
    if fresh:
        try:
            with session.begin_nested():
                session.add_all(fresh.values())
                session.flush()
        except IntegrityError:
            # Another process spooled one of these at the same moment: go one by one.
            for key, r in list(fresh.items()):
                try:
                    with session.begin_nested():
                        session.add(r)
                        session.flush()
                except IntegrityError:
                    del fresh[key]
                    existing[key] = session.execute(
                        select(SpoolEntry.id).where(SpoolEntry.dedupe_key == key)).scalar_one()
    seen_new: set[str] = set()
    for i, r in enumerate(rows):
        k = r.dedupe_key
        if k in fresh and k not in seen_new:
            seen_new.add(k)
            result[i] = Spooled(fresh[k].id, duplicate=False)
        else:
            result[i] = Spooled(fresh[k].id if k in fresh else existing[k], duplicate=True)
    return result  # type: ignore[return-value]
