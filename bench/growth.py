"""Ingest cost against the size of the history: the whole pipeline's rate with N messages
already stored, against its rate on an empty database, on SQLite and on PostgreSQL, in
the same run (issue 26, target >= 0.90).

The history is written by a dedicated generator, inside the database (one INSERT ...
SELECT over a generated series per table and slice, no Python per row): N messages in
N/4 tickets, each message with its spool row and Message-ID, each ticket with its
requester, its acknowledgement in the outbox and one event per message. The senders are
the same 500 addresses per organisation the benchmark mail comes from, so a look-up by
sender (the loop detector, the rate limit on automatic replies) meets hundreds of old
rows, as it would on a real desk. The old rows are 400 days old.

Each round ingests the same generated mail (bench/corpus.py) into a fresh copy of the
empty database and of the filled one (a file copy on SQLite, CREATE DATABASE ...
TEMPLATE on PostgreSQL), in turns, so machine noise hits both alike. PostgreSQL's copy
is ANALYZEd (autovacuum would have); SQLite's is not (nothing in the gateway runs it).

    python bench/growth.py [--rows 1000000] [--sample 1000] [--rounds 2] [--backend sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine  # noqa: E402

from bench import pipeline_rate_on  # noqa: E402
from bench.corpus import ORGS, generate  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Base  # noqa: E402

PG = os.environ.get("SUPPORTGW_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
PER_TICKET = 4  # messages per old ticket
STEP = 100_000  # rows per INSERT ... SELECT


class Dialect:
    """The few SQL spellings that differ between the two databases."""

    def __init__(self, name: str, old: datetime) -> None:
        self.pg = name == "postgresql"
        naive = old.astimezone(timezone.utc).replace(tzinfo=None)
        self.old = f"TIMESTAMP '{naive:%Y-%m-%d %H:%M:%S}'" if self.pg else f"'{naive:%Y-%m-%d %H:%M:%S.%f}'"

    def series(self, lo: int, hi: int) -> str:
        if self.pg:
            return f"FROM generate_series({lo}, {hi}) AS s(g)"
        return f"FROM (WITH RECURSIVE s(g) AS (SELECT {lo} UNION ALL SELECT g + 1 FROM s WHERE g < {hi}) SELECT g FROM s)"

    def hex64(self, expr: str) -> str:
        return f"lpad(({expr})::text, 64, '0')" if self.pg else f"printf('%064d', {expr})"

    def boolean(self, v: bool) -> str:
        return ("true" if v else "false") if self.pg else ("1" if v else "0")

    def json(self, literal: str) -> str:
        return f"CAST('{literal}' AS JSON)" if self.pg else f"'{literal}'"

    def blob(self) -> str:
        return "'\\x78'::bytea" if self.pg else "X'78'"


def sender(g: str) -> str:
    orgs = " ".join(f"WHEN {i} THEN '{o}'" for i, o in enumerate(ORGS))
    return f"('user' || (({g}) % 500) || '@' || CASE (({g}) / 500) % {len(ORGS)} {orgs} END)"


def fill_values(d: Dialect, table: str) -> dict[str, str]:
    """Column -> SQL expression over the series variable g, for each table filled."""
    t = "(1 + (g - 1) / %d)" % PER_TICKET  # the ticket a message belongs to
    if table == "tickets":
        return {"id": "g", "ref": "'OLD-' || g", "subject": "'old case ' || g", "status": "'closed'",
                "priority": "'P3'", "category": "'general'", "team": "'support'", "tier": "1",
                "requester_email": sender("g"), "customer_tier": "'standard'", "language": "'en'",
                "tags": d.json("[]"), "created_at": d.old, "updated_at": d.old, "closed_at": d.old,
                "resolved_at": d.old}
    if table == "participants":
        return {"id": "g", "ticket_id": "g", "email": sender("g"), "role": "'requester'"}
    if table == "spool":
        return {"id": "g", "source": "'smtp'", "received_at": d.old, "size": "1", "sha256": d.hex64("g"),
                "message_id": "'old' || g || '@history.example'", "dedupe_key": d.hex64("g"),
                "envelope_to": d.json("[]"), "raw": d.blob(), "status": "'processed'", "attempts": "1",
                "processed_at": d.old, "ticket_id": t}
    if table == "messages":
        return {"id": "g", "ticket_id": t, "spool_id": "g", "direction": "'in'",
                "message_id": "'old' || g || '@history.example'", "sender_email": sender(t),
                "to": d.json("[]"), "cc": d.json("[]"), "subject": "'old case'", "text": "'old text'",
                "reply_text": "'old text'", "created_at": d.old}
    if table == "thread_ids":
        return {"id": "g", "message_id": "'old' || g || '@history.example'", "ticket_id": t}
    if table == "events":
        return {"id": "g", "ticket_id": t, "at": d.old, "kind": "'message'", "data": d.json("{}")}
    if table == "outbox":
        return {"id": "g", "ticket_id": "g", "kind": "'acknowledgement'", "rcpt": sender("g"),
                "to": d.json("[]"), "cc": d.json("[]"), "envelope_to": d.json("[]"), "subject": "'ack'",
                "message_id": "'ack' || g || '@support.example.test'", "raw": d.blob(), "automatic": d.boolean(True),
                "status": "'sent'", "attempts": "1", "next_attempt_at": d.old, "created_at": d.old,
                "sent_at": d.old, "source_spool_id": "g * %d" % PER_TICKET}
    raise KeyError(table)


def insert_sql(d: Dialect, table: str, lo: int, hi: int) -> str:
    """INSERT ... SELECT for rows lo..hi: every column given, the model's scalar default or
    NULL for those fill_values leaves out."""
    given = fill_values(d, table)
    cols, exprs = [], []
    for col in Base.metadata.tables[table].columns:
        if col.name in given:
            expr = given.pop(col.name)
        elif col.default is not None and col.default.is_scalar:
            v = col.default.arg
            expr = d.boolean(v) if isinstance(v, bool) else str(v) if isinstance(v, int) else "'" + str(v).replace("'", "''") + "'"
        elif col.nullable or col.server_default is not None:
            continue
        else:
            raise ValueError(f"{table}.{col.name}: NOT NULL without a value in the generator")
        cols.append(f'"{col.name}"')
        exprs.append(expr)
    assert not given, f"unknown columns for {table}: {sorted(given)}"
    return f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(exprs)} {d.series(lo, hi)}"


def fill(url: str, rows: int) -> None:
    """Write `rows` old messages (and their tickets, spool rows, ...) into the database at url."""
    engine = create_engine(url)
    d = Dialect(engine.dialect.name, datetime.now(timezone.utc) - timedelta(days=400))
    tickets = (rows + PER_TICKET - 1) // PER_TICKET
    plan = [("tickets", tickets), ("participants", tickets), ("spool", rows), ("messages", rows),
            ("thread_ids", rows), ("events", rows), ("outbox", tickets)]
    with engine.begin() as c:
        if not d.pg:
            c.exec_driver_sql("PRAGMA foreign_keys = OFF")  # every reference is made consistent by construction
        for table, count in plan:
            for lo in range(1, count + 1, STEP):
                sql = insert_sql(d, table, lo, min(count, lo + STEP - 1))
                c.exec_driver_sql(sql.replace("%", "%%") if d.pg else sql)  # psycopg's placeholders
        if d.pg:
            for table, _ in plan:
                c.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
    if d.pg:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("ANALYZE")
    engine.dispose()



# ---------------------------------------------------------------- one backend each

class SqliteDbs:
    def __init__(self, top: Path) -> None:
        self.top = top
        self.n = 0

    def template(self, rows: int) -> str:
        path = self.top / f"template-{rows}.db"
        upgrade(f"sqlite:///{path}")
        if rows:
            fill(f"sqlite:///{path}", rows)
        return str(path)

    def copy(self, template: str) -> str:
        self.n += 1
        target = self.top / f"run-{self.n}.db"
        shutil.copyfile(template, target)
        return f"sqlite:///{target}"

    def drop(self, url: str) -> None:
        Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)


class PgDbs:
    def __init__(self) -> None:
        import psycopg

        self.admin = psycopg.connect(PG.replace("+psycopg", ""), autocommit=True)
        self.made: list[str] = []

    def _url(self, name: str) -> str:
        return PG.rsplit("/", 1)[0] + "/" + name

    def template(self, rows: int) -> str:
        name = f"sgw_growth_{uuid.uuid4().hex[:8]}"
        self.admin.execute(f"CREATE DATABASE {name}")
        self.made.append(name)
        upgrade(self._url(name))
        if rows:
            fill(self._url(name), rows)
        return name

    def copy(self, template: str) -> str:
        name = f"sgw_growth_{uuid.uuid4().hex[:8]}"
        # FILE_COPY: a plain copy of the files; the default (WAL_LOG, PostgreSQL 15+) writes a
        # million-message template through the WAL, minutes on this machine.
        strategy = " STRATEGY FILE_COPY" if self.admin.info.server_version >= 150000 else ""
        self.admin.execute(f"CREATE DATABASE {name} TEMPLATE {template}{strategy}")
        self.made.append(name)
        return self._url(name)

    def drop(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        self.admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def close(self) -> None:
        for name in self.made:
            self.admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self.admin.close()


def measure(dbs, label: str, rows: int, msgs: list[bytes], rounds: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    empty_t = dbs.template(0)
    full_t = dbs.template(rows)
    print(f"{label}: {rows:,} messages generated in {time.perf_counter() - t0:.0f}s", flush=True)
    url = dbs.copy(empty_t)  # a first, untimed run: imports, the parse pool's start, caches
    try:
        pipeline_rate_on(url, msgs[:100])
    finally:
        dbs.drop(url)
    empty, full = [], []
    for _ in range(rounds):
        for template, out in ((empty_t, empty), (full_t, full)):
            url = dbs.copy(template)
            try:
                out.append(pipeline_rate_on(url, msgs))
            finally:
                dbs.drop(url)
    e, f = statistics.median(empty), statistics.median(full)
    print(f"{label}: empty {e:7.1f} msgs/s (runs {', '.join(f'{x:.0f}' for x in empty)}); "
          f"{rows:,} stored {f:7.1f} msgs/s (runs {', '.join(f'{x:.0f}' for x in full)}); "
          f"ratio {f / e:.2f} (target >= 0.90)", flush=True)
    return e, f


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="messages already stored (default 1,000,000)")
    ap.add_argument("--sample", type=int, default=1000, help="messages ingested in each measured run")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    args = ap.parse_args()
    msgs = generate(args.sample)
    results = {}
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="sgw-growth-") as top:
            results["sqlite"] = measure(SqliteDbs(Path(top)), "SQLite", args.rows, msgs, args.rounds)
    if args.backend in ("postgresql", "both"):
        dbs = PgDbs()
        try:
            results["postgresql"] = measure(dbs, "PostgreSQL", args.rows, msgs, args.rounds)
        finally:
            dbs.close()
    print()
    print(f"ingest of {args.sample} generated mails, {args.rows:,} messages already stored vs an empty database:")
    for name, (e, f) in results.items():
        print(f"  {name:<11} empty {e:7.1f} msgs/s   full {f:7.1f} msgs/s   ratio {f / e:5.2f}   (target >= 0.90)")


if __name__ == "__main__":
    main()
