"""Health and metrics: /healthz, /readyz, /metrics and `supportgw health` say what is wrong."""

from __future__ import annotations

import json
import smtplib
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

from gateway.edges import health
from gateway.clock import ManualClock
from storage.models import OutboxRow, SpoolEntry
from tests.conftest import free_port, fresh_database_url, wait_for
from tests.gwproc import GatewayProcess, write_run_config
from tests.hardening import cli
from tests.rspamd import rspamd  # noqa: F401  (the session fixture)

MAIL = (b"From: Ann Customer <ann@customer.example>\r\nTo: support@support.example.test\r\n"
        b"Subject: printer on fire\r\nMessage-ID: <m1@customer.example>\r\n\r\nIt is on fire.\r\n")


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except urllib.error.URLError:
        return 0, ""  # not listening (yet)


def test_a_quiet_gateway_is_ready(make_app):
    app = make_app()
    report = health.readiness(app)
    assert report["ok"] and report["problems"] == []
    assert report["checks"]["spool"]["pending"] == 0


def test_an_old_spool_backlog_makes_it_not_ready_and_says_why(make_app):
    clock = ManualClock()
    app = make_app(clock=clock)
    from gateway.pipeline import process as pipeline

    pipeline.spool(app, [(MAIL, pipeline.Source("smtp"))])
    assert health.readiness(app)["ok"]  # just arrived: a backlog is not a problem yet
    clock.advance(minutes=10)
    report = health.readiness(app)
    assert not report["ok"]
    [problem] = report["problems"]
    assert problem.startswith("spool: 1 message(s) wait in the spool, the oldest for 600s")
    assert report["checks"]["spool"]["oldest_pending_seconds"] == 600


def test_a_mailbox_nobody_reads_or_that_stopped_syncing_is_named(make_app):
    clock = ManualClock()
    app = make_app(clock=clock, imap=[{"name": "helpdesk", "host": "127.0.0.1", "security": "plain",
                                       "username": "u", "password": "p", "poll_interval": 60}])
    report = health.readiness(app)
    assert "mailbox helpdesk: no gateway holds its lease" in report["checks"]["imap"]["problem"]
    from gateway.edges.imap_state import mark_synced
    from gateway.leases import take_lease

    take_lease(app, "imap:helpdesk", "host:1", 3600)
    mark_synced(app, "helpdesk")
    box = health.readiness(app)["checks"]["imap"]["mailboxes"]["helpdesk"]
    assert box["ok"] and box["lease_holder"] == "host:1" and box["last_sync_seconds"] == 0
    mark_synced(app, "helpdesk", error="imap.example: connection refused")
    clock.advance(seconds=300)
    report = health.readiness(app)
    assert not report["ok"]
    assert "no good sync for 300s (limit 240s); last error: imap.example: connection refused" in report["problems"][0]


def test_failed_mail_is_a_warning_and_stuck_outbox_a_problem(make_app):
    clock = ManualClock()
    app = make_app(clock=clock)
    now = app.now()
    with app.db.session() as s:
        s.add(OutboxRow(kind="acknowledgement", rcpt="x@y", message_id="<a@b>", status="failed",
                        next_attempt_at=now, created_at=now))
        s.add(OutboxRow(kind="relay", rcpt="x@y", message_id="<c@d>", status="pending",
                        next_attempt_at=now, created_at=now))
    report = health.readiness(app)
    assert report["ok"] and "1 outbound mail(s) failed for good" in report["warnings"][0]
    clock.advance(minutes=30)
    report = health.readiness(app)
    assert not report["ok"] and "an outbound mail has been due for 1800s" in report["problems"][0]


def test_a_scheduled_job_that_stopped_running_is_a_problem_for_every_process(make_app):
    """The scheduler's own loop logs a stuck job; /readyz, `supportgw health` and /metrics read
    the database, so they say it too, whichever process asks."""
    from gateway import metrics
    from gateway.jobs import scheduler

    clock = ManualClock()
    app = make_app(clock=clock, workflow={"sla_check_seconds": 60})
    assert "jobs" not in health.readiness(app)["checks"]  # no scheduler ever ran here: nothing to say
    scheduler.run_due_jobs(app)
    clock.advance(seconds=170)
    report = health.readiness(app)
    assert report["ok"] and report["checks"]["jobs"]["last_run_seconds"]["sla-watch"] == 170
    assert 'supportgw_job_last_run_age_seconds{job="sla-watch"} 170.0' in metrics.render(app)[0].decode()
    clock.advance(seconds=20)  # 190 s: over 3 periods of the SLA watch, under those of the others
    report = health.readiness(app)
    assert not report["ok"]
    [problem] = report["problems"]
    assert problem.startswith("jobs: job sla-watch has not run for 190s (3 of its 60s periods)")
    assert "pending-reminders" not in problem
    assert "PROBLEM" in health.render_text(report) and "sla-watch 190s ago" in health.render_text(report)
    scheduler.run_job(app, "sla-watch")
    assert health.readiness(app)["ok"]


