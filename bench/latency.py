"""Latency of the live path, through `supportgw run` as a separate process (issue 26, targets
p99 <= 1 s for both):

1. SMTP: from the 250 our listener answers to a customer's DATA, to the acknowledgement
   being handed to the relay (a loopback aiosmtpd sink in this process, so both ends read
   the same clock), under a steady load of --rate new cases a second (default 20) for
   --seconds. Every mail comes from its own customer, so every one is a new ticket with an
   acknowledgement.
2. IMAP: from Dovecot's OK to an APPEND (a private Dovecot, tests/dovecot.py) to the
   mail's ticket message existing in the database, the mailbox drained with IDLE (its
   re-sync interval set long, so only IDLE can explain a fast figure), at --imap-rate
   appends a second.

A sender that falls behind its schedule sends late rather than in bursts; the figures are
from the 250 (or the APPEND's OK) actually received. The load average at the start is
printed beside the figures: this machine is shared.

    python bench/latency.py [--rate 20] [--seconds 30] [--imap-rate 20] [--imap-seconds 30]
                            [--backend sqlite|postgresql] [--skip-smtp] [--skip-imap]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import smtplib
import statistics
import sys
import tempfile
import threading
import time
import uuid
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, make_msgid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiosmtpd.controller import Controller  # noqa: E402
from sqlalchemy import bindparam, create_engine, select  # noqa: E402

from storage.migrate import upgrade  # noqa: E402
from storage.models import Message  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.dovecot import Dovecot, new_base  # noqa: E402
from tests.gwproc import GatewayProcess  # noqa: E402
from tests.mail import toml_value  # noqa: E402

SUPPORT = "support@support.example.test"
PG = os.environ.get("SUPPORTGW_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
SUBJECTS = ["Cannot log in to the portal", "Invoice question for March", "API returns 500 errors",
            "VPN disconnects every hour", "系统宕机，全部用户无法登录", "备份任务失败"]


def new_case(i: int, run: str) -> tuple[str, str, bytes]:
    """(customer address, Message-ID, bytes) of a first mail from a customer of its own."""
    frm = f"customer{i}.{run}@latency.example"
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = f"Customer {i} <{frm}>", SUPPORT, SUBJECTS[i % len(SUBJECTS)]
    m["Message-ID"] = msgid = make_msgid(domain="latency.example")
    m["Date"] = formatdate(localtime=True)
    m.set_content(f"Hello support,\n\nsince this morning case {i} is broken; please help.\n\nCustomer {i}\n")
    return frm, msgid, m.as_bytes(policy=SMTP_POLICY)


def percentiles(xs: list[float]) -> tuple[float, float, float]:
    xs = sorted(xs)
    p = lambda q: xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]  # noqa: E731
    return p(0.50), p(0.99), xs[-1]


def write_config(d: Path, url: str, relay_port: int, imap: dict | None = None) -> tuple[Path, int]:
    port = free_port()
    key = d / "secret.key"
    key.write_text("bench-secret-key-0123456789abcdef\n")
    key.chmod(0o600)
    sections = {
        "gateway": {"domain": "support.example.test", "support_addresses": [SUPPORT],
                    "display_name": "Example Support", "data_dir": str(d / "var"), "secret_key": {"file": str(key)}},
        "database": {"url": url},
        "smtp": {"host": "127.0.0.1", "port": port, "max_messages_per_ip_per_minute": 0,
                 "max_connections_per_ip": 100},
        "outbound": {"smtp_host": "127.0.0.1", "smtp_port": relay_port, "rate_limit_per_hour": 1_000_000,
                     "repeat_limit_per_hour": 0},
    }
    lines = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        for k, v in values.items():
            lines.append(f"{k} = " + ("{ file = " + toml_value(v["file"]) + " }" if isinstance(v, dict) else toml_value(v)))
    if imap:
        lines.append("[[imap]]")
        for k, v in imap.items():
            lines.append(f"{k} = " + ("{ value = " + toml_value(v["value"]) + " }" if isinstance(v, dict) else toml_value(v)))
    path = d / "supportgw.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, port


class Sink:
    """The relay: when each acknowledgement arrived, by its recipient."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}

    async def handle_DATA(self, server, session, envelope):
        now = time.monotonic()
        for rcpt in envelope.rcpt_tos:
            self.arrived.setdefault(rcpt.lower(), now)
        return "250 OK"


