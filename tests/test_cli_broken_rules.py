"""A broken rules file stops only the commands that route: while the running gateway keeps
its old rules, `tickets list`, `outbox list`, `report` and the other read-only commands work
and warn once; `ingest`, `run` and `rules explain` refuse with the file's problems."""

from __future__ import annotations

from routing.loader import SAMPLE_RULES
from tests.hardening import cli, push, write_config
from tests.mail import build

WARNING = "supportgw: warning: the routing rules in"


def _broken_setup(app, tmp_path):
    push(app, build(subject="Printer on fire"))  # a ticket and its mail, made with good rules
    rules = tmp_path / "rules.toml"
    rules.write_text(SAMPLE_RULES.read_text(encoding="utf-8")
                     + '\n[[rules]]\nname = "typo"\nthen = { owner = "bobb" }\n', encoding="utf-8")
    return write_config(app, tmp_path / "gw.toml", routing={"rules_file": str(rules)}), rules


def test_read_only_commands_work_beside_a_broken_rules_file_and_warn_once(app, tmp_path):
    cfg, rules = _broken_setup(app, tmp_path)
    for args in (["tickets", "list"], ["tickets", "show", "TS-000001"], ["outbox", "list"], ["outbox", "show", "1"],
                 ["quarantine", "list"], ["report", "--from", "2020-01-01", "--to", "2099-12-31"]):
        out = cli(cfg, *args)
        assert out.returncode == 0, (args, out.stderr)
        assert out.stderr.count(WARNING) == 1, (args, out.stderr)
        assert str(rules) in out.stderr and "supportgw rules check" in out.stderr
        assert "Traceback" not in out.stderr
    assert "Printer on fire" in cli(cfg, "tickets", "list").stdout


def test_commands_that_route_still_refuse_a_broken_rules_file(app, tmp_path):
    cfg, _ = _broken_setup(app, tmp_path)
    mail = tmp_path / "m.eml"
    mail.write_bytes(build(subject="another"))
    for args in (["ingest", str(mail)], ["rules", "explain", str(mail)], ["quarantine", "retry", "all"]):
        out = cli(cfg, *args)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        assert "routing rules cannot be loaded" in out.stderr and "engineer 'bobb'" in out.stderr, out.stderr
        assert "Traceback" not in out.stderr