def test_run_serves_health_and_metrics_and_the_command_agrees(tmp_path, relay):
    """Through `supportgw run` with a worker process: the counters come from the worker."""
    web = free_port()
    cfg, port = write_run_config(tmp_path, fresh_database_url(tmp_path), relay.port,
                                 web={"listen": f"127.0.0.1:{web}"})
    gw = GatewayProcess(cfg, port, tmp_path / "gw.log")
    gw.start()
    try:
        base = f"http://127.0.0.1:{web}"
        wait_for(lambda: _get(base + "/healthz")[0] == 200, timeout=30, what="/healthz")
        status, body = _get(base + "/readyz")
        assert status == 200 and json.loads(body)["ok"] is True
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
            c.sendmail("ann@customer.example", ["support@support.example.test"], MAIL)
        wait_for(lambda: relay.messages, timeout=60, what="the acknowledgement")
        counted = 'supportgw_messages_total{outcome="processed",source="smtp"} 1.0'
        wait_for(lambda: counted in _get(base + "/metrics")[1], timeout=30, what="the worker's count in /metrics")
        wait_for(lambda: 'supportgw_outbox_attempts_total{kind="acknowledgement",result="sent"} 1.0'
                 in _get(base + "/metrics")[1], timeout=30, what="the sent mail counted")
        text = _get(base + "/metrics")[1]
        assert "supportgw_processing_latency_seconds_count 1.0" in text
        assert "supportgw_spool_backlog 0.0" in text
        assert 'supportgw_outbox_messages{kind="acknowledgement",status="sent"} 1.0' in text
        assert 'supportgw_job_last_run_age_seconds{job="sla-watch"}' in text  # the running scheduler's
        assert json.loads(_get(base + "/readyz")[1])["checks"]["jobs"]["ok"] is True
        done = cli(cfg, "health")
        assert done.returncode == 0 and "supportgw health: OK" in done.stdout, done.stdout + done.stderr
        assert json.loads(cli(cfg, "health", "--json").stdout)["ok"] is True
    finally:
        gw.terminate(30)
        gw.stop_quietly()


def test_health_command_exits_1_and_names_the_problem(tmp_path):
    url = fresh_database_url(tmp_path)
    cfg, _ = write_run_config(tmp_path, url, 25)
    assert cli(cfg, "db", "upgrade").returncode == 0
    from gateway.app import build_app
    from gateway.config import load_config

    app = build_app(load_config(cfg), migrate=False)
    push_at = app.now() - timedelta(hours=1)
    with app.db.session() as s:
        s.add(SpoolEntry(source="smtp", received_at=push_at, size=1, sha256="0" * 64, message_id="<x@y>",
                         dedupe_key="1" * 64, raw=b"x", status="pending"))
    app.db.dispose()
    done = cli(cfg, "health")
    assert done.returncode == 1
    assert "NOT READY" in done.stdout and "1 message(s) wait in the spool, the oldest for 36" in done.stdout


def test_the_dashboard_and_alert_rules_name_only_metrics_that_exist(make_app):
    import re
    from pathlib import Path

    from gateway import metrics

    app = make_app(imap=[{"name": "helpdesk", "host": "127.0.0.1", "security": "plain",
                          "username": "u", "password": "p"}])
    metrics.observe_processed([("smtp", "created", 0.2)])
    metrics.observe_delivery("acknowledgement", "sent")
    text = metrics.render(app)[0].decode()
    exposed = set(re.findall(r"^(supportgw_\w+)", text, re.M)) | set(re.findall(r"^# TYPE (supportgw_\w+)", text, re.M))
    docs = Path(__file__).resolve().parent.parent / "docs" / "monitoring"
    named = set()
    for f in ("alerts.yml", "grafana-dashboard.json"):
        named |= set(re.findall(r"supportgw_\w+", (docs / f).read_text()))
    json.loads((docs / "grafana-dashboard.json").read_text())
    assert named and named <= exposed, named - exposed


def _down_database_urls(tmp_path):
    """A PostgreSQL server that is not there (a closed port) and a SQLite file whose folder was removed
    (the engine makes the folder again, and an empty file: it answers, without one of our tables)."""
    return {"postgresql": f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/postgres",
            "sqlite": f"sqlite:///{tmp_path / 'removed' / 'supportgw.db'}"}


