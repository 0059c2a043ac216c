"""Leases: one process of all the gateways on a database does a thing at a time.

A `Lease` row names the holder of, say, an IMAP mailbox (`imap:<name>`, gateway/edges/imap.py)
or a scheduler job (`job:<name>`, gateway/jobs/scheduler.py) and when its hold expires.

The lease is taken with a single conditional UPDATE (mine, or expired), then an
INSERT when no row exists yet; a concurrent INSERT loses on the primary key.
Both statements behave the same on SQLite (one writer at a time) and on
PostgreSQL (READ COMMITTED re-checks the WHERE clause on the row it waited for),
so two processes can never both believe they hold it. On SQLite the writes
also take the database's write lock, like every writer, so none of them waits
in SQLite's sleeping busy handler. Times come from
`app.now()`: gateways sharing a database must keep their clocks in sync (NTP).

A holder is named `host:pid` (`App.worker_id`, optionally `/suffix`). A lease held
by a process of this very host that no longer exists (a gateway killed and
restarted) is taken over at once, by a conditional UPDATE naming that dead
holder; a holder on another host keeps its lease until it expires, since we
cannot see its processes.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta

from sqlalchemy import insert, or_, update
from sqlalchemy.exc import IntegrityError

from storage.models import Lease
from storage.queries import leases as lease_rows

log = logging.getLogger("supportgw.lease")


def process_gone(holder: str, me: str) -> bool:
    """Is `holder` ("host:pid[/suffix]") a process of `me`'s host that no longer runs?

    False whenever we cannot know: another host, not our format, a pid that exists
    (even one reused by someone else: then the lease expires as usual)."""
    host, _, rest = holder.rpartition(":")
    if not host or host != me.rpartition(":")[0].split("/")[0] or holder == me:
        return False
    try:
        os.kill(int(rest.split("/", 1)[0]), 0)
    except ValueError:
        return False
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False
    return False


def take_lease(app, name: str, holder: str, seconds: float) -> bool:
    """Take or renew the lease `name` for `holder`; False while someone else holds it."""
    now = app.now()
    until = now + timedelta(seconds=seconds)
    with app.db.write_lock(), app.db.session() as s:
        res = s.execute(
            update(Lease)
            .where(Lease.name == name, or_(Lease.holder == holder, Lease.expires_at < now))
            .values(holder=holder, expires_at=until)
            .execution_options(synchronize_session=False)
        )
        if res.rowcount == 1:
            return True
        current = lease_rows.holder_of(s, name)
        if current is not None:
            if not process_gone(current, holder):
                return False
            taken = s.execute(
                update(Lease).where(Lease.name == name, Lease.holder == current)
                .values(holder=holder, expires_at=until).execution_options(synchronize_session=False))
            if taken.rowcount == 1:
                log.info("lease %s: its holder %s is a dead process of this host; taken over by %s",
                         name, current, holder)
            return taken.rowcount == 1
        try:
            with s.begin_nested():
                s.execute(insert(Lease).values(name=name, holder=holder, expires_at=until))
        except IntegrityError:
            return False  # another process inserted it first: it holds the lease
        return True


def release_lease(app, name: str, holder: str) -> None:
    """Give the lease up now (clean shutdown), so another process takes over at once."""
    with app.db.write_lock(), app.db.session() as s:
        s.execute(
            update(Lease).where(Lease.name == name, Lease.holder == holder)
            .values(expires_at=app.now() - timedelta(seconds=1))
            .execution_options(synchronize_session=False)
        )


def lease_holder(app, name: str) -> tuple[str, object] | None:
    with app.db.session() as s:
        row = s.get(Lease, name)
        return (row.holder, row.expires_at) if row else None
