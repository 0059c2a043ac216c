"""The per-message hot path's own statements: Core, built once, run in batches.

The pipeline (gateway/pipeline/process.py) runs these for every inbound message;
building a statement costs SQLAlchemy about twice what running it does, and the
ORM's unit of work costs more again, so what every message asks or writes the
same way is here, prepared once. Nothing here decides anything: the callers say
what to write, inside their own transaction.
"""

from __future__ import annotations

from sqlalchemy.orm import Session


def begin_writing(session: Session) -> None:
    """Open the session's transaction for writing now.

    On SQLite, Python's driver would begin it only before the first write, so that
    the reads before it (the batch's pending rows, threading look-ups) ran outside
    it; a batch of writes takes the write lock at once (BEGIN IMMEDIATE), as the
    first SAVEPOINT does (storage.db). PostgreSQL needs nothing."""
    conn = session.connection()
    if conn.dialect.name != "sqlite":
        return
    dbapi_conn = conn.connection.dbapi_connection
    if dbapi_conn is not None and not dbapi_conn.in_transaction:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
