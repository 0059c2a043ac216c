"""The desk two engineers answer from, on the test clock: shared by the held-answer stories
(tests/test_collisions.py, tests/test_send_later.py)."""

from __future__ import annotations

import pytest

from tests.engineer_mail import Desk

WEBSITE_502 = dict(subject="Website returns 502", body="Hello,\nour website returns 502 since 9:00.\n")


@pytest.fixture
def desk(make_app, clock):
    """A Desk whose `clock` is the app's: `desk.clock.advance(...)` moves the gateway's time."""
    d = Desk(make_app(clock=clock))
    d.clock = clock
    return d


@pytest.fixture
def cli_desk(tmp_path):
    """`make(extra_toml="") -> (desk, run)`: a Desk on a gateway built from a config file, and
    `run(*args)` = `supportgw --config FILE *args` in-process (its exit code; output in capsys).
    Shared by the CLI tests of tests/test_hold_release.py and tests/test_merge_split.py."""
    from gateway.app import build_app
    from gateway.cli import main
    from gateway.config import load_config
    from tests.conftest import drop_database, fresh_database_url

    made = []

    def make(extra_toml: str = ""):
        url = fresh_database_url(tmp_path)
        path = tmp_path / "supportgw.toml"
        path.write_text(f'[gateway]\ndata_dir = "{tmp_path / "var"}"\nsecret_key = "cli-test-secret-0123456789abcdef"\n'
                        f'[database]\nurl = "{url}"\n{extra_toml}')
        desk = Desk(build_app(load_config(path), migrate=False))
        made.append((desk, url))
        return desk, lambda *args: main(["--config", str(path), *args])

    yield make
    for desk, url in made:
        desk.app.db.dispose()
        drop_database(url)
