"""Every query the live hot path runs finds its rows through an index.

A gateway is started on loopback (SMTP listener, processor, dispatcher, a capturing relay)
and a handful of mails go through it the way customers send them: a new case, a reply by
In-Reply-To, a reply by the ticket reference in the subject, a reply to the signed reply
address, a mail with an attachment. Every SQL statement the engine runs meanwhile is
captured (SQLAlchemy's ``before_cursor_execute``), then each SELECT, UPDATE and DELETE is
explained with its own parameters: ``EXPLAIN QUERY PLAN`` on SQLite, ``EXPLAIN (FORMAT
JSON)`` on PostgreSQL. A full scan of a table that grows with the work fails the test: with
a million messages stored it is what makes ingest slow down (bench/growth.py measures it).

PostgreSQL's planner prefers a sequential scan of a table this small whatever indexes it
has, so the plans there are asked for with ``enable_seqscan = off``: a sequential scan left
then means no index can serve the query.
"""

from __future__ import annotations

import json
import threading
from email.message import EmailMessage
from email.policy import SMTP

from sqlalchemy import create_engine, event, text

from gateway.tokens import reply_address
from tests.conftest import wait_for
from tests.mail import build, send

SUPPORT = "support@support.example.test"
ALICE = "alice@customer.example.com"
BOB = "bob@other.example.org"

# Tables whose row count follows the mail: a scan of one of them costs more every day.
# (imap_state, leases, job_runs, rules_generations, kb_articles stay small.)
GROWING = {"tickets", "messages", "events", "participants", "outbox", "outbox_attempts", "spool",
           "thread_ids", "attachments", "sla_marks", "audit_log", "survey_responses"}


