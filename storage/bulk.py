"""Writing many rows of one table at once, the fastest way each database offers.

Owns one function, `insert_rows`, for bulk writers (gateway/edges/importer.py): on
PostgreSQL a COPY, with ids taken from the table's sequence first when the
caller needs them; on SQLite one executemany INSERT, with ids above the
largest there is (the caller holds the write lock). Rows are plain dicts keyed by column name; a column a row leaves
out gets the model's scalar default, or NULL.

Must not: be used for rows the ORM session holds as objects, or for rows that
must go through `storage.rows.append` (it writes at once, in the caller's
transaction).
"""

from __future__ import annotations

from functools import lru_cache
from datetime import timezone

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from storage.types import JSONType, UTCDateTime, json_text, sqlite_utc_text


def _default(col):
    d = col.default
    return d.arg if d is not None and d.is_scalar else None


def _utc_naive(value):
    return value.astimezone(timezone.utc).replace(tzinfo=None)


_json = json_text  # as the engine writes a JSON column (storage.db)


def _copy_converter(col):
    """What a non-NULL value of `col` becomes for COPY; None: the value as it is. Asked once per
    column, not once per value (which was a third of the writer's COPY time)."""
    if isinstance(col.type, UTCDateTime):
        return _utc_naive
    if isinstance(col.type, JSONType):
        return _json
    return None


def driver_bind(type_, dialect):
    """`type_`'s bind processor for a value sent on the driver's own connection: SQLAlchemy's,
    except on SQLite for the two kinds nearly every row has, a UTC timestamp and a JSON value,
    whose processors are four calls deep: these write the same text directly. (None: the value
    goes as it is; a None value is always sent as NULL.)"""
    if dialect.name == "sqlite":
        if isinstance(type_, UTCDateTime):
            return sqlite_utc_text
        if isinstance(type_, JSONType):
            return _json
    return type_.dialect_impl(dialect).bind_processor(dialect)


def sqlite_insert(conn, table, rows: list[dict]) -> None:
    """One executemany on the driver's own connection, in the session's transaction, with each
    value bound by its column type's own bind processor (what SQLAlchemy's executemany does
    per row, at a fifth of the cost: its per-row parameter building was most of an import's
    time under SQLite's write lock). A column a row leaves out gets the model's default."""
    sql, plan = _sqlite_plan(conn.dialect, table, frozenset(rows[0]))
    raw = conn.connection.driver_connection  # sqlite3's own connection, the session's transaction
    raw.executemany(sql, [_bound(plan, r) for r in rows])


def _bound(plan: list, r: dict) -> tuple:
    """A row's values for a `_sqlite_plan` INSERT: each bound by its column's processor, a
    column it leaves out given the model's default."""
    out = []
    for name, proc, dflt, call in plan:
        v = r[name] if name in r else (dflt() if call else dflt)
        out.append(proc(v) if proc is not None and v is not None else v)
    return tuple(out)


def sqlite_update(conn, table, rows: list[dict]) -> None:
    """UPDATE rows of `table` by id (each row: the new values and `_row_id`, all naming the same
    columns) in one executemany on the driver's own connection, as `sqlite_insert` does."""
    columns = tuple(k for k in rows[0] if k != "_row_id")
    sql, procs = _sqlite_update_plan(conn.dialect, table, columns)
    raw = conn.connection.driver_connection
    raw.executemany(sql, [tuple(proc(r[c]) if proc is not None and r[c] is not None else r[c]
                                for c, proc in zip(columns, procs)) + (r["_row_id"],) for r in rows])


@lru_cache(maxsize=64)
def _sqlite_update_plan(dialect, table, columns: tuple[str, ...]) -> tuple[str, list]:
    procs = [driver_bind(table.c[c].type, dialect) for c in columns]
    sets = ", ".join(f'"{c}" = ?' for c in columns)
    return f'UPDATE "{table.name}" SET {sets} WHERE id = ?', procs


def sqlite_insert_one(conn, table, row: dict) -> int:
    """`sqlite_insert` for one row, on the driver's own cursor: its new id (the rowid)."""
    sql, plan = _sqlite_plan(conn.dialect, table, frozenset(row))
    return conn.connection.driver_connection.execute(sql, _bound(plan, row)).lastrowid


