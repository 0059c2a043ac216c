"""Scale-out figures on PostgreSQL.

1. Ingest throughput over SMTP, end to end (first message sent -> every message a
   ticket message), with 1, 2 and 3 gateway processes on one PostgreSQL and with
   1 process on SQLite, same corpus, same run; scaling ratios against 1 process.
2. Ingest rate with --rows messages (default 1,000,000) already in the database
   against the rate on an empty database (target >= 90%: indexes, not scans).

    python bench/scale.py [N] [--rows 1000000] [--skip-smtp] [--skip-big]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from sqlalchemy import create_engine, func, select  # noqa: E402

from bench import pipeline_rate_on, supportgw_command  # noqa: E402
from bench.corpus import generate  # noqa: E402
from bench.smtp import free_port, wait_port  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import SpoolEntry  # noqa: E402

PG = os.environ.get("SUPPORTGW_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def new_pg_db() -> tuple[str, str]:
    name = f"sgw_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG.replace("+psycopg", ""), autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    url = PG.rsplit("/", 1)[0] + "/" + name
    upgrade(url)
    return name, url


def drop_pg_db(name: str) -> None:
    with psycopg.connect(PG.replace("+psycopg", ""), autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def start_gateways(d: Path, url: str, count: int) -> tuple[list, list[int]]:
    procs, ports = [], []
    key = d / "secret.key"
    key.write_text("bench-secret-key-0123456789abcdef\n")
    key.chmod(0o600)
    for i in range(count):
        port = free_port()
        cfg = d / f"gw{i}.toml"
        cfg.write_text(f"""
[gateway]
data_dir = "{d}/var{i}"
secret_key = {{ file = "{key}" }}
[database]
url = "{url}"
[smtp]
port = {port}
max_connections_per_ip = 200
max_messages_per_ip_per_minute = 0
[outbound]
rate_limit_per_hour = 1000000
""")
        log = open(d / f"gw{i}.log", "w")
        command, env = supportgw_command()
        procs.append(subprocess.Popen([*command, "--config", str(cfg), "run"],
                                      stdout=log, stderr=log, start_new_session=True, env=env))
        ports.append(port)
    for p in ports:
        wait_port(p, 90)
    return procs, ports


def stop_gateways(procs) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


def smtp_run(url: str, msgs: list[bytes], count: int, clients: int = 8) -> float:
    with tempfile.TemporaryDirectory() as d:
        procs, ports = start_gateways(Path(d), url, count)
        engine = create_engine(url)
        try:
            t0 = time.perf_counter()

            def client(k):
                with smtplib.SMTP("127.0.0.1", ports[k % len(ports)], timeout=60) as s:
                    for raw in msgs[k::clients]:
                        s.sendmail("customer@bench.example", ["support@support.example.test"], raw)

            threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            while True:
                with engine.connect() as c:
                    done = c.execute(select(func.count()).select_from(SpoolEntry)
                                     .where(SpoolEntry.status != "pending")).scalar()
                if done >= len(msgs):
                    break
                time.sleep(0.2)
            return len(msgs) / (time.perf_counter() - t0)
        finally:
            engine.dispose()
            stop_gateways(procs)


FILL_SQL = """
INSERT INTO tickets (id, ref, subject, status, priority, category, team, tier, owner, handler, requester_email,
  requester_name, organisation, project, customer_tier, language, tags, created_at, updated_at, paused_seconds,
  sla_policy, held, handover_reason, escalated_from, manager_escalated, solution)
SELECT g, 'OLD-' || g, 'old case ' || g, 'closed', 'P3', 'general', 'support', 1, '', '', 'old' || (g % 50000) || '@old.example',
  '', '', '', 'standard', 'en', '[]', now() - interval '400 days', now() - interval '400 days', 0, '', false, '', '', false, ''
FROM generate_series({lo}, {hi}) g;
INSERT INTO spool (id, source, received_at, size, sha256, message_id, dedupe_key, envelope_from, envelope_to, raw,
  status, error, attempts, ticket_id)
