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

`update_later` keeps a row's UPDATE the same way (a spool row's outcome, written with
everything else the message changed): one executemany per table, written when its
appended rows would be. The ORM object it changes is left as it was loaded.
"""

from __future__ import annotations

from functools import cache, lru_cache
from itertools import groupby

from sqlalchemy import Table, bindparam, event, insert, update
from sqlalchemy.orm import ORMExecuteState
from sqlalchemy.orm import Session as _OrmSession
from sqlalchemy.sql import visitors

from storage.bulk import driver_bind, raw_ok, sqlite_update
from storage.bulk import sqlite_insert as insert_rows_now

_KEY = "appended_rows"


def append(session: _OrmSession, model, **values) -> None:
    session.info.setdefault(_KEY, {}).setdefault(model.__table__, []).append(values)


def update_later(session: _OrmSession, model, row_id: int, **values) -> None:
    """UPDATE the row `row_id` of `model`'s table with `values`, written as appended rows are."""
    session.info.setdefault(_KEY, {}).setdefault(_updates(model.__table__), []).append(dict(values, _row_id=row_id))


class _Updates:
    """The buffer key of a table's UPDATEs (named as the table, so a query of it writes them)."""

    def __init__(self, table: Table) -> None:
        self.table, self.name = table, table.name


@cache
def _updates(table: Table) -> _Updates:
    return _Updates(table)


@cache
def _update(table: Table, columns: tuple[str, ...]):
    """The table's UPDATE of these columns by id, built once, for executemany."""
    return (update(table).where(table.c.id == bindparam("_row_id"))
            .values({c: bindparam(c) for c in columns if c != "_row_id"}))


def unflushed(session: _OrmSession, model) -> list:
    """ORM objects of `model` added in this transaction and not flushed yet.

    A count that must include them can query with autoflush off and add these,
    instead of flushing the whole transaction first."""
    return [o for o in session.new if isinstance(o, model)]


def write(session: _OrmSession, tables: set[str] | None = None, conn=None) -> None:
    """Write the appended rows now: all of them, or those of the named tables (on `conn`, the
    session's connection, when the caller has it already)."""
    buffered = session.info.get(_KEY)
    if not buffered:
        return
    todo = [t for t in buffered if tables is None or t.name in tables]
    if not todo:
        return
    conn = conn if conn is not None else session.connection()
    sqlite = raw_ok(conn)
    for table in todo:
        rows = buffered.pop(table)
        # one executemany per run of rows naming the same columns (it takes one column set)
        for columns, run in groupby(rows, key=lambda r: tuple(r)):
            if isinstance(table, _Updates):
                if sqlite:
                    sqlite_update(conn, table.table, list(run))
                else:
                    conn.execute(_update(table.table, columns), list(run))
            elif sqlite:  # on the driver's own connection: a fifth of SQLAlchemy's executemany's cost
                insert_rows_now(conn, table, list(run))
            else:
                conn.execute(prepared_insert(table), list(run))


@cache
def prepared_insert(table: Table):
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


def read(session: _OrmSession, statement, params: dict, *, flush_for: tuple = ()):
    """Run a Core query built once (on table columns) without the ORM's per-query cost, about
    half of a small query's. The rows appended to the tables it reads are written first, as
    for every query; the ORM's changes are flushed first only when one of them is to an object
    of a `flush_for` model (what the query reads), where the ORM would flush them all every time.
    Without `flush_for`, for a caller that knows no ORM change it reads can be pending (as
    `execution_options(autoflush=False)` says to the ORM)."""
    conn = session.connection()
    if session.info.get(_KEY):
        write(session, _tables_read_cached(statement), conn)
    if flush_for and _changed(session, flush_for):
        session.flush()
    plan = _raw_plan(statement, conn.dialect) if raw_ok(conn) else None
    if plan is None:
        return conn.execute(statement, params)
    sql, binds, lists = plan
    if lists:  # IN lists: as many placeholders as values, the SQL made once per length
        lengths = tuple(len(params[name]) for name in lists)
        if 0 in lengths:  # an empty IN list: SQLAlchemy's own rendering of it
            return conn.execute(statement, params)
        sql = _expanded(sql, lists, lengths)
    values = []
    for name, required, value, proc, many in binds:
        v = params[name] if required else value
        if many:
            values.extend(proc(x) if proc is not None and x is not None else x for x in v)
        else:
            values.append(proc(v) if proc is not None and v is not None else v)
    return _Fetched(conn.connection.driver_connection.execute(sql, values).fetchall())


@lru_cache(maxsize=512)
def _expanded(sql: str, lists: tuple[str, ...], lengths: tuple[int, ...]) -> str:
    for name, n in zip(lists, lengths):  # (the placeholder carries the bind's name, which is its key)
        sql = sql.replace(f"__[POSTCOMPILE_{name}]", ", ".join("?" * n))
    return sql


class _Fetched:
    """The rows a raw read fetched, answering as much of SQLAlchemy's Result as the readers ask."""

    __slots__ = ("rows",)

    def __init__(self, rows: list) -> None:
        self.rows = rows

    def first(self):
        return self.rows[0] if self.rows else None

    def all(self) -> list:
        return self.rows

    def scalars(self) -> "_Scalars":
        return _Scalars(r[0] for r in self.rows)

    def scalar_one(self):
        if len(self.rows) != 1:
            raise ValueError(f"expected one row, got {len(self.rows)}")
        return self.rows[0][0]


class _Scalars(list):
    def all(self) -> list:
        return list(self)


_PLANS: dict = {}


def _raw_plan(statement, dialect):
    """(SQL, [(parameter, given by the caller, constant, bind processor)]) to run `statement` on
    SQLite's own connection: the statement compiled once, each value bound by its type's own
    processor as SQLAlchemy would, for a fifth of what executing it through SQLAlchemy costs.
    An IN list's values are bound one by one (`read` makes the SQL for each length). None (run
    through SQLAlchemy) for a statement whose columns need converting on the way out (dates)."""
    key = (statement, dialect.name)
    if key in _PLANS:
        return _PLANS[key]
    compiled = statement.compile(dialect=dialect)
    plan = None
    if (compiled.positiontup is not None
            and all(c.type.dialect_impl(dialect).result_processor(dialect, None) is None
                    for c in statement.selected_columns)):
        binds, lists = [], []
        for name in compiled.positiontup:
            b = compiled.binds[name]
            binds.append((b.key, b.required, b.value, driver_bind(b.type, dialect),
                          b.expanding))
            if b.expanding:
                lists.append(b.key)
        plan = (compiled.string, binds, tuple(lists))
    if len(_PLANS) > 500:  # statements built once are few; one built per call must not grow this
        _PLANS.clear()
    _PLANS[key] = plan
    return plan


def _changed(session: _OrmSession, models: tuple) -> bool:
    """An object of one of `models` added, changed or deleted in the session and not flushed."""
    return any(isinstance(o, models) for o in session.new) or any(
        isinstance(o, models) for o in session.dirty) or any(isinstance(o, models) for o in session.deleted)


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
