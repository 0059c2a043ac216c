"""Shared fixtures: real databases (SQLite file or PostgreSQL), a running
gateway on loopback, and a capturing SMTP relay.

SUPPORTGW_TEST_DB=postgresql+psycopg://postgres@127.0.0.1:5432/postgres runs
every test against PostgreSQL (one fresh database per test, cloned from a
migrated template); unset means SQLite files under pytest's tmp dir.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from gateway.app import build_app
from gateway.clock import ManualClock, SystemClock
from gateway.config import parse_config

TEST_DB = os.environ.get("SUPPORTGW_TEST_DB", "")
ALLOW_SKIP = os.environ.get("SUPPORTGW_ALLOW_SKIP") == "1"


# ---------------------------------------------------------------- the shared corpora
# Real mail from ../shared/corpora (or $SUPPORTGW_CORPORA). A fresh clone has no such
# folder: its corpus tests skip, and the run ends with one line saying how many and why.
# CI sets SUPPORTGW_REQUIRE_CORPORA=1, and then a missing folder stops the run instead.

def _find_corpora() -> tuple[str, str]:
    """(the corpora folder, or "" when there is none; why there is none)."""
    given = os.environ.get("SUPPORTGW_CORPORA", "")
    folder = Path(given) if given else Path(__file__).resolve().parent.parent.parent / "shared" / "corpora"
    if folder.is_dir():
        return str(folder), ""
    if given:
        return "", f"SUPPORTGW_CORPORA={given} is not a folder"
    return "", f"SUPPORTGW_CORPORA is not set and {folder} does not exist"


CORPORA, NO_CORPORA_WHY = _find_corpora()
CORPORA_REQUIRED = os.environ.get("SUPPORTGW_REQUIRE_CORPORA") == "1"
NO_CORPORA = f"no corpora: {NO_CORPORA_WHY}"  # every corpus test's skip reason starts with "no corpora: "
needs_corpora = pytest.mark.skipif(not CORPORA, reason=NO_CORPORA)


def corpus(*parts: str) -> Path:
    """A path in the shared corpora; skips the test only when there are no corpora at all."""
    if not CORPORA:
        pytest.skip(NO_CORPORA)
    p = Path(CORPORA, *parts)
    assert p.exists(), f"corpus file missing: {p}"
    return p


def pytest_configure(config):
    if CORPORA_REQUIRED and not CORPORA:
        raise pytest.UsageError(f"SUPPORTGW_REQUIRE_CORPORA=1 but {NO_CORPORA_WHY}: "
                                "point SUPPORTGW_CORPORA at a copy of shared/corpora")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# ---------------------------------------------------------------- databases

_pg_template: dict[str, str] = {}
_pg_created: list[str] = []  # every database this run made (dropped at the end, whatever happened)
_sqlite_template: dict[str, Path] = {}


PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _pg_admin_url() -> str:
    return TEST_DB if TEST_DB.startswith("postgresql") else PG_DEFAULT


def _pg_exec(sql: str) -> None:
    import psycopg

    url = _pg_admin_url().replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def _pg_url_for(dbname: str) -> str:
    base, _, _ = _pg_admin_url().rpartition("/")
    return f"{base}/{dbname}"


def require_postgres() -> None:
    """A test that needs PostgreSQL whichever backend the suite runs on."""
    import psycopg

    try:
        psycopg.connect(_pg_admin_url().replace("+psycopg", ""), connect_timeout=3).close()
    except Exception as exc:
        if ALLOW_SKIP:
            pytest.skip(f"PostgreSQL not reachable (SUPPORTGW_ALLOW_SKIP=1): {exc}")
        pytest.fail(f"PostgreSQL not reachable at {_pg_admin_url()}: {exc}; start it, or set SUPPORTGW_ALLOW_SKIP=1")


def fresh_database_url(tmp_path: Path, *, backend: str = "") -> str:
    from storage.migrate import upgrade

    if backend == "postgresql":
        require_postgres()
    if TEST_DB.startswith("postgresql") or backend == "postgresql":
        if "tmpl" not in _pg_template:
            tmpl = f"sgw_tmpl_{os.getpid()}"
            _pg_exec(f"DROP DATABASE IF EXISTS {tmpl}")
            _pg_exec(f"CREATE DATABASE {tmpl}")
            upgrade(_pg_url_for(tmpl))
            _pg_template["tmpl"] = tmpl
        name = f"sgw_{uuid.uuid4().hex[:12]}"
        _pg_exec(f"CREATE DATABASE {name} TEMPLATE {_pg_template['tmpl']}")
        _pg_created.append(name)
        return _pg_url_for(name)
    if "file" not in _sqlite_template:
        d = Path(os.environ.get("PYTEST_TMPDIR", "/tmp")) / f"sgw-template-{os.getpid()}"
        d.mkdir(parents=True, exist_ok=True)
        f = d / "template.db"
        if f.exists():
            f.unlink()
        upgrade(f"sqlite:///{f}")
        _sqlite_template["file"] = f
    target = tmp_path / "var" / "supportgw.db"
    target.parent.mkdir(parents=True, exist_ok=True)
    n = 1
    while target.exists():  # a second app in the same test gets its own database, not a copy over the first's
        n += 1
        target = tmp_path / "var" / f"supportgw-{n}.db"
    shutil.copyfile(_sqlite_template["file"], target)
    return f"sqlite:///{target}"


def pytest_sessionfinish(session, exitstatus):
    """Drop this run's PostgreSQL databases: the template, and any copy a test did not drop
    itself (a test that failed half-way, or one that runs a gateway in another process)."""
    for name in [*_pg_created, _pg_template.pop("tmpl", None)]:
        if name:
            try:
                _pg_exec(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            except Exception:
                pass
    _pg_created.clear()


def drop_database(url: str) -> None:
    if url.startswith("postgresql"):
        name = url.rpartition("/")[2]
        try:
            _pg_exec(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        except Exception:
            pass


# ---------------------------------------------------------------- app factory

def make_config(tmp_path: Path, **sections):
    data = {
        "gateway": {
            "domain": "support.example.test",
            "support_addresses": ["support@support.example.test", "security@support.example.test"],
            "display_name": "Example Support",
            "data_dir": str(tmp_path / "var"),
            "secret_key": "test-secret-key-0123456789abcdef",
        },
        "database": {"url": sections.pop("database_url", "")},
        "smtp": {"host": "127.0.0.1", "port": free_port()},
        "outbound": {"smtp_host": "", "backoff_base": 0.2, "poll_interval": 0.2},
    }
    for key, value in sections.items():
        if isinstance(value, dict):
            data.setdefault(key, {}).update(value)
        else:
            data[key] = value
    return parse_config(data, file="<test>", base_dir=tmp_path)


@pytest.fixture
def make_app(tmp_path):
    made = []

    def factory(clock=None, backend: str = "", **sections):
        url = fresh_database_url(tmp_path, backend=backend)
        cfg = make_config(tmp_path, database_url=url, **sections)
        app = build_app(cfg, clock=clock or SystemClock(), migrate=False)
        made.append(app)
        return app

    yield factory
    for app in made:
        app.db.dispose()
        drop_database(app.db.url)


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def clock():
    return ManualClock()


# ---------------------------------------------------------------- SMTP relay

class CapturingHandler:
    def __init__(self):
        self.messages: list[dict] = []
        self.lock = threading.Lock()
        self.refuse_with: str | None = None

    async def handle_DATA(self, server, session, envelope):
        if self.refuse_with:
            return self.refuse_with
        with self.lock:
            self.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                                  "raw": envelope.original_content or envelope.content})
        return "250 OK"


@pytest.fixture
def relay():
    handler = CapturingHandler()
    ctl = Controller(handler, hostname="127.0.0.1", port=free_port())
    ctl.start()
    handler.port = ctl.port
    yield handler
    ctl.stop()


@pytest.fixture
def running(make_app, relay):
    """A started gateway (SMTP listener, processor, dispatcher) relaying to `relay`."""
    from gateway.runtime.runner import Gateway

    gws = []

    def start(clock=None, scheduler=False, **sections):
        out = sections.pop("outbound", {})
        out = {"smtp_host": "127.0.0.1", "smtp_port": relay.port, **out}
        app = make_app(clock=clock, outbound=out, **sections)
        gw = Gateway(app, imap=False, scheduler=scheduler).start()
        gws.append(gw)
        return gw

    yield start
    for gw in gws:
        gw.stop()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Say loudly what a machine without the corpora, Dovecot or PostgreSQL did not test."""
    skipped = terminalreporter.stats.get("skipped", [])
    no_corpora = [r for r in skipped if "no corpora: " in str(r.longrepr)]
    if no_corpora:
        terminalreporter.write_sep("!", f"{len(no_corpora)} corpus test(s) skipped, {NO_CORPORA}; "
                                        "set SUPPORTGW_CORPORA to a copy of shared/corpora (CI requires it)",
                                   red=True)
    if not ALLOW_SKIP:
        return
    skipped = terminalreporter.stats.get("skipped", [])
    server = [r for r in skipped if "ALLOW_SKIP" in str(r.longrepr)]
    if server:
        tr = terminalreporter
        tr.write_sep("!", f"SUPPORTGW_ALLOW_SKIP=1: {len(server)} test(s) needing a server were NOT run", red=True)
        for r in server:
            tr.write_line(f"  not run: {r.nodeid}")
        tr.write_line("  CI (.ci/run) runs them all; install dovecot-imapd / PostgreSQL to run them here.")