def test_with_the_database_down_readyz_and_the_health_command_say_so_without_a_traceback(tmp_path):
    from starlette.testclient import TestClient

    from gateway.app import build_app
    from gateway.config import load_config
    from gateway.edges.web import build_web_app

    for kind, url in _down_database_urls(tmp_path).items():
        where = tmp_path / kind
        where.mkdir()
        cfg, _ = write_run_config(where, url, 25, database={"connect_timeout": 2})
        done = cli(cfg, "health")
        assert done.returncode == 1, (kind, done.stdout, done.stderr)
        assert "NOT READY" in done.stdout and "database" in done.stdout and "PROBLEM" in done.stdout, done.stdout
        assert "Traceback" not in done.stdout + done.stderr, done.stderr
        done = cli(cfg, "health", "--json")
        report = json.loads(done.stdout)
        assert done.returncode == 1 and report["ok"] is False and not report["checks"]["database"]["ok"]
        assert report["problems"][0].startswith("database:"), report["problems"]
        # a running gateway whose database went away: /readyz answers 503 and names it
        app = build_app(load_config(cfg), migrate=False)
        try:
            with TestClient(build_web_app(app)) as c:
                r = c.get("/readyz")
        finally:
            app.db.dispose()
        assert r.status_code == 503, (kind, r.text)
        body = r.json()
        assert body["ok"] is False and body["problems"][0].startswith("database: database "), body


def test_the_spam_engine_not_answering_is_a_problem_and_answering_again_is_ok(make_app, rspamd):  # noqa: F811
    # asked now (GET /ping), not from what this process last saw: the command line sends no mail
    down = make_app(spam=rspamd.config(url=f"http://127.0.0.1:{free_port()}"))
    report = health.readiness(down)
    assert not report["ok"] and not report["checks"]["spam_engine"]["ok"]
    [problem] = report["problems"]
    assert problem.startswith("spam_engine: spam engine: rspamd at http://127.0.0.1:") and " DOWN since " in problem
    assert "mail is processed unchecked" in problem and "PROBLEM" in health.render_text(report)
    up = make_app(spam=rspamd.config())  # the private rspamd of tests/rspamd.py
    report = health.readiness(up)
    assert report["ok"], report["problems"]
    assert report["checks"]["spam_engine"] == {"ok": True, "detail": f"spam engine: rspamd at {rspamd.url}: ok"}


_COUNTING_RUN = """
import sys, time
from pathlib import Path
from gateway import metrics
folder = metrics.prepare_multiprocess(Path(sys.argv[1]))
metrics.observe_processed([("smtp", "created", 0.1)] * int(sys.argv[2]))
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
reg = CollectorRegistry()
multiprocess.MultiProcessCollector(reg)
total = [l for l in generate_latest(reg).decode().splitlines() if l.startswith("supportgw_messages_total{")]
print(folder, total, flush=True)
if sys.argv[3] == "stay":
    time.sleep(120)
"""


def test_gateways_sharing_a_data_dir_count_each_in_a_folder_of_their_own(tmp_path):
    """Several gateways on one database share the data_dir: a gateway starting must not empty
    another's metrics files, nor sum them into its own /metrics. A run of this host that ended
    leaves a folder the next start removes; another host's folder is left to that host."""
    import socket
    import subprocess
    import sys

    data = tmp_path / "var"
    host = "".join(c if c.isalnum() or c in "-." else "_" for c in socket.gethostname())
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = data / "metrics" / f"{host}-{ended.stdout.strip()}"
    elsewhere = data / "metrics" / "other-host.example-4242"
    for f in (dead, elsewhere):
        f.mkdir(parents=True)
        (f / "counter_1.db").write_bytes(b"x")
    (data / "metrics" / "counter_99.db").write_bytes(b"x")  # the flat layout of an older release
    env = {k: v for k, v in __import__("os").environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    first = subprocess.Popen([sys.executable, "-c", _COUNTING_RUN, str(data), "2", "stay"],
                             stdout=subprocess.PIPE, text=True, env=env)
    try:
        folder_a, _, total_a = first.stdout.readline().strip().partition(" ")
        assert "2.0" in total_a and Path(folder_a).parent == data / "metrics"
        second = subprocess.run([sys.executable, "-c", _COUNTING_RUN, str(data), "1", "go"],
                                capture_output=True, text=True, env=env, timeout=60)
        folder_b, _, total_b = second.stdout.strip().partition(" ")
        assert folder_b != folder_a and Path(folder_b).name == f"{host}-{Path(folder_b).name.rsplit('-', 1)[1]}"
        assert "1.0" in total_b and "3.0" not in total_b, total_b  # its own count, not the other's too
        assert any(Path(folder_a).iterdir()), "the running gateway's files were removed"
        assert not dead.exists() and elsewhere.exists()
        assert not (data / "metrics" / "counter_99.db").exists()
    finally:
        first.kill()
        first.wait()
