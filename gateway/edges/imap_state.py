"""What an IMAP poller remembers in the database: per-mailbox progress.

`ImapState` holds (UIDVALIDITY, last processed UID) for a mailbox; the poller
moves it forward only after the messages are spooled *and* acknowledged on the
server. A lease (gateway/leases.py) makes sure one gateway process drains a mailbox at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.models import ImapState

@dataclass(frozen=True)
class Progress:
    uidvalidity: int
    last_uid: int


def load_progress(app, mailbox: str) -> Progress | None:
    with app.db.session() as s:
        row = s.get(ImapState, mailbox)
        return Progress(row.uidvalidity, row.last_uid) if row else None


def save_progress(app, mailbox: str, uidvalidity: int, last_uid: int) -> None:
    """Record progress; never moves last_uid backwards within one UIDVALIDITY."""
    with app.db.write_lock(), app.db.session() as s:
        row = s.get(ImapState, mailbox, with_for_update=not app.db.is_sqlite)
        if row is None:
            s.add(ImapState(mailbox=mailbox, uidvalidity=uidvalidity, last_uid=last_uid))
        elif row.uidvalidity != uidvalidity:
            row.uidvalidity, row.last_uid = uidvalidity, last_uid
        else:
            row.last_uid = max(row.last_uid, last_uid)


def mark_synced(app, mailbox: str, error: str = "") -> None:
    """Record a drain to the end (error "") or the error that stopped the mailbox, for health checks."""
    with app.db.write_lock(), app.db.session() as s:
        row = s.get(ImapState, mailbox, with_for_update=not app.db.is_sqlite)
        if row is None:
            row = ImapState(mailbox=mailbox, uidvalidity=0, last_uid=0)
            s.add(row)
        if error:
            row.last_error = error[:2000]
        else:
            row.synced_at, row.last_error = app.now(), ""
