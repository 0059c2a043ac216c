"""Reports per customer, organisation, project and engineer, and the default period (issue 18, items 14-15).

The split figures are checked against the hand-computed week of tests/report_fixture.py with its tickets
given to three groups; each group's numbers are worked out in the comments from the fixture's table."""

from __future__ import annotations

import csv
import io
import json
import re
import shlex
from pathlib import Path

import pytest
from sqlalchemy import update

from gateway.cli import main
from gateway.jobs.report_split import split_report
from gateway.jobs.reports import build_report, collect
from storage.models import Ticket
from tests import report_fixture as fx
from tests.conftest import drop_database, fresh_database_url
from tests.mail import build

BIGBANK, ACME, PERSON = "wang@bigbank.example", "li@acme.example.com", "x@mail.example.test"
GROUPS = {  # ticket -> (requester, organisation, project, owner)
    "T1": (BIGBANK, "bigbank", "core-banking", fx.ALICE), "T2": (BIGBANK, "bigbank", "core-banking", fx.ALICE),
    "T3": (ACME, "acme", "erp", fx.BOB), "T4": (ACME, "acme", "erp", fx.BOB), "T5": (ACME, "acme", "erp", fx.BOB),
    "T6": (PERSON, "", "", fx.ALICE), "T7": (PERSON, "", "", fx.ALICE), "T8": (PERSON, "", "", fx.ALICE),
    "T9": (PERSON, "", "", fx.ALICE),
}


def _load(app):
    ids = fx.load(app)
    with app.db.session() as s:
        for name, (requester, org, project, owner) in GROUPS.items():
            s.execute(update(Ticket).where(Ticket.id == ids[name]).values(
                requester_email=requester, organisation=org, project=project, owner=owner))
    return ids


def _split(app, by):
    names = {"organisation": {"bigbank": "Big Bank Ltd.", "acme": "ACME"}}
    with app.db.session() as s:
        return {g["key"]: g for g in split_report(s, collect(s, fx.START, fx.END, now=fx.NOW), by, names=names)}


def test_by_project_has_each_projects_own_figures(app):
    _load(app)
    rows = _split(app, "project")
    assert list(rows) == ["acme/erp", "bigbank/core-banking", ""]  # most opened first
    bank = rows["bigbank/core-banking"]
    assert bank["name"] == "Big Bank Ltd. / core-banking"
    # T1, T2 opened, both resolved or closed by the end; no reopen
    assert bank["tickets"] == {"opened": 2, "closed": 2, "resolved_of_opened": 2, "resolution_rate": 1.0,
                               "reopened": 0, "reopen_rate": 0.0}
    # P1 both: first response T1 met, T2 breached (late and marked); resolution T1 met, T2 late
    assert bank["sla_overall"]["first_response"] == {"met": 1, "breached": 1, "compliance": 0.5}
    assert bank["sla_overall"]["resolution"] == {"met": 1, "breached": 1, "compliance": 0.5}
    assert bank["time_minutes"] == 30 + 45 + 60
    assert bank["satisfaction"]["responses"] == 2 and bank["satisfaction"]["average"] == 3.5  # T1 5, T2 2
    acme = rows["acme/erp"]
    # T3-T5: nothing resolved; first response T3, T4 met, T5 breached; resolution T3 breached, T4/T5 running
    assert acme["tickets"]["opened"] == 3 and acme["tickets"]["closed"] == 0
    assert acme["sla_overall"]["first_response"]["compliance"] == 0.6667
    assert acme["sla_overall"]["resolution"] == {"met": 0, "breached": 1, "compliance": 0.0}
    assert acme["satisfaction"]["average"] is None and acme["time_minutes"] == 0
    rest = rows[""]
    # T6, T8 opened (T7 before the period, T9 after); T6 and T7 closed in it, T6 reopened; T7's resolution time
    assert rest["tickets"]["opened"] == 2 and rest["tickets"]["closed"] == 2 and rest["tickets"]["reopened"] == 1
    assert rest["resolution"]["median_seconds"] == 244800.0
    assert rest["satisfaction"]["average"] == 4.0 and rest["time_minutes"] == 0  # T7's 100 min was before


@pytest.mark.parametrize("by", ["customer", "organisation", "project", "engineer", "address"])
def test_every_split_adds_up_to_the_totals(app, by):
    _brand_b_for_acme(app, _load(app))
    with app.db.session() as s:
        total = build_report(s, fx.START, fx.END, now=fx.NOW)
    rows = _split(app, by).values()
    for key in ("opened", "closed", "resolved_of_opened", "reopened"):
        assert sum(g["tickets"][key] for g in rows) == total["tickets"][key]
    assert sum(g["satisfaction"]["responses"] for g in rows) == total["satisfaction"]["responses"]
    assert sum(g["time_minutes"] for g in rows) == 30 + 45 + 60


def _brand_b_for_acme(app, ids):
    """ACME wrote to brand B's address ([[address]]); everyone else to the default one."""
    with app.db.session() as s:
        s.execute(update(Ticket).where(Ticket.id.in_([ids["T3"], ids["T4"], ids["T5"]])).values(
            address="help@brand-b.example"))


def test_by_address_splits_by_the_address_written_to(app):
    _brand_b_for_acme(app, _load(app))
    rows = _split(app, "address")
    assert set(rows) == {"help@brand-b.example", ""}
    assert rows["help@brand-b.example"]["tickets"]["opened"] == 3
    assert rows["help@brand-b.example"]["sla_overall"]["first_response"]["compliance"] == 0.6667  # T3-T5, as ACME


