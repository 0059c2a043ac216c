"""Running it as a service: the systemd unit verifies, logrotate reads its file, and the
README's backup and restore (docs/deploy/backup.sh, restore.sh) really restore SQLite and
PostgreSQL, attachments included."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from storage.models import AttachmentRow, Message, Ticket
from tests.conftest import _pg_exec, _pg_url_for, drop_database, fresh_database_url, require_postgres
from tests.gwproc import write_run_config
from tests.hardening import ROOT, cli
from tests.test_customer_data import FILE_BYTES, _mail

DEPLOY = ROOT / "docs" / "deploy"


def test_the_unit_is_hardened_and_systemd_accepts_it(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed (apt install systemd)")
    text = (DEPLOY / "supportgw.service").read_text()
    for directive in ("User=supportgw", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes",
                      "PrivateTmp=yes", "CapabilityBoundingSet=\n", "SystemCallFilter=@system-service",
                      "ExecReload=/bin/kill -HUP $MAINPID"):
        assert directive in text, directive
    exe = tmp_path / "supportgw"  # the unit names /opt/supportgw; verify checks the binary exists
    exe.write_text(f"#!/bin/sh\nexec {sys.executable} -m gateway.cli \"$@\"\n")
    exe.chmod(0o755)
    unit = tmp_path / "supportgw.service"
    binary = re.search(r"^ExecStart=(\S+)", text, re.M).group(1)  # the installed entry point
    unit.write_text(text.replace(binary, str(exe)))
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    complaints = [line for line in (done.stdout + done.stderr).splitlines() if "supportgw.service" in line]
    assert done.returncode == 0 and complaints == [], done.stdout + done.stderr


def test_logrotate_reads_the_rotation_file(tmp_path):
    if not shutil.which("logrotate"):
        pytest.skip("logrotate is not installed")
    logs = tmp_path / "log"
    logs.mkdir()
    (logs / "supportgw.log").write_text("x\n" * 10)
    conf = (DEPLOY / "supportgw.logrotate").read_text().replace("/var/log/supportgw", str(logs))
    conf = "\n".join(line for line in conf.splitlines() if not line.strip().startswith(("su ", "create ")))
    (tmp_path / "rotate.conf").write_text(conf + "\n")
    done = subprocess.run(["logrotate", "-d", "-s", str(tmp_path / "state"), str(tmp_path / "rotate.conf")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "error" not in done.stderr.lower(), done.stderr
    assert "supportgw.log" in done.stderr


def _counts(url: str) -> tuple[int, int, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as c:
            return tuple(c.scalar(select(func.count()).select_from(m)) for m in (Ticket, Message, AttachmentRow))
    finally:
        engine.dispose()


def _seed(tmp_path: Path, url: str) -> Path:
    cfg, _ = write_run_config(tmp_path, url, 25)
    for i in range(3):
        eml = tmp_path / f"m{i}.eml"
        eml.write_bytes(_mail(f"cust{i}@backup-demo.example", "Cust", f"Case {i}", "help\n",
                              attach=FILE_BYTES + bytes([i])))
        assert cli(cfg, "ingest", str(eml)).returncode == 0
    return cfg


def _sh(*args) -> subprocess.CompletedProcess:
    done = subprocess.run(["sh", *map(str, args)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_sqlite_backup_restores_database_and_files(tmp_path):
    data = tmp_path / "var"
    data.mkdir()
    url = f"sqlite:///{data / 'supportgw.db'}"
    cfg = _seed(tmp_path, url)
    before = _counts(url)
    assert before == (3, 3, 3)
    _sh(DEPLOY / "backup.sh", "sqlite", data, tmp_path / "backup")
    restored = tmp_path / "restored" / "var"
    _sh(DEPLOY / "restore.sh", "sqlite", tmp_path / "backup", restored)
    assert _counts(f"sqlite:///{restored / 'supportgw.db'}") == before
    files = sorted(p.read_bytes() for p in (restored / "attachments").rglob("*") if p.is_file())
    assert files == sorted(FILE_BYTES + bytes([i]) for i in range(3))
    # the restored gateway starts from it: migrations and the health check agree
    cfg2 = tmp_path / "restored" / "supportgw.toml"
    cfg2.write_text(cfg.read_text().replace(url, f"sqlite:///{restored / 'supportgw.db'}")
                    .replace(str(data), str(restored)))
    assert cli(cfg2, "db", "upgrade").returncode == 0
    assert cli(cfg2, "health").returncode == 0
    # and stores mail: the folder's identity came back with it (gateway/runtime/installation.py)
    eml = tmp_path / "after.eml"
    eml.write_bytes(_mail("after@backup-demo.example", "Cust", "After the restore", "help\n"))
    stored = cli(cfg2, "ingest", str(eml))
    assert stored.returncode == 0, stored.stderr


def test_postgres_backup_restores_into_an_empty_database(tmp_path):
    require_postgres()
    url = fresh_database_url(tmp_path, backend="postgresql")
    data = tmp_path / "var"
    data.mkdir(exist_ok=True)
    _seed(tmp_path, url)
    before = _counts(url)
    libpq = url.replace("postgresql+psycopg://", "postgresql://")
    _sh(DEPLOY / "backup.sh", "postgres", libpq, data, tmp_path / "backup")
    name = f"sgw_restore_{uuid.uuid4().hex[:10]}"
    _pg_exec(f"CREATE DATABASE {name}")
    target = _pg_url_for(name)
    try:
        _sh(DEPLOY / "restore.sh", "postgres", tmp_path / "backup", target.replace("+psycopg", ""),
            tmp_path / "restored")
        assert _counts(target) == before == (3, 3, 3)
        assert len([p for p in (tmp_path / "restored" / "attachments").rglob("*") if p.is_file()]) == 3
        assert (tmp_path / "restored" / "installation.id").read_bytes() == (data / "installation.id").read_bytes()
    finally:
        drop_database(target)