class Captured:
    """The statements an engine ran, each once, with the parameters of its first run."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.seen: dict[str, object] = {}
        self.lock = threading.Lock()
        self.on = True
        event.listen(engine, "before_cursor_execute", self._capture)

    def _capture(self, conn, cursor, statement, parameters, context, executemany):
        verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
        if not self.on or verb not in ("SELECT", "UPDATE", "DELETE", "WITH"):
            return
        if executemany:
            parameters = parameters[0] if parameters else ()
        with self.lock:
            self.seen.setdefault(statement, parameters)

    def stop(self) -> None:
        self.on = False
        event.remove(self.engine, "before_cursor_execute", self._capture)


def sqlite_full_scans(conn, statement: str, params) -> list[str]:
    rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params).fetchall()
    # detail reads "SCAN tickets", "SCAN m USING COVERING INDEX ..." or "SEARCH tickets USING ...";
    # a SCAN reads the whole table (or the whole of one of its indexes).
    bad = []
    for row in rows:
        detail = row[-1]
        words = detail.split()
        if words and words[0] == "SCAN" and len(words) > 1 and words[1] in GROWING:
            bad.append(detail)
    return bad


def _pg_nodes(node):
    yield node
    for child in node.get("Plans", []):
        yield from _pg_nodes(child)


def pg_full_scans(conn, statement: str, params) -> list[str]:
    conn.exec_driver_sql("SET enable_seqscan = off")
    plan = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", params).scalar_one()
    plan = plan if isinstance(plan, list) else json.loads(plan)
    bad = []
    for node in _pg_nodes(plan[0]["Plan"]):
        table = node.get("Relation Name", "")
        if table not in GROWING:
            continue
        kind = node["Node Type"]
        # A sequential scan, or an index walked end to end with no condition to start from.
        if kind == "Seq Scan" or (kind in ("Index Scan", "Index Only Scan") and "Index Cond" not in node):
            bad.append(f"{kind} on {table}" + (f" using {node['Index Name']}" if "Index Name" in node else ""))
    return bad


def full_scans(engine, captured: dict[str, object]) -> dict[str, list[str]]:
    found = {}
    with engine.connect() as conn:
        explain = sqlite_full_scans if engine.dialect.name == "sqlite" else pg_full_scans
        for statement, params in captured.items():
            bad = explain(conn, statement, params)
            if bad:
                found[statement] = bad
        conn.rollback()
    return found


def _drive_the_hot_path(gw, relay) -> None:
    """The mails a support address gets every day; returns when every one is processed and
    every mail they queued is sent."""
    app, port = gw.app, gw.smtp_port
    acks = 0

    def wait_acks(n):
        wait_for(lambda: len(relay.messages) >= n, timeout=30, what=f"{n} mail(s) at the relay")

    send(port, build(msgid="<root@customer.example.com>"), ALICE, [SUPPORT])
    acks += 1
    wait_acks(acks)
    # The test's own look-ups go through an engine of their own, outside the capture.
    own = create_engine(app.db.url)
    with own.connect() as c:
        ticket_id, ref = c.execute(text("SELECT id, ref FROM tickets")).one()
    send(port, build(msgid="<r1@customer.example.com>", in_reply_to="<root@customer.example.com>",
                     references="<root@customer.example.com>", subject="Re: Printer on fire"), ALICE, [SUPPORT])
    send(port, build(msgid="<r2@customer.example.com>", subject=f"Re: [{ref}] still burning"),
         ALICE, [SUPPORT])
    addr = reply_address(SUPPORT, app.signer.reply_token(ticket_id, ALICE))
    send(port, build(msgid="<r3@customer.example.com>", to=addr, subject="another word"), ALICE, [addr])
    # A second customer, a new case with an attachment and a colleague in Cc.
    m = EmailMessage()
    m["From"], m["To"], m["Cc"] = BOB, SUPPORT, "carol@other.example.org"
    m["Subject"], m["Message-ID"] = "Invoice attached", "<att@other.example.org>"
    m.set_content("The invoice is attached.\n")
    m.add_attachment(b"%PDF-1.4 not really\n" * 50, maintype="application", subtype="pdf", filename="invoice.pdf")
    send(port, m.as_bytes(policy=SMTP), BOB, [SUPPORT])
    acks += 1
    wait_acks(acks)

    def settled():
        with own.connect() as c:
            return c.execute(text("SELECT count(*) FROM spool WHERE status = 'pending'")).scalar() == 0 and \
                c.execute(text("SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending')")).scalar() == 0

    try:
        wait_for(settled, timeout=30, what="every mail processed and every outbox row sent")
    finally:
        own.dispose()


def test_hot_path_queries_use_indexes(running, relay):
    gw = running()
    captured = Captured(gw.app.db.engine)
    try:
        _drive_the_hot_path(gw, relay)
    finally:
        captured.stop()
    statements = dict(captured.seen)
    # The capture saw the hot path, not an idle gateway: threading look-ups, spool settlement, outbox claims.
    joined = "\n".join(statements)
    for table in ("thread_ids", "spool", "outbox", "tickets", "participants"):
        assert f"FROM {table}" in joined or f"UPDATE {table}" in joined, f"no statement on {table} captured"
    found = full_scans(gw.app.db.engine, statements)
    assert not found, "full scans of growing tables on the hot path:\n" + "\n\n".join(
        f"{stmt}\n  -> {'; '.join(bad)}" for stmt, bad in found.items())


def test_removing_tickets_uses_indexes(running, relay):
    """Retention and a customer's erasure remove tickets with everything hanging off them,
    and unlink what still names them (spool rows, outbound mail made from a spool row,
    linked tickets): with years of history each of those look-ups must be an index search."""
    from storage.queries.retention import delete_tickets

    gw = running()
    _drive_the_hot_path(gw, relay)
    app = gw.app
    with app.db.engine.connect() as c:
        ids = list(c.execute(text("SELECT id FROM tickets ORDER BY id")).scalars())
    assert len(ids) == 2
    captured = Captured(app.db.engine)
    try:
        with app.db.session() as s:
            delete_tickets(s, ids)
            s.rollback()
    finally:
        captured.stop()
    joined = "\n".join(captured.seen)
    assert "UPDATE outbox SET source_spool_id" in joined and "FROM spool" in joined
    found = full_scans(app.db.engine, dict(captured.seen))
    assert not found, "full scans of growing tables when removing tickets:\n" + "\n\n".join(
        f"{stmt}\n  -> {'; '.join(bad)}" for stmt, bad in found.items())


def test_the_scan_detector_sees_a_scan(app):
    """The check above can fail: an unindexed filter on a growing table is reported, an
    indexed one is not (on whichever database this run uses)."""
    engine = app.db.engine
    sqlite = engine.dialect.name == "sqlite"
    param, args = ("?", ("x",)) if sqlite else ("%(s)s", {"s": "x"})
    scan = f"SELECT id FROM messages WHERE subject = {param}"
    indexed = f"SELECT id FROM messages WHERE message_id = {param}"
    found = full_scans(engine, {scan: args, indexed: args})
    assert list(found) == [scan]


def test_the_duplicate_check_searches_by_message_id(app):
    """Is this mail stored already (same Message-ID, same sender)? With no statistics, as a
    gateway's SQLite database has them, the planner took the sender's index when the sender
    was in the WHERE: hundreds of rows for a regular customer, ingest a third slower with a
    million messages stored (bench/growth.py). The query asks by Message-ID alone."""
    from gateway.pipeline.process import _STORED

    engine = app.db.engine
    compiled = _STORED.compile(engine)
    sql = str(compiled)
    values = dict(compiled.params, message_id="<a@b>", sender="alice@customer.example.com")
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            args = tuple(values[name] for name in compiled.positiontup)
            plan = " ".join(r[-1] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", args).fetchall())
        else:
            conn.exec_driver_sql("SET enable_seqscan = off")
            plan = json.dumps(conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {sql}", values).scalar_one())
        conn.rollback()
    assert "ix_messages_message_id" in plan, plan
