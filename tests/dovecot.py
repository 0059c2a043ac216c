"""A private, throw-away Dovecot IMAP server on a loopback port, for tests and benches.

`Dovecot(base).start()` writes its own dovecot.conf, a passwd-file user and a
Maildir under `base`, and runs `dovecot -F` as our child process (so stop() can
wait for it). It never reads /etc/dovecot. The `dovecot` pytest fixture gives
each test a fresh server and stops it afterwards.

Dovecot's master keeps the caller's stdout/stderr open for its lifetime: it is
started with a log *file*, never a pipe, or whoever reads the pipe hangs.

Missing Dovecot fails the test loudly unless SUPPORTGW_ALLOW_SKIP=1.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from imapclient import IMAPClient

USER = "support@example.test"
PASSWORD = "secret-imap-pw"


def find_dovecot() -> str | None:
    return shutil.which("dovecot") or next(
        (p for p in ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot") if os.access(p, os.X_OK)), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _accounts() -> dict:
    """Who owns mail and runs services: as root, mail can't be uid 0 (Dovecot refuses it)."""
    if os.geteuid() == 0:
        import grp
        import pwd

        nobody = pwd.getpwnam("nobody")
        internal = "dovecot" if _has_user("dovecot") else "nobody"
        return {"uid": nobody.pw_uid, "gid": nobody.pw_gid, "internal_user": internal,
                "internal_group": grp.getgrgid(pwd.getpwnam(internal).pw_gid).gr_name,
                "login_user": "dovenull" if _has_user("dovenull") else "nobody"}
    import grp
    import pwd

    me = pwd.getpwuid(os.getuid()).pw_name
    return {"uid": os.getuid(), "gid": os.getgid(), "internal_user": me,
            "internal_group": grp.getgrgid(os.getgid()).gr_name, "login_user": me}


