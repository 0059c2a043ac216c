"""Scale out on PostgreSQL: three gateway processes, one database, the same guarantees.

Three real `supportgw run` processes share one PostgreSQL database and one
Dovecot mailbox. Mail arrives concurrently over SMTP at all three (clients
fail over like an MTA with several MX records) and in the IMAP mailbox; one
process is killed with SIGKILL half-way. Afterwards every message is a ticket
message exactly once, references never collide, replies thread, every
acknowledgement went out, and a survivor drained the mailbox.
"""

from __future__ import annotations

import os
import random
import signal
import smtplib
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from storage.models import Lease, Message, OutboxRow, SpoolEntry, Ticket
from tests.conftest import free_port, wait_for
from tests.dovecot import dovecot  # noqa: F401  (fixture)
from tests.mail import build, parse, toml_value

PG_ADMIN = os.environ.get("SUPPORTGW_TEST_DB", "") if os.environ.get("SUPPORTGW_TEST_DB", "").startswith(
    "postgresql") else "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
SUPPORT = "support@support.example.test"
N_SMTP = int(os.environ.get("SUPPORTGW_SCALE_SMTP", "2400"))
N_IMAP = int(os.environ.get("SUPPORTGW_SCALE_IMAP", "600"))


def _pg_or_fail():
    import psycopg

    try:
        psycopg.connect(PG_ADMIN.replace("+psycopg", ""), connect_timeout=3).close()
    except Exception as exc:
        if os.environ.get("SUPPORTGW_ALLOW_SKIP") == "1":
            pytest.skip(f"PostgreSQL not reachable (SUPPORTGW_ALLOW_SKIP=1): {exc}")
        pytest.fail(f"PostgreSQL not reachable at {PG_ADMIN}: {exc}; start it or set SUPPORTGW_ALLOW_SKIP=1")


@pytest.fixture
def pg_url():
    import psycopg

    from storage.migrate import upgrade

    _pg_or_fail()
    name = f"sgw_scale_{uuid.uuid4().hex[:10]}"
    admin = PG_ADMIN.replace("+psycopg", "")
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    upgrade(url)
    yield url
    if os.environ.get("SUPPORTGW_KEEP_DB"):
        print(f"kept database {url}")
        return
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _write_config(path: Path, *, url: str, data_dir: Path, smtp_port: int, relay_port: int, imap: dict) -> None:
    sections = {
        "gateway": {"domain": "support.example.test", "support_addresses": [SUPPORT], "data_dir": str(data_dir),
                    "secret_key": "scale-secret-key-0123456789abcdef", "workers": 1},
        "database": {"url": url},
        "smtp": {"host": "127.0.0.1", "port": smtp_port, "max_messages_per_ip_per_minute": 0,
                 "max_connections_per_ip": 100},
        "outbound": {"smtp_host": "127.0.0.1", "smtp_port": relay_port, "poll_interval": 0.3,
                     "backoff_base": 0.5, "rate_limit_per_hour": 100000},
        "workflow": {"sla_check_seconds": 3600},
    }
    lines = []
    for name, kv in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in kv.items()]
    lines.append("[[imap]]")
    lines += [f"{k} = {toml_value(v)}" for k, v in imap.items()]
    path.write_text("\n".join(lines) + "\n")


class Gw:
    def __init__(self, tmp: Path, i: int, **kw):
        self.port = free_port()
        self.dir = tmp / f"gw{i}"
        self.dir.mkdir()
        self.cfg = self.dir / "supportgw.toml"
        # one data_dir for all, as on one host or a shared file system (gateway/runtime/installation.py)
        _write_config(self.cfg, smtp_port=self.port, data_dir=tmp / "var", **kw)
        self.log = open(self.dir / "gw.log", "w")
        exe = Path(sys.executable).parent / "supportgw"
        self.proc = subprocess.Popen([str(exe), "--config", str(self.cfg), "run"], stdout=self.log,
                                     stderr=self.log, start_new_session=True)

    def kill(self):
        os.killpg(self.proc.pid, signal.SIGKILL)  # the gateway and its worker process, at once
        self.proc.wait(10)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


def _listening(port):
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


