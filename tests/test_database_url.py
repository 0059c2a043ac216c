"""A bad `database.url` is one line naming the config file, the key, what was tried and how
to fix it, with exit code 2: never a 126-line traceback."""

from __future__ import annotations

import importlib.util

import pytest

from tests.conftest import free_port, require_postgres
from tests.hardening import cli, write_config


def _run(app, tmp_path, url: str, *args: str):
    cfg = write_config(app, tmp_path / "gw.toml", database={"url": url, "connect_timeout": 3})
    return cfg, cli(cfg, *(args or ("tickets", "list")))


def _one_line_error(cfg, out, *fragments: str) -> str:
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    line = lines[0]
    assert line.startswith(f"supportgw: {cfg}: database.url: tried "), line
    for f in fragments:
        assert f in line, line
    return line


def test_connection_refused(app, tmp_path):
    port = free_port()  # nothing listens there
    cfg, out = _run(app, tmp_path, f"postgresql+psycopg://postgres@127.0.0.1:{port}/supportgw")
    _one_line_error(cfg, out, f"127.0.0.1:{port}", "connection refused", "start PostgreSQL there")


def test_unknown_host(app, tmp_path):
    cfg, out = _run(app, tmp_path, "postgresql+psycopg://postgres@db.nowhere.invalid/supportgw")
    _one_line_error(cfg, out, "unknown host 'db.nowhere.invalid'", "fix the host name")


def test_wrong_user_or_password_hides_the_password(app, tmp_path):
    require_postgres()
    cfg, out = _run(app, tmp_path, "postgresql+psycopg://nobody_here:s3cret@127.0.0.1:5432/postgres")
    line = _one_line_error(cfg, out, "refused user 'nobody_here'", "fix the user name or password")
    assert "s3cret" not in line and "***" in line


def test_database_that_does_not_exist(app, tmp_path):
    require_postgres()
    cfg, out = _run(app, tmp_path, "postgresql+psycopg://postgres@127.0.0.1:5432/no_such_db_here")
    _one_line_error(cfg, out, "'no_such_db_here' does not exist", "createdb no_such_db_here")


def test_postgres_scheme_gets_the_spelling_sqlalchemy_wants(app, tmp_path):
    cfg, out = _run(app, tmp_path, "postgres://postgres@127.0.0.1/supportgw")
    _one_line_error(cfg, out, "does not know 'postgres://'", "write postgresql+psycopg://postgres@127.0.0.1/supportgw")


@pytest.mark.parametrize("url,driver", [("mysql+pymysql://u@127.0.0.1/x", "pymysql"),
                                        ("postgresql+pg8000://u@127.0.0.1/x", "pg8000")])
def test_missing_driver(app, tmp_path, url, driver):
    if importlib.util.find_spec(driver) is not None:
        pytest.skip(f"{driver} is installed here")
    cfg, out = _run(app, tmp_path, url)
    _one_line_error(cfg, out, f"driver '{driver}' is not installed", f"pip install {driver}")


def test_not_a_url_at_all(app, tmp_path):
    cfg, out = _run(app, tmp_path, "supportgw.db")
    _one_line_error(cfg, out, "not a database URL", "sqlite:///")


def test_db_upgrade_says_the_same(app, tmp_path):
    cfg, out = _run(app, tmp_path, f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x", "db", "upgrade")
    _one_line_error(cfg, out, "connection refused")


def test_a_good_url_still_works(app, tmp_path):
    cfg, out = _run(app, tmp_path, app.config.database.url)
    assert out.returncode == 0, out.stderr
