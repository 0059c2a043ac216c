"""Faults: the database unavailable (SQLite locked or read-only, PostgreSQL refusing
connections) answers SMTP 451 and resumes by itself; the outbound relay down means
retries with backoff, nothing lost, visible in `supportgw outbox list --json`; SIGTERM
with work in flight exits 0 within a bounded time and loses nothing."""

from __future__ import annotations

import json
import smtplib
import sqlite3
import threading
import time

import pytest
from sqlalchemy import event, select

from gateway.pipeline import process as pipeline
from gateway.app import build_app
from gateway.runtime.dispatch import dispatch_due
from gateway.runtime.runner import Gateway
from gateway.runtime.transports import make_transport
from storage.db import Database, StorageUnavailable
from storage.models import Message, OutboxAttempt, SpoolEntry, Ticket
from tests.conftest import (
    _pg_exec, drop_database, free_port, fresh_database_url, make_config, wait_for,
)
from tests.gwproc import GatewayProcess, write_run_config
from tests.hardening import SUPPORT, acks, cli, push, rows, write_config
from tests.mail import build

CUSTOMER = "alice@customer.example.com"


def _try_send(port, subject) -> int:
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
            s.sendmail(CUSTOMER, [SUPPORT], build(subject=subject))
        return 250
    except smtplib.SMTPDataError as exc:
        return exc.smtp_code


@pytest.fixture
def sqlite_gateway(tmp_path, relay):
    """A gateway on SQLite whatever SUPPORTGW_TEST_DB says: these faults are SQLite's."""
    target = tmp_path / "sqlite" / "supportgw.db"
    target.parent.mkdir(parents=True, exist_ok=True)
    cfg = make_config(tmp_path, database_url=f"sqlite:///{target}",
                      outbound={"smtp_host": "127.0.0.1", "smtp_port": relay.port})
    app = build_app(cfg, migrate=True)
    gw = Gateway(app, imap=False, scheduler=False).start()
    yield gw, target
    gw.stop()
    app.db.dispose()


def test_sqlite_locked_answers_451_then_resumes_by_itself(sqlite_gateway):
    gw, path = sqlite_gateway
    assert _try_send(gw.smtp_port, "before") == 250
    locker = sqlite3.connect(str(path), isolation_level=None, timeout=1)
    locker.execute("BEGIN EXCLUSIVE")  # another program holds the write lock
    try:
        assert _try_send(gw.smtp_port, "while locked") == 451  # after the busy timeout: try later
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert _try_send(gw.smtp_port, "after") == 250
    wait_for(lambda: {t.subject for t in rows(gw.app, Ticket)} == {"before", "after"}, what="both tickets")


def test_sqlite_read_only_answers_451_then_resumes_by_itself(sqlite_gateway):
    gw, _ = sqlite_gateway
    engine = gw.app.db.engine

    # Fault injection: tests run as root, where chmod cannot make a file read-only, so every
    # new connection is made read-only instead (same SQLITE_READONLY error on write).
    def read_only(dbapi_conn, _record):
        dbapi_conn.execute("PRAGMA query_only=1")

    event.listen(engine, "connect", read_only)
    engine.dispose()
    try:
        assert _try_send(gw.smtp_port, "read-only") == 451
    finally:
        event.remove(engine, "connect", read_only)
        engine.dispose()
    assert _try_send(gw.smtp_port, "writable again") == 250
    wait_for(lambda: [t.subject for t in rows(gw.app, Ticket)] == ["writable again"], what="ticket")


