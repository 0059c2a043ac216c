"""Append-only rows, written in batches.

Events, thread ids, participants and outbox rows are written once and found
again by query; nothing edits them in the transaction that creates them.
`append` keeps them with the session instead of writing each at once: one
message writes about fifteen, and each INSERT through SQLAlchemy costs far more
than the database's own work. They are written, each table's rows in one
executemany INSERT and in the order they were appended:

- before a query that reads (or changes) one of their tables, so every query
  still sees them (`do_orm_execute`; a textual query writes them all);
- before a savepoint starts and when it, or the transaction, commits, so they
  land in the savepoint or transaction they were appended in;

and a rollback (of the savepoint or the transaction) drops them with the rest.
`Session` below wires this in; `storage.db.Database` makes its sessions with it.
"""

from __future__ import annotations

from functools import cache
from itertools import groupby

from sqlalchemy import Table, event, insert
from sqlalchemy.orm import ORMExecuteState
from sqlalchemy.orm import Session as _OrmSession
from sqlalchemy.sql import visitors

_KEY = "appended_rows"


def append(session: _OrmSession, model, **values) -> None:
    session.info.setdefault(_KEY, {}).setdefault(model.__table__, []).append(values)


def unflushed(session: _OrmSession, model) -> list:
    """ORM objects of `model` added in this transaction and not flushed yet.

    A count that must include them can query with autoflush off and add these,
    instead of flushing the whole transaction first."""
    return [o for o in session.new if isinstance(o, model)]


def write(session: _OrmSession, tables: set[str] | None = None) -> None:
    """Write the appended rows now: all of them, or those of the named tables."""
    buffered = session.info.get(_KEY)
    if not buffered:
        return
    conn = session.connection()
    for table in [t for t in buffered if tables is None or t.name in tables]:
        rows = buffered.pop(table)
        # one executemany per run of rows naming the same columns (it takes one column set)
        for _, run in groupby(rows, key=lambda r: tuple(r)):
            conn.execute(_insert(table), list(run))


@cache
def _insert(table: Table):
    """The table's INSERT, built once (building costs SQLAlchemy more than running it)."""
    return insert(table)


def tables_read(statement) -> set[str] | None:
    """The names of the tables a statement reads or changes; None when it cannot be told
    (textual SQL, a column of a subquery or alias), which means all of them."""
    names: set[str] = set()
    for el in visitors.iterate(statement):
        kind = el.__visit_name__
        if kind == "table":
            names.add(el.name)
        elif kind in ("insert", "update", "delete"):
            names.add(el.table.name)
        elif kind == "textclause":
            return None
        elif kind == "column" and getattr(el, "table", None) is not None:
            if not isinstance(el.table, Table):
                return None
            names.add(el.table.name)
    return names


class Session(_OrmSession):
    """The ORM session, with appended rows written before each savepoint starts."""

    def begin_nested(self):
        write(self)  # rows of the enclosing transaction must not roll back with the savepoint
        return super().begin_nested()


_SHAPES: dict = {}  # statement shape -> tables_read(); shapes come from our code, so few
_UNKNOWN = object()


def _tables_read_cached(statement) -> set[str] | None:
    # The cache key describes a statement's shape without its parameter values and is
    # memoized on the statement, which SQLAlchemy needs it for anyway to find the compiled
    # form: a lookup by it costs a hash, walking the statement about 0.1 ms each query.
    key = statement._generate_cache_key()
    if key is None:
        return tables_read(statement)
    found = _SHAPES.get(key.key, _UNKNOWN)  # one lookup: another thread may clear it meanwhile
    if found is _UNKNOWN:
        if len(_SHAPES) > 2000:
            _SHAPES.clear()
        found = _SHAPES[key.key] = tables_read(statement)
    return found


@event.listens_for(Session, "do_orm_execute")
def _before_query(state: ORMExecuteState) -> None:
    buffered = state.session.info.get(_KEY)
    if buffered:
        read = _tables_read_cached(state.statement)
        if read is None or read & {t.name for t in buffered}:
            write(state.session, read)


@event.listens_for(Session, "before_commit")  # also called as a savepoint is released
def _before_commit(session: _OrmSession) -> None:
    write(session)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: _OrmSession, _previous) -> None:
    # what is buffered was appended inside the transaction or savepoint that rolled back:
    # a savepoint's start and end both write what came before
    session.info.pop(_KEY, None)