def _has_user(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


CONF = """\
# private test instance written by tests/dovecot.py; does not include /etc/dovecot
instance_name = sgw-test-{port}
base_dir = {base}/run
state_dir = {base}/state
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login{oauth_mechanisms}
log_path = {base}/dovecot.log
info_log_path = {base}/dovecot.log
auth_verbose = yes
auth_failure_delay = 0
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
first_valid_uid = 1
first_valid_gid = 1
default_process_limit = 20
default_client_limit = 200
default_vsz_limit = 1G
mail_location = maildir:~/Maildir
mail_fsync = never
mailbox_idle_check_interval = 1 secs
imap_max_line_length = 64k
{oauth_passdb}passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {base}/conf/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {base}/conf/users
}}
namespace inbox {{
  inbox = yes
  separator = /
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service auth {{
  unix_listener auth-userdb {{
    mode = 0666
  }}
}}
"""


class Dovecot:
    """One private Dovecot: start(), stop(), restart on the same port, IMAP helpers."""

    def __init__(self, base: Path, *, port: int | None = None, user: str = USER, password: str = PASSWORD,
                 oauth_introspection_url: str | None = None):
        self.base = Path(base)
        # with an RFC 7662 introspection URL, Dovecot's oauth2 passdb accepts XOAUTH2 and
        # OAUTHBEARER tokens checked there (the password still works for the test helpers)
        self.oauth_introspection_url = oauth_introspection_url
        self.port = port or _free_port()
        self.host = "127.0.0.1"
        self.user, self.password = user, password
        self.proc: subprocess.Popen | None = None
        self.binary = find_dovecot()
        if not self.binary:
            raise RuntimeError("dovecot is not installed (apt-get install dovecot-imapd)")
        self._write_config()

    @property
    def maildir(self) -> Path:
        return self.base / "mail" / self.user / "Maildir"

    @property
    def log_path(self) -> Path:
        return self.base / "dovecot.log"

    def _write_config(self) -> None:
        acc = _accounts()
        # mail processes run unprivileged (nobody, when we are root): they must reach base
        os.chmod(self.base, 0o755)
        for sub in ("conf", "run", "state", "mail"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        for sub in ("cur", "new", "tmp"):
            (self.maildir / sub).mkdir(parents=True, exist_ok=True)
        home = self.base / "mail" / self.user
        for root, dirs, _files in os.walk(home):
            os.chown(root, acc["uid"], acc["gid"])
        (self.base / "conf" / "users").write_text(
            f"{self.user}:{{PLAIN}}{self.password}:{acc['uid']}:{acc['gid']}::{home}::\n")
        oauth = {"oauth_mechanisms": "", "oauth_passdb": ""}
        if self.oauth_introspection_url:
            (self.base / "conf" / "dovecot-oauth2.conf.ext").write_text(
                "introspection_mode = post\n"
                f"introspection_url = {self.oauth_introspection_url}\n"
                "username_attribute = username\n"
                "active_attribute = active\n"
                "active_value = true\n")
            oauth = {"oauth_mechanisms": " xoauth2 oauthbearer",
                     "oauth_passdb": "passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
                                     f"  args = {self.base}/conf/dovecot-oauth2.conf.ext\n}}\n"}
        (self.base / "conf" / "dovecot.conf").write_text(CONF.format(base=self.base, port=self.port, **acc,
                                                                      **oauth))

    def start(self, timeout: float = 20.0) -> "Dovecot":
        log = open(self.base / "dovecot.stderr", "ab")  # a file, never a pipe (see module docstring)
        self.proc = subprocess.Popen([self.binary, "-F", "-c", str(self.base / "conf" / "dovecot.conf")],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dovecot exited with {self.proc.returncode}:\n{self.diagnostics()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as s:
                    if s.recv(100).startswith(b"* OK"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"dovecot did not open {self.host}:{self.port}:\n{self.diagnostics()}")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()  # the master stops its auth/imap children itself
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def kick(self) -> None:
        """End every IMAP session of the user now (a restart does not: sessions outlive the master)."""
        doveadm = shutil.which("doveadm") or "/usr/bin/doveadm"
        subprocess.run([doveadm, "-c", str(self.base / "conf" / "dovecot.conf"), "kick", self.user],
                       check=True, capture_output=True, timeout=30)

    def diagnostics(self) -> str:
        out = []
        for name in ("dovecot.stderr", "dovecot.log"):
            p = self.base / name
            if p.exists():
                out.append(f"--- {name}\n" + "\n".join(p.read_text(errors="replace").splitlines()[-30:]))
        return "\n".join(out)

    # ------------------------------------------------------------ IMAP helpers

    def client(self, password: str | None = None) -> IMAPClient:
        c = IMAPClient(self.host, port=self.port, ssl=False, timeout=30)
        c.login(self.user, password if password is not None else self.password)
        return c

    def append(self, *raws: bytes, folder: str = "INBOX", flags=()) -> None:
        c = self.client()
        try:
            if folder != "INBOX" and not c.folder_exists(folder):
                c.create_folder(folder)
            for raw in raws:
                c.append(folder, raw, flags=flags)
        finally:
            c.logout()

    def deliver_file(self, raw: bytes) -> Path:
        """Deliver into INBOX the way an MDA does (tmp/ then rename into new/); works while stopped."""
        name = f"{time.time():.6f}.P{os.getpid()}Q{os.urandom(4).hex()}.sgwtest"
        tmp, new = self.maildir / "tmp" / name, self.maildir / "new" / name
        tmp.write_bytes(raw)
        acc = _accounts()
        os.chown(tmp, acc["uid"], acc["gid"])
        os.chmod(tmp, 0o644)
        os.rename(tmp, new)
        return new

    def messages(self, folder: str = "INBOX") -> dict[int, dict]:
        """{uid: {"flags": (...), "raw": bytes}} for every message in `folder` (read-only peek)."""
        c = self.client()
        try:
            if not c.folder_exists(folder):
                return {}
            c.select_folder(folder, readonly=True)
            uids = c.search("ALL")
            if not uids:
                return {}
            got = c.fetch(uids, ["FLAGS", "BODY.PEEK[]"])
            return {u: {"flags": d[b"FLAGS"], "raw": d[b"BODY[]"]} for u, d in got.items()}
        finally:
            c.logout()

    def mailbox_config(self, name: str = "helpdesk", **over) -> dict:
        """An [[imap]] entry for supportgw pointing at this server."""
        cfg = {"name": name, "host": self.host, "port": self.port, "security": "plain",
               "username": self.user, "password": {"value": self.password}, "poll_interval": 1.0,
               "timeout": 30.0}
        cfg.update(over)
        return cfg


def dovecot_or_skip() -> str:
    binary = find_dovecot()
    if binary:
        return binary
    if os.environ.get("SUPPORTGW_ALLOW_SKIP") == "1":
        pytest.skip("dovecot is not installed (SUPPORTGW_ALLOW_SKIP=1)")
    pytest.fail("dovecot is not installed: apt-get install dovecot-imapd (or set SUPPORTGW_ALLOW_SKIP=1 to skip)")


def new_base() -> Path:
    # short path: Dovecot's unix sockets live under it (limit ~108 bytes)
    return Path(tempfile.mkdtemp(prefix="sgwdv-", dir="/tmp"))


def running_dovecot(**kw):
    """A started private Dovecot (kw: user, password), stopped and removed afterwards."""
    dovecot_or_skip()
    base = new_base()
    server = Dovecot(base, **kw)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def dovecot():
    yield from running_dovecot()
