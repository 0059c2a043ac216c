"""Engines and sessions for SQLite and PostgreSQL, through one code path.

Callers open one `Session` per unit of work (`with db.session() as s:`); nothing
here keeps a global session.
"""

from __future__ import annotations

import fcntl
import os
import re
import threading
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from storage import rows
from storage.types import json_text, json_value


class StorageUnavailable(Exception):
    """The database cannot take writes right now; the caller should ask the source to retry."""


def _sqlite_pragmas(dbapi_conn, _record):
    cur = dbapi_conn.cursor()
    # WAL lets readers run beside the one writer; FULL makes each commit survive power loss.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_savepoint_inside_a_transaction(conn: Connection, _name: str) -> None:
    """Open the transaction before the first SAVEPOINT of a session.

    Python's sqlite3 driver begins a transaction only before a write, and SQLite
    treats a SAVEPOINT outside a transaction as the start of one: RELEASE would then
    commit, so a batch would commit message by message, and work after a released
    savepoint (a week's report after claiming it) could be lost while the claim
    stays. A savepoint means writes are coming, so take the write lock now
    (IMMEDIATE): a read-then-write upgrade could otherwise fail at once with
    SQLITE_BUSY when another connection commits in between. Sent through the
    Connection, so that a locked database raises SQLAlchemy's OperationalError
    ("try again later"), like any other statement."""
    dbapi_conn = conn.connection.dbapi_connection
    if dbapi_conn is not None and not dbapi_conn.in_transaction:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, *, pool_size: int = 5, connect_timeout: int = 5) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 10, "check_same_thread": False},
                               json_serializer=json_text, json_deserializer=json_value)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "savepoint", _sqlite_savepoint_inside_a_transaction)
        return engine
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size * 2,
        pool_pre_ping=True,  # survive a restarted PostgreSQL without handing out dead connections
        pool_recycle=1800,
        connect_args={"connect_timeout": connect_timeout},
        json_serializer=json_text, json_deserializer=json_value,
    )