def test_by_customer_and_engineer_keys(app):
    _load(app)
    assert set(_split(app, "customer")) == {BIGBANK, ACME, PERSON}
    engineers = _split(app, "engineer")
    assert engineers[fx.BOB]["tickets"]["opened"] == 3 and engineers[fx.ALICE]["tickets"]["opened"] == 4


# ---------------------------------------------------------------- the command line and the weekly mail

@pytest.fixture
def cfg(tmp_path):
    url = fresh_database_url(tmp_path)
    path = tmp_path / "supportgw.toml"
    path.write_text(f'[gateway]\ndata_dir = "{tmp_path / "var"}"\nsecret_key = "test-secret-key-0123456789abcdef"\n'
                    f'[database]\nurl = "{url}"\n[report]\ntimezone = "UTC"\n'
                    'recipients = ["carol@support.example.com"]\n',
                    encoding="utf-8")
    yield path
    drop_database(url)


def _cli(cfg, capsys, *argv):
    code = main(["--config", str(cfg), *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def _walk_through(cfg, tmp_path, capsys):
    """The README's five minutes, by file: a customer of Big Bank writes, today."""
    eml = tmp_path / "outage.eml"
    eml.write_bytes(build(frm="alice@bigbank.example", subject="Portal down for all users",
                          body="Since this morning nobody can log in. Urgent!\n"))
    assert _cli(cfg, capsys, "ingest", str(eml))[0] == 0


def test_default_report_includes_what_happened_today(cfg, tmp_path, capsys):
    _walk_through(cfg, tmp_path, capsys)
    code, out, _ = _cli(cfg, capsys, "report", "--json")
    assert code == 0
    r = json.loads(out)
    assert r["tickets"]["opened"] == 1
    from datetime import datetime, timedelta, timezone

    today = datetime.now(timezone.utc).date()  # [report] timezone = "UTC" in this config
    assert (r["period"]["from"][:10], r["period"]["to_inclusive"]) == (str(today - timedelta(days=6)), str(today))
    code, out, _ = _cli(cfg, capsys, "report", "--days", "30", "--json")
    assert json.loads(out)["tickets"]["opened"] == 1


def test_the_readme_report_examples_show_figures_after_the_walk_through(cfg, tmp_path, capsys):
    _walk_through(cfg, tmp_path, capsys)
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    step = readme[readme.index("5. **Managers read the figures:**"):readme.index("Other useful commands")]
    examples = re.findall(r"`supportgw (report[^`]*)`", step)
    assert examples, "step 5 of the README shows no report command"
    for example in examples:
        code, out, err = _cli(cfg, capsys, *shlex.split(example))
        assert code == 0, err
        assert re.search(r"Opened:\s+1\b", out), (example, out)


def test_cli_report_by_project_in_text_json_and_csv(cfg, tmp_path, capsys):
    _walk_through(cfg, tmp_path, capsys)
    code, out, _ = _cli(cfg, capsys, "report", "--by", "project", "--json")
    [group] = json.loads(out)["by"]["project"]
    assert group["key"] == "bigbank/core-banking" and group["tickets"]["opened"] == 1
    assert group["name"].startswith("Big Bank Ltd.")
    code, out, _ = _cli(cfg, capsys, "report", "--by", "organisation", "--by", "customer")
    assert "By organisation" in out and "By customer" in out and "Big Bank Ltd." in out
    assert "alice@bigbank.example" in out
    code, out, _ = _cli(cfg, capsys, "report", "--by", "address", "--json")
    [group] = json.loads(out)["by"]["address"]
    assert code == 0 and group["key"] == "" and group["tickets"]["opened"] == 1  # written to the default address
    code, out, _ = _cli(cfg, capsys, "report", "--by", "engineer", "--csv")
    assert ["engineer", "alice@support.example.com", "opened", "1"] in list(csv.reader(io.StringIO(out)))
    with pytest.raises(SystemExit) as bad:
        _cli(cfg, capsys, "report", "--by", "planet")
    assert bad.value.code == 2 and "invalid choice: 'planet'" in capsys.readouterr().err


def test_days_must_be_a_positive_number_without_from(cfg, capsys):
    code, _, err = _cli(cfg, capsys, "report", "--days", "0")
    assert code == 2 and "--days" in err
    code, _, err = _cli(cfg, capsys, "report", "--days", "3", "--from", "2026-01-01")
    assert code == 2 and "no --from" in err


@pytest.mark.parametrize("language, words", [
    ("en", ("By organisation", "By project", "Big Bank Ltd. 大银行 / core-banking", "135 min")),
    ("zh-CN", ("按客户单位", "按项目", "Big Bank Ltd. 大银行 / core-banking", "135 分钟")),
])
def test_weekly_mail_has_the_organisation_and_project_tables(make_app, clock, language, words):
    from datetime import timedelta

    from gateway.jobs.weekly_report import send_weekly_report
    from tests.closure_kit import flush, html_of, text_of

    clock.set(fx.END + timedelta(minutes=30))
    app = make_app(clock=clock, report={"timezone": "UTC", "recipients": ["boss@support.example.com"],
                                        "language": language})
    _load(app)
    assert send_weekly_report(app)
    [mail] = flush(app)
    text, html = text_of(mail["msg"]), html_of(mail["msg"])
    for word in words:
        assert word in text and word in html, word
    assert "By customer" not in text  # [report] by defaults to organisation and project