@lru_cache(maxsize=256)
def _sqlite_plan(dialect, table, given: frozenset) -> tuple[str, list]:
    """(INSERT, [(column, bind processor, default, default is callable)]) for rows naming the
    `given` columns: made once per shape (the live path writes a few rows at a time)."""
    cols = [c for c in table.columns if c.name in given
            or (c.default is not None and (c.default.is_scalar or c.default.is_callable))]
    # a column's default, for a row that leaves it out: a callable (default=list) called per row
    missing = []
    for c in cols:
        d = c.default
        missing.append(None if d is None else (d.arg if d.is_scalar else (lambda f=d.arg: f(None))))
    procs = [driver_bind(c.type, dialect) for c in cols]
    names = [c.name for c in cols]
    plan = list(zip(names, procs, missing, [c.default is not None and c.default.is_callable for c in cols]))
    sql = (f'INSERT INTO "{table.name}" ({", ".join(chr(34) + n + chr(34) for n in names)}) '
           f'VALUES ({", ".join("?" * len(names))})')
    return sql, plan


def raw_ok(conn) -> bool:
    """Whether to go to the driver's own connection, past SQLAlchemy: on SQLite, and only when
    nothing watches the statements go out (a test checking their query plans, a benchmark counting
    them), so that those see the same SQL through SQLAlchemy."""
    return conn.dialect.name == "sqlite" and not conn.dispatch.before_cursor_execute


def take_ids(session: Session, table, n: int) -> list[int]:
    """The ids the database would give the next `n` rows of `table`, in order, taken now, so that
    values made from them (a ticket's ref) go out in the INSERT, with no UPDATE after it.

    PostgreSQL: the table's sequence, as its INSERT would. SQLite: above the largest id there is,
    as INTEGER PRIMARY KEY does. The caller holds the database's one write lock (storage.db
    write_lock, or a batch's BEGIN IMMEDIATE) for its transaction, and has no rows of the table
    waiting to be written; a writer that did not would fail on the primary key, never write over
    a row."""
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        if raw_ok(conn):
            start = conn.connection.driver_connection.execute(_max_id_sql(table.name)).fetchone()[0] or 0
        else:
            start = conn.execute(_max_id(table)).scalar() or 0
        return list(range(start + 1, start + 1 + n))
    seq = _SEQUENCES.get(table.name)
    if seq is None:
        seq = _SEQUENCES[table.name] = conn.execute(_SERIAL, {"t": table.name}).scalar_one()
    if n == 1:
        return [conn.execute(_NEXTVAL, {"s": seq}).scalar_one()]
    return sorted(conn.execute(_NEXTVALS, {"s": seq, "n": n}).scalars())


_SERIAL = text("SELECT pg_get_serial_sequence(:t, 'id')")
_NEXTVAL = text("SELECT nextval(CAST(:s AS regclass))")
_NEXTVALS = text("SELECT nextval(CAST(:s AS regclass)) FROM generate_series(1, :n)")
_SEQUENCES: dict[str, str] = {}  # table -> its sequence (the same name in every database)


@lru_cache(maxsize=None)
def _max_id(table):
    return select(func.max(table.c.id))


@lru_cache(maxsize=None)
def _max_id_sql(name: str) -> str:
    return f'SELECT max(id) FROM "{name}"'


def insert_rows(session: Session, model, rows: list[dict], *, ids: bool = False, by_id=None) -> list[int]:
    """Insert `rows` into `model`'s table; their new ids, in order, when `ids` (else []).
    `by_id`: {column: function of the new id} for values made from it (a ticket's ref), so that
    no UPDATE has to follow the INSERT."""
    if not rows:
        return []
    table = model.__table__
    new_ids: list[int] = []
    if ids:  # taken first (SQLite: RETURNING in the rows' order would make one INSERT per row)
        new_ids = take_ids(session, table, len(rows))
        rows = [dict(r, id=i, **{c: f(i) for c, f in (by_id or {}).items()}) for r, i in zip(rows, new_ids)]
    if session.get_bind().dialect.name != "postgresql":
        sqlite_insert(session.connection(), table, rows)
        return new_ids
    cols = [c for c in table.columns if c.name in rows[0] or (not c.primary_key and _default(c) is not None)]
    names = ", ".join(f'"{c.name}"' for c in cols)
    plan = [(c.name, _default(c), _copy_converter(c)) for c in cols]

    def values(r: dict) -> list:
        out = []
        for name, dflt, convert in plan:
            v = r.get(name, dflt)
            out.append(convert(v) if convert is not None and v is not None else v)
        return out

    raw = session.connection().connection.driver_connection  # psycopg's own connection, same transaction
    with raw.cursor() as cur, cur.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for r in rows:
            copy.write_row(values(r))
    return new_ids