class _FileLock:
    """An exclusive flock shared by every process writing one SQLite file.

    SQLite's own busy handler sleeps up to 100 ms between retries, so a busy
    writer can starve the others; a kernel lock wakes the next waiter at once.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()

    @contextmanager
    def __call__(self) -> Iterator[None]:
        depth = getattr(self._local, "depth", 0)
        if depth:  # re-entrant within a thread
            self._local.depth = depth + 1
            try:
                yield
            finally:
                self._local.depth -= 1
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._local.depth = 1
            try:
                yield
            finally:
                self._local.depth = 0
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


class _ForegroundFlag:
    """Lets the SMTP edge go first on SQLite's single write lock.

    A client waiting for its 250 is foreground work; turning spooled mail into
    tickets is background work that can wait a moment. While the spool writer
    has mail to commit it holds a shared flock on this file (`held()`); before
    each message a processing worker calls `wait_quiet()`, which returns as soon
    as nobody holds it, or after `max_wait` seconds so that a steady flood of
    mail slows processing down but never stops it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def held(self) -> Iterator[None]:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)  # closing drops the lock

    def wait_quiet(self, max_wait: float = 0.5) -> bool:
        """True when the edge was quiet (or became quiet) within `max_wait` seconds."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + max_wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return True
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        return False
                    time.sleep(0.002)
        finally:
            os.close(fd)


class _NoFlag:
    """PostgreSQL: writers lock rows, not the database; nobody needs to wait."""

    @contextmanager
    def held(self) -> Iterator[None]:
        yield

    def wait_quiet(self, max_wait: float = 0.5) -> bool:
        return True


def try_again_later(exc: BaseException) -> bool:
    """Is this the database failing (locked, gone, refusing) rather than the work done on it?"""
    return isinstance(exc, StorageUnavailable) or (isinstance(exc, DBAPIError) and _unavailable(exc) is not None)


def _unavailable(exc: DBAPIError) -> StorageUnavailable | None:
    """StorageUnavailable ("try again later") when a database error is a lost or refused
    connection; None when it is some other error, which goes up as it is."""
    if isinstance(exc, OperationalError) or getattr(exc, "connection_invalidated", False):
        return StorageUnavailable(str(exc.orig) if exc.orig else str(exc))
    return None


class DatabaseUrlError(Exception):
    """The configured database cannot be used at all: what was tried, what failed and how to
    fix it, in one line (a mistake in the configuration, not a passing outage)."""


def check_url(url: str, *, connect_timeout: int = 5) -> None:
    """Connect once to `url`; raise `DatabaseUrlError` saying what is wrong if that fails."""
    try:
        engine = make_engine(url, pool_size=1, connect_timeout=connect_timeout)
    except Exception as exc:  # a URL SQLAlchemy cannot read, an unknown dialect, a missing driver
        raise DatabaseUrlError(_explain(url, exc, connect_timeout)) from None
    try:
        with engine.connect():
            pass
    except Exception as exc:
        raise DatabaseUrlError(_explain(url, exc, connect_timeout)) from None
    finally:
        engine.dispose()


def shown_url(url: str) -> str:
    """The URL as it may be printed: its password hidden."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def _explain(url: str, exc: BaseException, timeout: int) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    tried = f"tried {shown_url(url)}"
    example = "postgresql+psycopg://USER@HOST/DB, sqlite:////path/to/file.db, or empty for SQLite under data_dir"
    if isinstance(exc, NoSuchModuleError) or (isinstance(exc, ArgumentError) and "://" in url):
        scheme = url.split("://", 1)[0]
        if scheme.split("+")[0] in ("postgres", "pgsql", "psql"):
            fixed = "postgresql+psycopg://" + url.split("://", 1)[1]
            return f"{tried}: SQLAlchemy does not know '{scheme}://'; write {shown_url(fixed)}"
        if isinstance(exc, NoSuchModuleError):
            return f"{tried}: unknown kind of database '{scheme}'; write {example}"
    if isinstance(exc, ArgumentError):
        return f"{tried}: not a database URL; write {example}"
    if isinstance(exc, ImportError):
        module = getattr(exc, "name", "") or str(exc)
        scheme = url.split("://", 1)[0]
        if module == "psycopg2" and scheme.startswith("postgresql"):
            return (f"{tried}: '{scheme}://' means the psycopg2 driver, which is not installed; write "
                    f"{shown_url('postgresql+psycopg://' + url.split('://', 1)[1])} (psycopg 3 comes with supportgw)")
        return (f"{tried}: its driver '{module}' is not installed (pip install {module}); supportgw runs on "
                f"postgresql+psycopg:// and sqlite:///")
    reason = str(getattr(exc, "orig", None) or exc).strip()
    low = reason.lower()
    try:
        u = make_url(url)
        where = f"{u.host or 'localhost'}:{u.port or 5432}"
        user, db = u.username or "", u.database or ""
    except Exception:
        where, user, db = "?", "", ""
    if url.startswith("sqlite"):
        return (f"{tried}: cannot open the SQLite file ({reason.splitlines()[0]}); check that its folder "
                "exists and is writable, or fix the path")
    if "connection refused" in low:
        return f"{tried}: nothing accepts connections at {where} (connection refused); start PostgreSQL there or fix the host and port"
    if "resolve host" in low or "name or service not known" in low or "translate host name" in low or "nodename nor servname" in low:
        return f"{tried}: unknown host '{where.rsplit(':', 1)[0]}'; fix the host name"
    if "timeout expired" in low or "timed out" in low:
        return f"{tried}: no answer from {where} within {timeout} s (database.connect_timeout); check the host, port and firewall"
    if "password authentication failed" in low or "no password supplied" in low or ("role" in low and "does not exist" in low):
        return (f"{tried}: PostgreSQL refused user '{user}' ({_last_line(reason)}); fix the user name or password in "
                "the URL, or the server's pg_hba.conf")
    if "database" in low and "does not exist" in low:
        return f"{tried}: the database '{db}' does not exist; create it (createdb {db}) or fix its name in the URL"
    return f"{tried}: cannot connect ({_last_line(reason)})"


def _last_line(text: str) -> str:
    """psycopg's messages say 'connection failed: connection to server ... failed: FATAL:  <why>'."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line.rsplit("FATAL:", 1)[-1].strip() or line


class Database:
    def __init__(self, url: str, **kw) -> None:
        self.url = url
        self.engine = make_engine(url, **kw)
        self.Session = sessionmaker(self.engine, class_=rows.Session, expire_on_commit=False)
        path = url.split("///", 1)[-1] if url.startswith("sqlite") else ""
        if path and path != ":memory:":
            self.write_lock = _FileLock(Path(path + ".writelock"))
            self.foreground = _ForegroundFlag(Path(path + ".foreground"))
        else:
            self.write_lock = nullcontext  # PostgreSQL: row locks do the job
            self.foreground = _NoFlag()

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed on success, rolled back on error.

        Database errors come out as `StorageUnavailable` when they mean "try again later".
        """
        s = self.Session()
        try:
            yield s
            s.commit()
        except DBAPIError as exc:  # OperationalError is one
            s.rollback()
            if (unavailable := _unavailable(exc)) is None:
                raise
            raise unavailable from exc
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A Core transaction (no ORM unit of work), for the hot path of the edges.

        Committed on success; database errors come out as `StorageUnavailable` like `session()`.
        """
        try:
            with self.engine.begin() as conn:
                yield conn
        except DBAPIError as exc:  # OperationalError is one
            if (unavailable := _unavailable(exc)) is None:
                raise
            raise unavailable from exc

    def dispose(self) -> None:
        self.engine.dispose()
