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

import json
from datetime import timezone

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from storage.types import JSONType, UTCDateTime


def _default(col):
    d = col.default
    return d.arg if d is not None and d.is_scalar else None


def _copy_value(col, value):
    if value is None:
        return None
    if isinstance(col.type, UTCDateTime):
        return value.astimezone(timezone.utc).replace(tzinfo=None)
    if isinstance(col.type, JSONType):
        return json.dumps(value, ensure_ascii=False)
    return value


def insert_rows(session: Session, model, rows: list[dict], *, ids: bool = False) -> list[int]:
    """Insert `rows` into `model`'s table; their new ids, in order, when `ids` (else [])."""
    if not rows:
        return []
    table = model.__table__
    if session.get_bind().dialect.name != "postgresql":
        # SQLite: RETURNING in the rows' order makes SQLAlchemy send one INSERT per row, so the ids
        # are taken here instead, above the largest there is. The caller holds the database's one
        # write lock (storage.db write_lock) for its transaction; a writer that did not would make
        # this batch fail on the primary key, never write over a row.
        new_ids: list[int] = []
        if ids:
            start = session.execute(select(func.max(table.c.id))).scalar() or 0
            new_ids = list(range(start + 1, start + 1 + len(rows)))
            rows = [dict(r, id=i) for r, i in zip(rows, new_ids)]
        session.execute(insert(table), rows)  # the Table, not the ORM entity: no ORM bulk layer
        return new_ids
    new_ids: list[int] = []
    if ids:
        seq = session.execute(text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table.name}).scalar_one()
        new_ids = sorted(session.execute(text("SELECT nextval(CAST(:s AS regclass)) FROM generate_series(1, :n)"),
                                         {"s": seq, "n": len(rows)}).scalars())
        rows = [dict(r, id=i) for r, i in zip(rows, new_ids)]
    cols = [c for c in table.columns if c.name in rows[0] or (not c.primary_key and _default(c) is not None)]
    names = ", ".join(f'"{c.name}"' for c in cols)
    defaults = {c.name: _default(c) for c in cols}
    raw = session.connection().connection.driver_connection  # psycopg's own connection, same transaction
    with raw.cursor() as cur, cur.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for r in rows:
            copy.write_row([_copy_value(c, r.get(c.name, defaults[c.name])) for c in cols])
    return new_ids
