"""The per-message hot path's own statements: Core, built once, run in batches.

The pipeline (gateway/pipeline/process.py) runs these for every inbound message;
building a statement costs SQLAlchemy about twice what running it does, and the
ORM's unit of work costs more again, so what every message asks or writes the
same way is here, prepared once. Nothing here decides anything: the callers say
what to write, inside their own transaction.
"""

from __future__ import annotations

from functools import cache

from sqlalchemy import inspect
from sqlalchemy.orm import Session, make_transient_to_detached

from storage.bulk import raw_ok, sqlite_insert_one, take_ids
from storage.rows import prepared_insert


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


def next_id(session: Session, model) -> int:
    """The id the database would give the next row of `model`, taken now, so that a value made
    from it (a ticket's ref) goes out in the one INSERT (`insert_now`); see storage.bulk.take_ids."""
    return take_ids(session, model.__table__, 1)[0]


def new_row(model, **values):
    """A new, unsaved object of `model` with `values`, as `model(**values)` makes it, without the
    ORM's change event for each value given (a ticket has some thirty columns): for `insert_now`,
    which marks every value as loaded anyway. Only column attributes may be given."""
    unknown = set(values) - _keys(model)
    if unknown:
        raise TypeError(f"{model.__name__} has no column {', '.join(sorted(unknown))}")
    return _instance(model, values)


def _instance(model, values: dict):
    """An object of `model` holding `values` in its own dict, made without its constructor."""
    obj = inspect(model).class_manager.new_instance()
    obj.__dict__.update(values)
    return obj


def _as_loaded(session: Session, obj) -> None:
    """Put `obj`, whose dict holds every column of its row, in the session as a loaded row."""
    make_transient_to_detached(obj)
    session.add(obj)


def insert_now(session: Session, obj) -> None:
    """Write a new ORM object's row at once, in one prepared Core INSERT, and keep the object in
    the session as a loaded row, as a flush would have left it: later changes to it are UPDATEs.

    Its id is the database's, unless it is set already (`next_id`). Every column the object
    leaves unset gets the model's default, on the object too, so reading it never loads the row
    again. A flush costs the ORM's unit of work about ten times the INSERT; the row is there at
    once, so rows written after it may name it (storage.rows, foreign keys)."""
    values = {}
    held = inspect(obj).dict
    for key, col, default in _columns(type(obj)):
        v = held.get(key)
        if v is None and default is not None:
            v = default.arg(None) if default.is_callable else default.arg
        # into the object's own dict, NULL too (an attribute left unset would be loaded again when
        # read), past the ORM's change events: make_transient_to_detached marks all of it as loaded
        held[key] = v
        values[col] = v
    table = type(obj).__table__
    given = values.get("id") is not None
    if not given:  # the database gives it (RETURNING on PostgreSQL, the rowid on SQLite)
        del values["id"]
    conn = session.connection()
    if raw_ok(conn):  # SQLite: on the driver's own cursor, as storage.rows writes appended rows
        new_id = sqlite_insert_one(conn, table, values)
    else:
        new_id = conn.execute(prepared_insert(table), values).inserted_primary_key[0]
    if not given:
        held["id"] = new_id
    _as_loaded(session, obj)


def get(session: Session, model, row_id):
    """`session.get(model, row_id)`, for the per-message look-ups of a ticket by its id. On SQLite,
    and unless something watches the statements (storage.bulk.raw_ok), a row not in the session
    yet is read on the driver's own connection and made a loaded object as insert_now makes one:
    the ORM's load of one row costs about ten times its SELECT. Otherwise the ORM's own get."""
    if row_id is None:
        return None
    conn = session.connection()
    if not raw_ok(conn) or (model, (row_id,), None) in session.identity_map:
        return session.get(model, row_id)  # (the one in the session, refreshed if it expired)
    sql, plan = _load_plan(conn.dialect, model)
    row = conn.connection.driver_connection.execute(sql, (row_id,)).fetchone()
    if row is None:
        return None
    obj = _instance(model, {key: proc(v) if proc is not None and v is not None else v
                            for (key, proc), v in zip(plan, row)})
    _as_loaded(session, obj)
    return obj


@cache
def _load_plan(dialect, model) -> tuple[str, list]:
    """(SELECT of every column by id, [(attribute, result processor)]) for `get`."""
    table = model.__table__
    cols = [(key, table.c[name]) for key, name, _ in _columns(model)]
    sql = (f'SELECT {", ".join(chr(34) + c.name + chr(34) for _, c in cols)} FROM "{table.name}" '
           f'WHERE id = ?')
    return sql, [(key, c.type.dialect_impl(dialect).result_processor(dialect, None)) for key, c in cols]


@cache
def _keys(model) -> frozenset:
    return frozenset(key for key, _, _ in _columns(model))


@cache
def _columns(model) -> tuple:
    """(attribute, column name, scalar or callable default) of each column of the model."""
    out = []
    for prop in inspect(model).column_attrs:
        col = prop.columns[0]
        d = col.default
        out.append((prop.key, col.name, d if d is not None and (d.is_scalar or d.is_callable) else None))
    return tuple(out)
