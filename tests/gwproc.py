"""The gateway as a real subprocess (`supportgw --config FILE run`), for crash and shutdown
tests, and an SMTP client that behaves like a real MTA (retries on refused connections,
dropped sessions and 4xx answers)."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import time
from pathlib import Path

from tests.conftest import free_port
from tests.hardening import ROOT, _toml, supportgw_command

SUPPORT = "support@support.example.test"


def write_run_config(tmp_path: Path, database_url: str, relay_port: int, **overrides) -> tuple[Path, int]:
    port = free_port()
    data = {
        "gateway": {"domain": "support.example.test",
                    "support_addresses": [SUPPORT, "security@support.example.test"],
                    "display_name": "Example Support", "data_dir": str(tmp_path / "var"),
                    "secret_key": "test-secret-key-0123456789abcdef"},
        "database": {"url": database_url},
        "smtp": {"host": "127.0.0.1", "port": port, "max_messages_per_ip_per_minute": 0,
                 "max_connections_per_ip": 100},
        "outbound": {"smtp_host": "127.0.0.1", "smtp_port": relay_port, "backoff_base": 0.5,
                     "poll_interval": 0.2, "rate_limit_per_hour": 100000, "repeat_limit_per_hour": 0},
    }
    for k, v in overrides.items():
        data.setdefault(k, {}).update(v)
    path = tmp_path / "supportgw.toml"
    path.write_text(_toml(data), encoding="utf-8")
    return path, port


class GatewayProcess:
    def __init__(self, config: Path, port: int, log: Path) -> None:
        self.config, self.port, self.log = config, port, log
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self, timeout: float = 60) -> None:
        env = dict(os.environ)
        env.pop("SUPPORTGW_CONFIG", None)
        with open(self.log, "ab") as fh:
            fh.write(f"\n===== start {self.starts} =====\n".encode())
            self.proc = subprocess.Popen([*supportgw_command(), "--config", str(self.config), "run"],
                                         stdout=fh, stderr=subprocess.STDOUT, cwd=str(ROOT), env=env)
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"gateway exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"gateway did not listen within {timeout}s:\n{self.log.read_text()[-3000:]}")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def terminate(self, timeout: float) -> int | None:
        """SIGTERM; the exit code, or None when it did not exit in time (then killed)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)
            return None

    def stop_quietly(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


def deliver_like_an_mta(port: int, mail_from: str, raw: bytes, *, give_up_after: float = 300) -> int:
    """Send until the server answers 250; retry on connection errors and 4xx. Returns tries.
    A 5xx is a permanent refusal: raised."""
    tries = 0
    deadline = time.monotonic() + give_up_after
    while True:
        tries += 1
        try:
            conn = smtplib.SMTP("127.0.0.1", port, timeout=30)
        except (OSError, smtplib.SMTPException):
            conn = None
        if conn is not None:
            try:
                conn.sendmail(mail_from, [SUPPORT], raw)
                try:
                    conn.quit()
                except (OSError, smtplib.SMTPException):
                    pass
                return tries
            except smtplib.SMTPResponseException as exc:
                if exc.smtp_code >= 500:
                    raise
            except smtplib.SMTPRecipientsRefused as exc:
                if any(code >= 500 for code, _ in exc.recipients.values()):
                    raise
            except (OSError, smtplib.SMTPException):
                pass  # dropped mid-session: we cannot know whether it was taken; send again
            finally:
                try:
                    conn.close()
                except OSError:
                    pass
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {tries} tries")
        time.sleep(0.1)