@pytest.mark.postgres
@pytest.mark.slow
def test_three_gateways_one_postgres_one_killed(tmp_path, pg_url, relay, dovecot):  # noqa: F811
    rnd = random.Random(11)
    imap_cfg = dovecot.mailbox_config("shared", poll_interval=1.0, after="seen")

    # the IMAP share: appended before the gateways start, so the drain races the SMTP load
    # distinct words per mail: mails differing only in digits would (rightly) look like a loop
    words = "printer server login invoice backup network disk mail portal report license vpn".split()

    def text(i):
        r = random.Random(i)
        return " ".join(r.choice(words) for _ in range(12)) + "\n"

    imap_msgs = [build(msgid=f"<imap{i}@customer.example.com>", frm=f"imap{i % 97}@customer.example.com",
                       subject=f"imap case {i} {words[i % len(words)]}", body=text(i)) for i in range(N_IMAP)]
    for k in range(0, N_IMAP, 100):
        dovecot.append(*imap_msgs[k:k + 100])

    gws = [Gw(tmp_path, i, url=pg_url, relay_port=relay.port, imap=imap_cfg) for i in range(3)]
    try:
        for g in gws:
            wait_for(lambda g=g: _listening(g.port), timeout=60, what=f"gateway on {g.port}")

        # SMTP: a fifth of the messages reply to one already accepted (so its parent is in the spool)
        is_reply = {i for i in range(N_SMTP) if i > 20 and rnd.random() < 0.2}
        parent_of: dict[int, int] = {}
        accepted: set[int] = set()
        lock = threading.Lock()
        sent_count = [0]

        sender_of: dict[int, str] = {}

        def message(i):
            if i in is_reply:
                with lock:
                    done = sorted(accepted)
                if done:
                    j = done[rnd.randrange(max(0, len(done) - 30), len(done))]
                    parent_of[i] = j
                    sender_of[i] = sender_of[j]  # the customer answers in their own thread
                    return build(msgid=f"<s{i}@customer.example.com>", frm=sender_of[i],
                                 in_reply_to=f"<s{j}@customer.example.com>", subject=f"Re: case {j}",
                                 body=text(20_000 + i))
            sender_of[i] = f"user{i}@customer.example.com"
            return build(msgid=f"<s{i}@customer.example.com>", frm=sender_of[i], subject=f"case {i}",
                         body=text(10_000 + i))

        def client(idxs):
            conn, port = None, None
            for i in idxs:
                raw = message(i)
                for attempt in range(200):
                    alive = [g.port for g in gws if g.proc.poll() is None]
                    try:
                        if conn is None:
                            port = rnd.choice(alive)
                            conn = smtplib.SMTP("127.0.0.1", port, timeout=30)
                        conn.sendmail(f"user{i}@customer.example.com", [SUPPORT], raw)
                        with lock:
                            accepted.add(i)
                            sent_count[0] += 1
                        break
                    except (OSError, smtplib.SMTPException):
                        # like an MTA: that MX failed or said 4xx, try again (maybe another MX)
                        try:
                            conn and conn.close()
                        except Exception:
                            pass
                        conn = None
                        time.sleep(0.05)
            if conn is not None:
                conn.quit()

        order = list(range(N_SMTP))
        threads = [threading.Thread(target=client, args=(order[k::6],)) for k in range(6)]
        for t in threads:
            t.start()
        # kill the gateway that holds the IMAP lease once half of the SMTP mail is in
        wait_for(lambda: sent_count[0] >= N_SMTP // 2, timeout=600, what="half the SMTP mail")
        engine = create_engine(pg_url)
        with engine.connect() as c:
            holder = c.execute(select(Lease.holder).where(Lease.name == "imap:shared")).scalar()
        victim = next((g for g in gws if holder and holder.endswith(f":{g.proc.pid}")), gws[0])
        victim.kill()
        for t in threads:
            t.join()
        assert accepted == set(range(N_SMTP)), f"{N_SMTP - len(accepted)} messages never accepted"

        def settled():
            with engine.connect() as c:
                pending = c.execute(select(func.count()).select_from(SpoolEntry)
                                    .where(SpoolEntry.status == "pending")).scalar()
                spooled = c.execute(select(func.count()).select_from(SpoolEntry)).scalar()
                unsent = c.execute(select(func.count()).select_from(OutboxRow)
                                   .where(OutboxRow.status != "sent")).scalar()
            return pending == 0 and spooled >= N_SMTP + N_IMAP and unsent == 0
        wait_for(settled, timeout=900, interval=1, what="every message processed and every mail sent")
        wait_for(lambda: all(b"\\Seen" in m["flags"] for m in dovecot.messages().values()), timeout=60,
                 what="the mailbox drained by a survivor")

        with engine.connect() as c:
            inbound = Counter(c.execute(select(Message.message_id).where(Message.direction == "in")).scalars())
            refs = list(c.execute(select(Ticket.ref)).scalars())
            quarantined = c.execute(select(func.count()).select_from(SpoolEntry)
                                    .where(SpoolEntry.status == "quarantined")).scalar()
            acks = list(c.execute(select(OutboxRow.message_id, OutboxRow.source_spool_id)
                                  .where(OutboxRow.kind == "acknowledgement")))
            by_mid = dict(c.execute(select(Message.message_id, Message.ticket_id)
                                    .where(Message.direction == "in")).all())

        def lease_holder():
            with engine.connect() as c:
                return c.execute(select(Lease.holder).where(Lease.name == "imap:shared")).scalar()
        # the killed holder's lease runs out within seconds; a survivor takes the mailbox over
        new_holder = wait_for(lambda: (h := lease_holder()) and h != holder and h, timeout=120,
                              what="a survivor holding the mailbox lease")
        engine.dispose()

        expected = {f"s{i}@customer.example.com" for i in range(N_SMTP)} | \
                   {f"imap{i}@customer.example.com" for i in range(N_IMAP)}
        assert quarantined == 0
        assert set(inbound) == expected, "every message is a ticket message"
        dupes = {m: n for m, n in inbound.items() if n > 1}
        assert not dupes, f"messages stored twice: {list(dupes)[:5]}"
        assert len(refs) == len(set(refs)), "ticket references collided"
        assert len(parent_of) > N_SMTP // 10
        for i, j in parent_of.items():
            assert by_mid[f"s{i}@customer.example.com"] == by_mid[f"s{j}@customer.example.com"], \
                f"reply s{i} did not thread onto s{j}'s ticket"
        # one acknowledgement per new ticket, each queued once
        assert len(acks) == len(refs)
        assert len({spool for _, spool in acks}) == len(acks)
        # delivered: every one at least once; a resend is only possible for the few in flight at the kill
        delivered = Counter()
        for m in relay.messages:
            delivered[parse(m["raw"])["Message-ID"].strip().strip("<>")] += 1
        assert all(delivered[mid] >= 1 for mid, _ in acks), "an acknowledgement was never delivered"
        resent = sum(n - 1 for mid, n in delivered.items() if n > 1)
        assert resent <= 20, f"{resent} mails delivered twice (only those in flight at the kill may be)"
        assert new_holder and new_holder != holder, "a survivor took over the mailbox"
        print(f"\nscale: {N_SMTP} SMTP + {N_IMAP} IMAP, {len(refs)} tickets, resent after kill: {resent}")
    finally:
        for g in gws:
            g.stop()
