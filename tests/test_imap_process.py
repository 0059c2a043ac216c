"""The IMAP edge as an operator meets it: `supportgw run` as a real process killed with
SIGKILL mid-drain and restarted, and `supportgw imap check` telling what works and what not."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from storage.db import Database
from storage.models import Message, SpoolEntry, Ticket
from tests.conftest import drop_database, free_port, fresh_database_url, wait_for
from tests.imap_kit import dovecot, seen_flags, write_config  # noqa: F401
from tests.mail import build

ROOT = Path(__file__).resolve().parent.parent


def supportgw(*args: str) -> list[str]:
    exe = shutil.which("supportgw", path=str(Path(sys.executable).parent))
    return [exe, *args] if exe else [sys.executable, "-m", "gateway.cli", *args]


@pytest.fixture
def db_url(tmp_path):
    url = fresh_database_url(tmp_path)
    yield url
    drop_database(url)


# `supportgw run`, except that the process SIGKILLs itself inside the third acknowledgement:
# after that batch is committed to the spool and before the server hears of it, the one
# moment where a crash must not lose or repeat anything.
CRASH_IN_ACK = """
import os, signal, sys
import gateway.edges.imap_batch as batch
real, calls = batch.Acknowledger.__call__, []
def ack(self, uids):
    calls.append(uids)
    if len(calls) == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(self, uids)
batch.Acknowledger.__call__ = ack
from gateway.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _scalar(db, stmt):
    with db.session() as s:
        return s.scalar(stmt)


def test_kill_9_mid_drain_then_restart_ingests_every_message_exactly_once(dovecot, tmp_path, db_url):
    n = 150
    raws = [build(frm=f"crash{i}@customer{i % 9}.example.com", subject=f"Crash test case {i}",
                  msgid=f"<crash-{i}@customer.example.com>") for i in range(n)]
    dovecot.append(*raws)
    cfg = write_config(tmp_path / "supportgw.toml", database_url=db_url, data_dir=tmp_path / "var",
                       imap=[dovecot.mailbox_config(batch_size=4, lease_seconds=2)])
    db = Database(db_url)
    spooled = select(func.count()).select_from(SpoolEntry)
    log = open(tmp_path / "gateway.log", "ab")

    def start():
        return subprocess.Popen(supportgw("--config", str(cfg), "run"), cwd=ROOT, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log)

    try:
        crash = subprocess.Popen([sys.executable, "-c", CRASH_IN_ACK, "--config", str(cfg), "run"], cwd=ROOT,
                                 stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        assert crash.wait(60) == -signal.SIGKILL
        assert _scalar(db, spooled) == 12  # three batches of 4 committed ...
        assert sum(seen_flags(dovecot)) == 8  # ... only two acknowledged

        killed_at = []
        for threshold in (30, 80):  # and SIGKILL from outside at arbitrary points of the drain
            proc = start()
            try:
                wait_for(lambda: _scalar(db, spooled) >= threshold, timeout=60, interval=0.01,
                         what=f"{threshold} spooled")
            finally:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
            killed_at.append(_scalar(db, spooled))
        assert killed_at[0] < n and killed_at[1] < n, f"drain finished before the kill: {killed_at}"

        proc = start()
        try:
            wait_for(lambda: _scalar(db, select(func.count()).select_from(Ticket)) == n, timeout=120,
                     interval=0.2, what=f"{n} tickets after the restart")
            wait_for(lambda: all(seen_flags(dovecot)), timeout=30, what="every message acknowledged")
            with db.session() as s:
                per_mid = dict(s.execute(select(Message.message_id, func.count()).where(Message.direction == "in")
                                         .group_by(Message.message_id)).all())
                assert s.scalar(spooled) == n
                assert s.scalar(select(func.count()).select_from(SpoolEntry)
                                .where(SpoolEntry.status != "processed")) == 0
            assert {k.strip("<>"): v for k, v in per_mid.items()} == {f"crash-{i}@customer.example.com": 1
                                                                      for i in range(n)}
            assert "4 of 4 already spooled before" in (tmp_path / "gateway.log").read_text()
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0  # and a clean stop on TERM
    except AssertionError:
        log.flush()
        sys.stderr.write((tmp_path / "gateway.log").read_text(errors="replace")[-4000:])
        raise
    finally:
        log.close()
        db.dispose()


def _check(tmp_path, mailbox: dict, *extra: str) -> subprocess.CompletedProcess:
    cfg = write_config(tmp_path / "check.toml", database_url="sqlite:///unused.db", data_dir=tmp_path / "var",
                       imap=[mailbox])
    return subprocess.run(supportgw("--config", str(cfg), "imap", "check", *extra), cwd=ROOT,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)


def test_imap_check_reports_a_working_mailbox(dovecot, tmp_path):
    dovecot.append(build(subject="one"), build(subject="two"))
    r = _check(tmp_path, dovecot.mailbox_config(after="move", move_to="Done"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ok    mailbox 'helpdesk'" in r.stdout
    assert "folder 'INBOX': 2 message(s)" in r.stdout
    assert "IDLE: supported" in r.stdout
    assert "move to 'Done' via MOVE (folder will be created)" in r.stdout
    assert seen_flags(dovecot) == [False, False]  # a check never touches the mail


def test_imap_check_wrong_password_exits_non_zero_saying_what_to_fix(dovecot, tmp_path, monkeypatch):
    monkeypatch.setenv("HELPDESK_IMAP_PW", "wrong")
    r = _check(tmp_path, dovecot.mailbox_config(password={"env": "HELPDESK_IMAP_PW"}))
    assert r.returncode != 0
    assert "login refused" in r.stdout
    assert "environment variable HELPDESK_IMAP_PW" in r.stdout
    assert "1 of 1 mailbox(es) failed" in r.stderr
    assert "Traceback" not in r.stdout + r.stderr


def test_imap_check_names_a_missing_folder_and_an_unreachable_server(dovecot, tmp_path):
    r = _check(tmp_path, dovecot.mailbox_config(folder="Helpdesk"))
    assert r.returncode != 0
    assert "cannot select folder 'Helpdesk'" in r.stdout and "INBOX" in r.stdout

    r = _check(tmp_path, dovecot.mailbox_config(port=free_port()))
    assert r.returncode != 0
    assert "connection refused" in r.stdout


def test_imap_check_without_mailboxes_says_how_to_add_one(tmp_path):
    cfg = write_config(tmp_path / "none.toml", database_url="sqlite:///unused.db", data_dir=tmp_path / "var",
                       imap=[])
    r = subprocess.run(supportgw("--config", str(cfg), "imap", "check"), cwd=ROOT, capture_output=True,
                       text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 2
    assert "no [[imap]] mailbox is configured" in r.stderr
