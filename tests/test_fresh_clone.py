"""A fresh clone, set up from the README alone: `make test` passes without the shared
corpora (their tests skip, and the run says so in one line), CI refuses to run without
them, and no script assumes the project lives in a `.venv` beside it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.hardening import ROOT

CORPUS_TEST = "tests/test_routing_explain.py::test_explain_a_real_corpus_email"


def _pytest(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("SUPPORTGW_")}
    run_env.update(env)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", CORPUS_TEST],
                          capture_output=True, text=True, cwd=str(ROOT), env=run_env, timeout=300)


def test_without_the_corpora_their_tests_skip_and_the_run_says_so_once(tmp_path):
    missing = tmp_path / "shared" / "corpora"  # what ../shared/corpora is in a fresh clone: nothing
    out = _pytest(tmp_path, SUPPORTGW_CORPORA=str(missing))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 skipped" in out.stdout and "failed" not in out.stdout, out.stdout
    loud = [line for line in out.stdout.splitlines() if "corpus test(s) skipped" in line]
    assert len(loud) == 1, out.stdout
    assert "1 corpus test(s) skipped" in loud[0] and str(missing) in loud[0], loud[0]


def test_ci_requires_the_corpora(tmp_path):
    out = _pytest(tmp_path, SUPPORTGW_CORPORA=str(tmp_path / "nowhere"), SUPPORTGW_REQUIRE_CORPORA="1")
    assert out.returncode != 0
    assert "SUPPORTGW_REQUIRE_CORPORA=1" in out.stdout + out.stderr
    ci = (ROOT / ".ci" / "run").read_text()
    assert "export SUPPORTGW_REQUIRE_CORPORA=1" in ci


def test_the_makefile_does_not_point_the_tests_at_a_folder_that_may_not_exist():
    assert "shared/corpora" not in (ROOT / "Makefile").read_text().split("test: install", 1)[1].split("\n\n")[0]


def test_no_script_runs_supportgw_from_a_venv_it_assumes():
    """Whatever environment the project is installed in runs the benchmarks and the tests."""
    hits = []
    for path in [*ROOT.glob("bench/*.py"), *ROOT.glob("tests/*.py")]:
        if path.name == Path(__file__).name:
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"""\.venv/bin""", line):
                hits.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not hits, "\n".join(hits)


def test_the_smtp_benchmark_runs_from_the_environment_it_is_started_with(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "smtp.py"), "20", "--clients", "2"],
                         capture_output=True, text=True, cwd=str(tmp_path), timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert re.search(r"supportgw \(spooled\):\s+[\d.]+ msgs/s", out.stdout), out.stdout


def test_python_dash_m_gateway_cli_reports_a_mistake_in_one_line(app, tmp_path):
    """`python -m gateway.cli` (what runs where no `supportgw` script is installed) catches the
    commands' CommandError like the script does: exit 2, no traceback."""
    from tests.hardening import cli, write_config

    out = cli(write_config(app, tmp_path / "gw.toml"), "tickets", "show", "TS-999999")
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.strip() == "supportgw: no ticket TS-999999; 'supportgw tickets list' shows the references"
