"""A private, throw-away rspamd (with its own Redis for Bayes and greylisting state) on
loopback ports, for tests and benches.

`Rspamd(base).start()` writes a top-level rspamd.conf under `base` that includes the
packaged defaults ($CONFDIR, /etc/rspamd) but binds the normal worker and the
controller to free loopback ports, keeps its database, run and log directories and
its local.d under `base`, points Redis at a private `redis-server` it starts too, and
sends DNS to a closed port with a short timeout (tests run offline; a lookup must
fail fast, not hang a check). Nothing under /etc/rspamd is read from local.d or
changed. The `rspamd` pytest fixture is session-scoped: rspamd takes half a minute
to compile its rules on this machine.

Missing rspamd fails the test loudly unless SUPPORTGW_ALLOW_SKIP=1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port

PASSWORD = "rspamd-test-pw"


def find(name: str) -> str | None:
    return shutil.which(name) or next((p for p in (f"/usr/bin/{name}", f"/usr/sbin/{name}") if os.access(p, os.X_OK)),
                                      None)


class Rspamd:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.controller_port = free_port()
        self.redis_port = free_port()
        self.procs: list[subprocess.Popen] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def controller_url(self) -> str:
        return f"http://127.0.0.1:{self.controller_port}"

    def config(self, **over) -> dict:
        """The [spam] section a gateway needs to use this instance."""
        return {"engine": "rspamd", "url": self.url, "controller_url": self.controller_url,
                "controller_password": PASSWORD, "timeout": 10.0, **over}

    def _write_config(self) -> None:
        for d in ("db", "run", "log", "local.d", "override.d"):
            (self.base / d).mkdir(parents=True, exist_ok=True)
        (self.base / "rspamd.conf").write_text(f"""
.include "$CONFDIR/common.conf"
options {{
    pidfile = "$RUNDIR/rspamd.pid";
    .include "$CONFDIR/options.inc"
    dns {{ nameserver = ["127.0.0.1:9"]; timeout = 0.2s; retransmits = 0; }}
}}
logging {{ type = "file"; filename = "$LOGDIR/rspamd.log"; level = "warning"; }}
worker "normal" {{
    bind_socket = "127.0.0.1:{self.port}";
    .include "$CONFDIR/worker-normal.inc"
    count = 1;
}}
worker "controller" {{
    bind_socket = "127.0.0.1:{self.controller_port}";
    .include "$CONFDIR/worker-controller.inc"
    password = "{PASSWORD}";
    enable_password = "{PASSWORD}";
}}
""", encoding="utf-8")
        local = self.base / "local.d"
        (local / "redis.conf").write_text(f'servers = "127.0.0.1:{self.redis_port}";\n', encoding="utf-8")
        # one lesson is enough for the tests to see Bayes take it; greylisting means nothing
        # to a gateway that has already accepted the mail
        (local / "classifier-bayes.conf").write_text("min_learns = 1;\n", encoding="utf-8")
        (local / "greylist.conf").write_text("enabled = false;\n", encoding="utf-8")

    def start(self, timeout: float = 180.0) -> "Rspamd":
        self._write_config()
        log = open(self.base / "log" / "processes.log", "ab")
        self.procs.append(subprocess.Popen(
            [find("redis-server"), "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.base / "db")], stdout=log, stderr=log))
        cmd = [find("rspamd"), "-f", "-c", str(self.base / "rspamd.conf")]
        if os.geteuid() == 0:
            cmd += ["-i", "-u", "root", "-g", "root"]
        for var, d in (("DBDIR", "db"), ("RUNDIR", "run"), ("LOGDIR", "log"), ("LOCAL_CONFDIR", ".")):
            cmd.append(f"--var={var}={self.base / d}")
        self.procs.append(subprocess.Popen(cmd, stdout=log, stderr=log))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.procs[-1].poll() is not None:
                raise RuntimeError(f"rspamd exited: {self.diagnostics()}")
            if self._answers(self.url) and self._answers(self.controller_url):
                return self
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"rspamd did not answer within {timeout}s: {self.diagnostics()}")

    @staticmethod
    def _answers(url: str) -> bool:
        try:
            with urllib.request.urlopen(url + "/ping", timeout=2) as r:
                return r.read().strip() == b"pong"
        except OSError:
            return False

    def stat(self) -> dict:
        import json

        req = urllib.request.Request(self.controller_url + "/stat", headers={"Password": PASSWORD})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def diagnostics(self) -> str:
        out = []
        for name in ("processes.log", "rspamd.log"):
            p = self.base / "log" / name
            if p.exists():
                out.append(p.read_text(errors="replace")[-3000:])
        return "\n".join(out)

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs.clear()


def rspamd_or_skip() -> None:
    if find("rspamd") and find("redis-server"):
        return
    if os.environ.get("SUPPORTGW_ALLOW_SKIP") == "1":
        pytest.skip("rspamd or redis-server is not installed (SUPPORTGW_ALLOW_SKIP=1)")
    pytest.fail("rspamd is not installed: apt-get install --no-install-recommends rspamd redis-server "
                "(or set SUPPORTGW_ALLOW_SKIP=1 to skip)")


@pytest.fixture(scope="session")
def rspamd():
    rspamd_or_skip()
    base = Path(tempfile.mkdtemp(prefix="sgw-rspamd-"))
    server = Rspamd(base).start()
    yield server
    server.stop()
    shutil.rmtree(base, ignore_errors=True)