SELECT g, 'file', now() - interval '400 days', 1, md5(g::text) || md5(g::text), 'old' || g || '@old.example',
  md5('k' || g) || md5('d' || g), '', '[]', '\\x78', 'processed', '', 1, g FROM generate_series({lo}, {hi}) g;
INSERT INTO messages (id, ticket_id, spool_id, direction, kind, message_id, sender_email, sender_name, "to", cc,
  subject, text, reply_text, html, automatic, internal, created_at)
SELECT g, g, g, 'in', 'customer', 'old' || g || '@old.example', 'old' || (g % 50000) || '@old.example', '', '[]', '[]',
  'old case', 'old text', 'old text', '', false, false, now() - interval '400 days' FROM generate_series({lo}, {hi}) g;
INSERT INTO thread_ids (message_id, ticket_id, outbound)
SELECT 'old' || g || '@old.example', g, false FROM generate_series({lo}, {hi}) g;
INSERT INTO outbox (ticket_id, kind, rcpt, "to", cc, envelope_to, subject, message_id, raw, automatic, status, attempts,
  next_attempt_at, last_error, created_at, claimed_by)
SELECT g, 'acknowledgement', 'old' || (g % 50000) || '@old.example', '[]', '[]', '[]', 'ack', 'ack' || g || '@x', '\\x78',
  true, 'sent', 1, now() - interval '400 days', '', now() - interval '400 days', '' FROM generate_series({lo}, {hi}) g;
INSERT INTO events (ticket_id, at, kind, actor, detail, data)
SELECT g, now() - interval '400 days', 'created', 'system', '', '{{}}' FROM generate_series({lo}, {hi}) g;
"""


def fill(url: str, rows: int) -> None:
    conn = psycopg.connect(url.replace("+psycopg", ""), autocommit=True)
    step = 100_000
    for lo in range(1, rows + 1, step):
        hi = min(rows, lo + step - 1)
        conn.execute(FILL_SQL.format(lo=lo, hi=hi))
    for table in ("tickets", "spool", "messages", "outbox"):
        conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
    conn.execute("ANALYZE")
    conn.close()



def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=1500)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--skip-smtp", action="store_true")
    ap.add_argument("--skip-big", action="store_true")
    args = ap.parse_args()
    msgs = [re.sub(rb"\r?\n", b"\r\n", m) for m in generate(args.n)]

    if not args.skip_smtp:
        rates = {}
        with tempfile.TemporaryDirectory() as d:
            rates["sqlite x1"] = smtp_run(f"sqlite:///{d}/bench.db", msgs, 1)
        for count in (1, 2, 3):
            name, url = new_pg_db()
            try:
                rates[f"postgres x{count}"] = smtp_run(url, msgs, count)
            finally:
                drop_pg_db(name)
        print(f"SMTP ingest, end to end, {args.n} messages, 8 clients:")
        for k, v in rates.items():
            print(f"  {k:<12} {v:8.1f} msgs/s")
        base = rates["postgres x1"]
        print(f"  scaling on PostgreSQL: x2 {rates['postgres x2'] / base:.2f}, x3 {rates['postgres x3'] / base:.2f}"
              f" (this machine has {os.cpu_count()} cores); SQLite x1 / PostgreSQL x1: {rates['sqlite x1'] / base:.2f}")

    if not args.skip_big:
        sample = msgs[: min(len(msgs), 1000)]
        name, url = new_pg_db()
        try:
            empty = pipeline_rate_on(url, sample)
        finally:
            drop_pg_db(name)
        name, url = new_pg_db()
        try:
            t0 = time.perf_counter()
            fill(url, args.rows)
            print(f"filled {args.rows:,} tickets/messages/spool/outbox rows in {time.perf_counter() - t0:.0f}s")
            full = pipeline_rate_on(url, sample)
        finally:
            drop_pg_db(name)
        print(f"pipeline ingest on an empty database : {empty:8.1f} msgs/s")
        print(f"pipeline ingest with {args.rows:,} rows     : {full:8.1f} msgs/s")
        print(f"ratio full/empty                      : {full / empty:8.2f}   (target >= 0.90)")


if __name__ == "__main__":
    main()
