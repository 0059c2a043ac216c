"""A rules reload reaches every process: the edge reads the file, the worker processes
(and other gateways on the same database) route by what it put in force, and a broken
file changes nothing anywhere.

The first test runs `supportgw run` as deployed, with the default `gateway.workers = 1`:
tickets are routed in the worker process, the file is watched in the edge."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from sqlalchemy import create_engine, func, select

from gateway import rules_sync
from gateway.pipeline.process import Source, ingest
from gateway.runtime.runner import Gateway
from routing.loader import SAMPLE_RULES
from storage.models import Event, RulesGeneration, Ticket
from tests.conftest import drop_database, fresh_database_url, make_config, wait_for
from tests.gwproc import GatewayProcess, deliver_like_an_mta, write_run_config
from tests.mail import build

SAMPLE = SAMPLE_RULES.read_text(encoding="utf-8")


def tagging(tag: str, *, broken: bool = False) -> str:
    """The sample rules plus one rule tagging mail about zebras. `broken` has the same length
    (so an edit can leave the file's size and mtime alone) and is not valid TOML."""
    then = f'then = {{ tags = ["{tag}"] }}'
    if broken:
        then = then.replace("{", "[").replace("}", "]")
    return SAMPLE + f'\n[[rules]]\nname = "zebras"\nwhen = {{ keywords = ["zebra"] }}\n{then}\n'


def save(path: Path, text: str, *, mtime_ns: int | None = None) -> None:
    path.write_text(text, encoding="utf-8")
    st = path.stat()
    # a later save must look changed even within the filesystem's timestamp granularity
    os.utime(path, ns=(st.st_atime_ns, mtime_ns if mtime_ns is not None else st.st_mtime_ns + 5_000_000_000))


class Db:
    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)

    def scalar(self, stmt):
        with self.engine.connect() as c:
            return c.execute(stmt).scalar()

    def ticket_tags(self, n: int) -> list[str] | None:
        with self.engine.connect() as c:
            row = c.execute(select(Ticket.tags).order_by(Ticket.id).offset(n - 1).limit(1)).first()
        return None if row is None else list(row[0])

    def generations(self) -> int:
        return self.scalar(select(func.count(RulesGeneration.id)))


def _worker_pids(pid: int) -> set[int]:
    out = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            cmd = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"spawn_main" in cmd and b"resource_tracker" not in cmd:
                out.add(int(child))
    return out


def test_every_process_of_supportgw_run_routes_by_the_reloaded_rules(tmp_path, relay):
    rules = tmp_path / "rules.toml"
    save(rules, tagging("zebra-gen1"))
    url = fresh_database_url(tmp_path)
    cfg, port = write_run_config(tmp_path, url, relay.port, routing={"rules_file": str(rules)})
    log = tmp_path / "gw.log"
    gw = GatewayProcess(cfg, port, log)
    db = Db(url)
    sent = 0

    def mail_routed_with() -> list[str]:
        nonlocal sent
        sent += 1
        deliver_like_an_mta(port, "zoe@zoo.example", build(frm="zoe@zoo.example", msgid=f"<z{sent}@zoo>",
                                                           subject=f"A zebra escaped ({sent})", body="Help.\n"))
        return wait_for(lambda: db.ticket_tags(sent), timeout=60, what=f"ticket {sent} routed") or []

    gw.start()
    try:
        wait_for(lambda: len(_worker_pids(gw.proc.pid)) == 1, timeout=60, what="the worker process")
        assert "zebra-gen1" in mail_routed_with()

        save(rules, tagging("zebra-gen2"))  # saved: the edge notices within its 2 s check
        wait_for(lambda: db.generations() == 2, timeout=30, what="the saved rules put in force")
        tags = mail_routed_with()
        assert "zebra-gen2" in tags and "zebra-gen1" not in tags, "the worker still routes by the old rules"
        with db.engine.connect() as c:
            routed = c.execute(select(Event.data).where(Event.kind == "routed").order_by(Event.id.desc())).first()
        assert routed[0]["rules_generation"] == 2

        save(rules, tagging("zebra-gen3", broken=True))
        wait_for(lambda: "routing rules not reloaded" in log.read_text(), timeout=30, what="the refusal logged")
        assert "zebra-gen2" in mail_routed_with()  # old rules stay, in the worker too
        # a worker that starts while the file is broken (here: restarted after a crash)
        # takes the rules in force, not the file, and does not crash-loop on it
        [worker] = _worker_pids(gw.proc.pid)
        os.kill(worker, signal.SIGKILL)
        wait_for(lambda: _worker_pids(gw.proc.pid) - {worker}, timeout=30, what="the worker restarted")
        assert "zebra-gen2" in mail_routed_with()
        time.sleep(4.5)  # two more file checks of the edge: still the one refusal
        assert log.read_text().count("routing rules not reloaded") == 1
        assert db.generations() == 2

        # SIGHUP reads the file even when its size and mtime say nothing changed
        broken_mtime = rules.stat().st_mtime_ns
        save(rules, tagging("zebra-gen3"), mtime_ns=broken_mtime)
        time.sleep(2.5)
        assert db.generations() == 2
        gw.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: db.generations() == 3, timeout=30, what="SIGHUP reload put in force")
        tags = mail_routed_with()
        assert "zebra-gen3" in tags and "zebra-gen2" not in tags
    finally:
        gw.stop_quietly()
        db.engine.dispose()
        drop_database(url)


def _app(tmp_path, url, rules: Path):
    from gateway.app import build_app

    return build_app(make_config(tmp_path, database_url=url, routing={"rules_file": str(rules)}), migrate=False)


def test_a_second_process_on_the_database_follows_what_the_edge_put_in_force(tmp_path):
    """Two processes sharing one database (a worker, or another gateway on PostgreSQL): the one
    that loaded the file before the save routes by the saved rules as soon as the edge publishes
    them, and a broken save leaves both on the last good rules."""
    rules = tmp_path / "rules.toml"
    save(rules, tagging("zebra-gen1"))
    url = fresh_database_url(tmp_path)
    edge_app, other = _app(tmp_path, url, rules), _app(tmp_path, url, rules)
    edge = Gateway(edge_app, smtp=False, imap=False, scheduler=False)
    try:
        edge.start()  # publishes generation 1
        save(rules, tagging("zebra-gen2"))
        edge.reload_rules(only_if_changed=True)
        assert edge_app.rules.generation == 2

        def routed(n: int) -> list[str]:
            raw = build(frm="zoe@zoo.example", msgid=f"<p{n}@zoo>", subject=f"zebra {n}", body="Help.\n")
            assert ingest(other, [(raw, Source("smtp", envelope_to=("support@support.example.test",)))])["created"]
            with other.db.session() as s:
                return list(s.execute(select(Ticket.tags).order_by(Ticket.id.desc())).scalars().first())

        assert "zebra-gen2" in routed(1)
        assert other.rules.generation == 2

        save(rules, tagging("zebra-gen3", broken=True))
        edge.reload_rules(only_if_changed=True)
        assert edge_app.rules.last_error is not None and edge_app.rules.generation == 2
        assert "zebra-gen2" in routed(2)

        # a gateway sharing the rules file publishes the same save: no new generation
        save(rules, tagging("zebra-gen3"))
        assert rules_sync.reload_from_file(edge_app) is True
        assert rules_sync.reload_from_file(other) is True
        assert edge_app.rules.generation == other.rules.generation == 3
        assert "zebra-gen3" in routed(3)
    finally:
        edge.stop()
        for a in (edge_app, other):
            a.db.dispose()
        drop_database(url)
