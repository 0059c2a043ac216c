"""Gateways on one database share one data_dir and one secret key: another folder or another key
is refused in one line before anything is stored (gateway/runtime/installation.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from gateway.config import ConfigError
from gateway.runtime.installation import ID_FILE, adopt, verify
from tests.conftest import fresh_database_url
from tests.gwproc import write_run_config
from tests.hardening import cli
from tests.mail import build


def _config(root: Path, url: str, *, key: str = "test-secret-key-0123456789abcdef") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    cfg, _ = write_run_config(root, url, 25)
    text = cfg.read_text()
    assert "secret_key" in text
    lines = [f'secret_key = "{key}"' if ln.startswith("secret_key") else ln for ln in text.splitlines()]
    cfg.write_text("\n".join(lines) + "\n")
    return cfg


def _mail_dir(root: Path) -> Path:
    d = root / "in"
    d.mkdir(exist_ok=True)
    (d / "a.eml").write_bytes(build(subject="Printer on fire"))
    return d


def _one_line(out) -> str:
    lines = [ln for ln in out.stderr.splitlines() if ln.startswith("supportgw:")]
    assert out.returncode == 2 and len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    return lines[0]


def test_a_second_gateway_with_a_folder_of_its_own_is_refused_until_adopted(tmp_path):
    url = fresh_database_url(tmp_path)
    first, second = _config(tmp_path / "gw1", url), _config(tmp_path / "gw2", url)
    assert cli(first, "ingest", str(_mail_dir(tmp_path / "gw1"))).returncode == 0
    assert (tmp_path / "gw1" / "var" / ID_FILE).exists()

    refused = cli(second, "ingest", str(_mail_dir(tmp_path / "gw2")))
    line = _one_line(refused)
    assert "gateway.data_dir" in line and "supportgw db adopt" in line and ID_FILE in line
    assert not (tmp_path / "gw2" / "var" / ID_FILE).exists()  # nothing written for the refused one
    engine = create_engine(url)
    try:
        with engine.connect() as c:
            assert c.execute(text("SELECT count(*) FROM spool")).scalar() == 1  # the first one's mail only
    finally:
        engine.dispose()
    assert _one_line(cli(second, "run")).startswith("supportgw:")  # the gateway itself does not start

    adopted = cli(second, "db", "adopt")
    assert adopted.returncode == 0 and "data_dir" in adopted.stdout, adopted.stderr
    assert cli(second, "ingest", str(_mail_dir(tmp_path / "gw2"))).returncode == 0
    assert "gateway.data_dir" in _one_line(cli(first, "ingest", str(_mail_dir(tmp_path / "gw1"))))
    assert "nothing to record" in cli(second, "db", "adopt").stdout


def test_another_secret_key_on_the_same_folder_is_refused(tmp_path):
    url = fresh_database_url(tmp_path)
    same = tmp_path / "gw1"
    assert cli(_config(same, url), "ingest", str(_mail_dir(same))).returncode == 0
    other_key = _config(same, url, key="another-secret-key-fedcba9876543210")
    line = _one_line(cli(other_key, "ingest", str(_mail_dir(same))))
    assert "gateway.secret_key" in line and "another-secret-key" not in line and "supportgw db adopt" in line


def test_the_check_value_names_no_key_and_two_gateways_starting_at_once_agree(make_app, tmp_path):
    app = make_app()
    verify(app)  # records
    verify(app)  # and agrees with itself
    from storage.queries import installation as marks

    with app.db.session() as s:
        recorded = marks.marks(s)
    assert set(recorded) == {"data_dir_id", "key_check"}
    assert recorded["data_dir_id"] == (Path(app.config.data_dir) / ID_FILE).read_text().strip()
    assert "test-secret-key" not in recorded["key_check"] and len(recorded["key_check"]) == 16
    (Path(app.config.data_dir) / ID_FILE).unlink()  # a folder that lost its identity is not this one
    with pytest.raises(ConfigError, match="has no installation.id"):
        verify(app)
    assert adopt(app) == ["data_dir_id"]
    verify(app)