@pytest.mark.postgres
def test_postgresql_unavailable_answers_451_then_resumes(running):
    gw = running(database={"connect_timeout": 2}, backend="postgresql")  # on PostgreSQL in either pass
    name = gw.app.db.url.rpartition("/")[2]
    assert _try_send(gw.smtp_port, "before") == 250
    _pg_exec(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
    _pg_exec(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
    try:
        assert _try_send(gw.smtp_port, "while down") == 451
    finally:
        _pg_exec(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
    assert _try_send(gw.smtp_port, "after") == 250
    wait_for(lambda: {t.subject for t in rows(gw.app, Ticket)} == {"before", "after"}, timeout=20,
             what="both tickets after recovery")


def test_relay_down_retries_with_backoff_and_loses_nothing(make_app, clock, relay, tmp_path):
    dead_port = free_port()  # nothing listens here
    app = make_app(clock=clock, outbound={"smtp_host": "127.0.0.1", "smtp_port": dead_port, "backoff_base": 60,
                                          "timeout": 5})
    push(app, build(subject="Relay down"))
    transport = make_transport(app)
    delays = []
    for _ in range(3):
        assert dispatch_due(app, transport) == 0
        [row] = acks(app)
        assert row.status == "pending" and row.last_error
        delays.append((row.next_attempt_at - clock.now()).total_seconds())
        assert dispatch_due(app, transport) == 0  # not due yet: no attempt
        clock.advance(seconds=delays[-1] + 1)
    transport.close()
    assert 48 <= delays[0] <= 72 and 96 <= delays[1] <= 144 and 192 <= delays[2] <= 288  # 60 s doubling, ±20 %
    [row] = acks(app)
    assert row.attempts == 3 and len(rows(app, OutboxAttempt, OutboxAttempt.outbox_id == row.id)) == 3

    cfg = write_config(app, tmp_path / "gw.toml")
    out = cli(cfg, "outbox", "list", "--json")
    assert out.returncode == 0, out.stderr
    listed = {r["id"]: r for r in json.loads(out.stdout)}
    assert listed[row.id]["status"] == "pending" and listed[row.id]["attempts"] == 3
    assert listed[row.id]["last_error"]

    app.config.outbound.smtp_port = relay.port  # the relay is back
    assert dispatch_due(app) >= 1
    assert acks(app)[0].status == "sent"
    assert [m for m in relay.messages if m["to"] == [CUSTOMER]]


@pytest.mark.slow
def test_sigterm_with_work_in_flight_exits_0_quickly_and_loses_nothing(tmp_path, relay):
    url = fresh_database_url(tmp_path)
    config, port = write_run_config(tmp_path, url, relay.port)
    gw = GatewayProcess(config, port, tmp_path / "gateway.log")
    accepted: list[str] = []
    stop_sending = threading.Event()

    def sender(k):
        n = 0
        while not stop_sending.is_set() and n < 150:
            msgid = f"term-{k}-{n}@bigbank.example"
            raw = build(frm=f"t{k}x{n}@bigbank.example", subject=f"term {k} {n}", msgid=f"<{msgid}>")
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
                    s.sendmail(f"t{k}x{n}@bigbank.example", [SUPPORT], raw)
                accepted.append(msgid)
            except (OSError, smtplib.SMTPException):
                pass  # refused while stopping: the client keeps it (a real MTA would retry)
            n += 1

    gw.start()
    threads = [threading.Thread(target=sender, args=(k,), daemon=True) for k in range(3)]
    for t in threads:
        t.start()
    wait_for(lambda: len(accepted) >= 40, timeout=60, what="some mail accepted")
    started = time.monotonic()
    code = gw.terminate(15)
    took = time.monotonic() - started
    stop_sending.set()
    for t in threads:
        t.join(60)
    try:
        assert code == 0, (tmp_path / "gateway.log").read_text()[-2000:]
        print(f"\nSIGTERM under load: exit {code} after {took:.1f}s, {len(accepted)} accepted before")
        gw.start()  # whatever was spooled but not processed is finished after the restart
        db = Database(url)
        try:
            def done():
                with db.session() as s:
                    pending = s.execute(select(SpoolEntry.id).where(SpoolEntry.status == "pending")).first()
                    got = set(s.execute(select(Message.message_id).where(Message.direction == "in")).scalars())
                return pending is None and set(accepted) <= got
            wait_for(done, timeout=60, what="accepted mail processed after restart")
            with db.session() as s:
                ids = list(s.execute(select(Message.message_id).where(Message.direction == "in")).scalars())
            assert len(ids) == len(set(ids))
        finally:
            db.dispose()
        assert gw.terminate(15) == 0
    finally:
        gw.stop_quietly()
        drop_database(url)


def test_a_locked_database_while_processing_leaves_the_mail_pending_not_quarantined(tmp_path):
    """The database failing is nobody's poison message: processing stops, the row stays pending."""
    target = tmp_path / "sqlite" / "supportgw.db"
    target.parent.mkdir(parents=True, exist_ok=True)
    app = build_app(make_config(tmp_path, database_url=f"sqlite:///{target}"), migrate=True)
    [spooled] = pipeline.spool(app, [(build(subject="during the lock"), pipeline.Source("smtp"))])
    locker = sqlite3.connect(str(target), isolation_level=None, timeout=1)
    locker.execute("BEGIN EXCLUSIVE")  # another program holds the write lock past the busy timeout

    # ...and lets go as the message's savepoint rolls back: a quarantine would then commit
    @event.listens_for(app.db.Session, "after_soft_rollback")
    def let_go(session, previous):
        if locker.in_transaction:
            locker.execute("ROLLBACK")

    try:
        with pytest.raises(StorageUnavailable):
            pipeline.process_ids(app, [spooled.spool_id])
    finally:
        if locker.in_transaction:
            locker.execute("ROLLBACK")
        locker.close()
    [entry] = rows(app, SpoolEntry)
    assert (entry.status, entry.attempts) == ("pending", 0)
    assert pipeline.process_pending(app)["created"] == 1
    [entry] = rows(app, SpoolEntry)
    assert (entry.status, entry.attempts) == ("processed", 1)
    app.db.dispose()