def wait_until(predicate, what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)


def paced(rate: float, seconds: float, senders: int, send) -> None:
    """Call send(i) for i = 0 .. rate*seconds-1, message i at start + i/rate, over `senders` threads."""
    total = int(rate * seconds)
    start = time.monotonic() + 0.5

    def worker(k: int) -> None:
        for i in range(k, total, senders):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            send(i)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


class Database:
    def __init__(self, backend: str, d: Path) -> None:
        self.name = ""
        if backend == "postgresql":
            import psycopg

            self.name = f"sgw_latency_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(PG.replace("+psycopg", ""), autocommit=True) as c:
                c.execute(f"CREATE DATABASE {self.name}")
            self.url = PG.rsplit("/", 1)[0] + "/" + self.name
        else:
            (d / "var").mkdir(parents=True, exist_ok=True)
            self.url = f"sqlite:///{d}/var/supportgw.db"
        upgrade(self.url)

    def drop(self) -> None:
        if self.name:
            import psycopg

            with psycopg.connect(PG.replace("+psycopg", ""), autocommit=True) as c:
                c.execute(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")


class Watcher(threading.Thread):
    """When each Message-ID in `sent` first appears as a stored ticket message (polled
    every 20 ms through an engine of its own)."""

    def __init__(self, url: str, sent: dict[str, float]) -> None:
        super().__init__(daemon=True)
        self.engine = create_engine(url)
        self.sent, self.seen = sent, {}
        self.stmt = select(Message.message_id).where(Message.message_id.in_(bindparam("ids", expanding=True)))
        self.deadline = float("inf")

    def run(self) -> None:
        while time.monotonic() < self.deadline:
            waiting = [m for m in list(self.sent) if m not in self.seen]
            if waiting:
                with self.engine.connect() as c:
                    # stored with or without the angle brackets: ask for both
                    found = c.execute(self.stmt, {"ids": waiting + [f"<{m}>" for m in waiting]}).scalars().all()
                now = time.monotonic()
                for m in found:
                    self.seen.setdefault(m.strip("<>"), now)
            elif self.deadline < float("inf"):
                break
            time.sleep(0.02)

    def finish(self, within: float = 120) -> dict[str, float]:
        self.deadline = time.monotonic() + within
        self.join()
        self.engine.dispose()
        return self.seen


def keep_log(gw: GatewayProcess, name: str) -> None:
    target = Path(tempfile.gettempdir()) / f"sgw-latency-{name}.log"
    target.write_bytes(gw.log.read_bytes() if gw.log.exists() else b"")
    print(f"  gateway log kept in {target}")


@contextlib.contextmanager
def relay_and_database(backend: str):
    """What both measurements run against: a loopback relay capturing what the gateway sends
    (the sink and its port), a run id, a scratch folder and a fresh database; all gone after."""
    sink = Sink()
    relay = Controller(sink, hostname="127.0.0.1", port=free_port())
    relay.start()
    try:
        with tempfile.TemporaryDirectory(prefix="sgw-latency-") as top:
            db = Database(backend, Path(top))
            try:
                yield sink, relay.port, uuid.uuid4().hex[:6], Path(top), db
            finally:
                db.drop()
    finally:
        relay.stop()


def smtp_latency(backend: str, rate: float, seconds: float) -> list[float]:
    with relay_and_database(backend) as (sink, relay_port, run, d, db):
        config, port = write_config(d, db.url, relay_port)
        gw = GatewayProcess(config, port, d / "gateway.log")
        accepted: dict[str, float] = {}
        stored: dict[str, float] = {}  # by Message-ID: the 250
        ids: dict[str, str] = {}  # customer -> Message-ID
        watcher = Watcher(db.url, stored)
        try:
            gw.start()
            watcher.start()

            local = threading.local()

            def send(i: int) -> None:
                frm, msgid, raw = new_case(i, run)
                if not hasattr(local, "conn"):
                    local.conn = smtplib.SMTP("127.0.0.1", port, timeout=60)
                local.conn.sendmail(frm, [SUPPORT], raw)
                accepted[frm] = stored[msgid.strip("<>")] = time.monotonic()  # sendmail returns on the 250
                ids[frm] = msgid.strip("<>")

            # Untimed: the worker process starts after the listener; wait until mail goes round.
            warm = [new_case(i, run + "w") for i in range(3)]
            with smtplib.SMTP("127.0.0.1", port, timeout=60) as conn:
                for frm, _, raw in warm:
                    conn.sendmail(frm, [SUPPORT], raw)
            wait_until(lambda: all(frm.lower() in sink.arrived for frm, _, _ in warm), "the warm-up acknowledgements")
            paced(rate, seconds, senders=4, send=send)
            deadline = time.monotonic() + 120
            while len([a for a in accepted if a in sink.arrived]) < len(accepted) and time.monotonic() < deadline:
                time.sleep(0.1)
            seen = watcher.finish(within=5)
        finally:
            gw.terminate(60)
            keep_log(gw, "smtp")
    missing = [a for a in accepted if a not in sink.arrived]
    if missing:
        print(f"  {len(missing)} acknowledgement(s) never reached the relay (of {len(accepted)})")
    report("  of which 250 -> ticket message stored", [seen[ids[a]] - t for a, t in accepted.items() if ids[a] in seen])
    report("  of which ticket stored -> ack at the relay",
           [sink.arrived[a] - seen[ids[a]] for a in accepted if a in sink.arrived and ids[a] in seen])
    return [sink.arrived[a] - t for a, t in accepted.items() if a in sink.arrived]


def imap_latency(backend: str, rate: float, seconds: float) -> list[float]:
    base = new_base()
    server = Dovecot(base).start()
    with relay_and_database(backend) as (sink, relay_port, run, d, db):
        # A long re-sync interval: a mail seen within a second was seen through IDLE.
        mailbox = server.mailbox_config(idle=True, poll_interval=300.0, after="seen")
        config, port = write_config(d, db.url, relay_port, imap=mailbox)
        gw = GatewayProcess(config, port, d / "gateway.log")
        appended: dict[str, float] = {}
        watcher = Watcher(db.url, appended)
        try:
            gw.start()
            watcher.start()
            # Untimed: the poller logs in, drains INBOX and enters IDLE; the worker starts.
            warm = {}
            for i in range(2):
                _, msgid, raw = new_case(i, run + "w")
                server.append(raw)
                warm[msgid.strip("<>")] = time.monotonic()
            appended.update(warm)
            wait_until(lambda: all(m in watcher.seen for m in warm), "the warm-up mails stored")
            for m in warm:
                del appended[m]

            local = threading.local()

            def append(i: int) -> None:
                _, msgid, raw = new_case(i, run)
                if not hasattr(local, "client"):
                    local.client = server.client()
                local.client.append("INBOX", raw)
                appended[msgid.strip("<>")] = time.monotonic()  # after Dovecot's OK

            paced(rate, seconds, senders=2, send=append)
            seen = watcher.finish()
        finally:
            gw.terminate(60)
            keep_log(gw, "imap")
            server.stop()
            shutil.rmtree(base, ignore_errors=True)
    missing = [m for m in appended if m not in seen]
    if missing:
        print(f"  {len(missing)} appended mail(s) never became a ticket message (of {len(appended)})")
    return [seen[m] - t for m, t in appended.items() if m in seen]


def report(label: str, xs: list[float]) -> None:
    if not xs:
        print(f"{label}: no figures")
        return
    p50, p99, worst = percentiles(xs)
    ok = "meets" if p99 <= 1.0 else "MISSES"
    print(f"{label}: n={len(xs)}  p50 {p50 * 1000:7.0f} ms  p99 {p99 * 1000:7.0f} ms  max {worst * 1000:7.0f} ms  "
          f"mean {statistics.mean(xs) * 1000:7.0f} ms  ({ok} p99 <= 1000 ms)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=20.0)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--imap-rate", type=float, default=20.0)
    ap.add_argument("--imap-seconds", type=float, default=30.0)
    ap.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--skip-smtp", action="store_true")
    ap.add_argument("--skip-imap", action="store_true")
    args = ap.parse_args()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores; "
          f"database: {args.backend}", flush=True)
    if not args.skip_smtp:
        report(f"SMTP 250 -> acknowledgement at the relay, {args.rate:g} msgs/s for {args.seconds:g}s",
               smtp_latency(args.backend, args.rate, args.seconds))
    if not args.skip_imap:
        report(f"Dovecot APPEND -> ticket message stored (IDLE), {args.imap_rate:g} msgs/s for {args.imap_seconds:g}s",
               imap_latency(args.backend, args.imap_rate, args.imap_seconds))


if __name__ == "__main__":
    main()
