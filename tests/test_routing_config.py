"""The rules file is checked at start and by `supportgw rules check`: every problem is
reported with file, place (rule name or key) and what to fix; a broken file met by a
reload is refused and the old rules stay in force."""

from __future__ import annotations

import logging
import os
import threading
from datetime import datetime, timezone

import pytest

from parsers.model import Address, ParsedEmail
from routing.engine import route
from routing.loader import SAMPLE_RULES, RulesError, RulesHolder, check_file, load_rules

SAMPLE = SAMPLE_RULES.read_text(encoding="utf-8")
NOW = datetime(2026, 3, 9, 2, 0, tzinfo=timezone.utc)
N_RULES = SAMPLE.count("\n[[rules]]\n")
BILLING_INDEX = SAMPLE[:SAMPLE.index('name = "billing"')].count("\n[[rules]]\n")  # 1-based


def rule(name: str, body: str) -> str:
    return f'\n[[rules]]\nname = "{name}"\n{body}\n'


def edit(old: str, new: str, count: int = 1) -> str:
    assert old in SAMPLE, old
    return SAMPLE.replace(old, new, count)


CAL = '\n[calendars.x]\ntimezone = "Asia/Shanghai"\nhours = {{ mon = {hours} }}\n{extra}\n'

ERROR_CASES = [
    # (story, file text, where, message fragment)
    ("unknown key in a rule's actions, with a suggestion",
     SAMPLE + rule("typo", 'then = { categroy = "billing" }'),
     f"rule 'typo' (rules #{N_RULES + 1}), then.categroy",
     "unknown key 'categroy': did you mean 'category'? remove it or check the spelling"),
    ("unknown condition key",
     SAMPLE + rule("typo", 'when = { keyword = ["x"] }\nthen = { tags = ["x"] }'),
     f"rule 'typo' (rules #{N_RULES + 1}), when.keyword", "unknown key 'keyword': did you mean 'keywords'?"),
    ("unknown top-level key",
     "colour = 'red'\n" + SAMPLE, "colour", "unknown key 'colour'"),
    ("bad regular expression",
     SAMPLE + rule("bad-re", 'when = { subject_regex = "(unclosed" }\nthen = { tags = ["x"] }'),
     f"rule 'bad-re' (rules #{N_RULES + 1}), when.subject_regex",
     "bad regular expression '(unclosed': missing ), unterminated subpattern"),
    ("bad regular expression in a header test, nested in any",
     SAMPLE + rule("bad-hdr", 'when = { any = [{ header = { name = "X", regex = "[a-" } }] }\nthen = { tags = ["x"] }'),
     f"rule 'bad-hdr' (rules #{N_RULES + 1}), when.any[0].header.regex", "bad regular expression '[a-'"),
    ("owner is an engineer that is not defined",
     SAMPLE + rule("to-zoe", 'then = { owner = "zoe" }'),
     f"rule 'to-zoe' (rules #{N_RULES + 1}), then.owner",
     "engineer 'zoe' is referenced but not defined: add [engineers.zoe] or use one of"),
    ("watcher is an engineer that is not defined",
     SAMPLE + rule("w", 'then = { watchers = ["carol", "zed"] }'),
     f"rule 'w' (rules #{N_RULES + 1}), then.watchers", "engineer 'zed' is referenced but not defined"),
    ("unknown project role",
     SAMPLE + rule("boss", 'then = { owner = "project.boss" }'),
     f"rule 'boss' (rules #{N_RULES + 1}), then.owner", "unknown project role 'project.boss'"),
    ("project primary not defined",
     edit('primary = "alice"\nsecondary = "bob"', 'primary = "alicia"\nsecondary = "bob"'),
     "customers.bigbank.projects.core-banking.primary", "engineer 'alicia' is referenced but not defined"),
    ("primary and secondary the same person",
     edit('primary = "alice"\nsecondary = "bob"', 'primary = "bob"\nsecondary = "bob"'),
     "customers.bigbank.projects.core-banking", "primary and secondary are both 'bob'"),
    ("manager without the manager flag",
     edit('manager = true\n', ''),
     "customers.bigbank.projects.core-banking.manager", "'carol' is named manager but [engineers.carol] has manager = false"),
    ("overlapping working hours",
     SAMPLE + CAL.format(hours='["09:00-12:00", "11:00-18:00"]', extra=""),
     "calendars.x.hours.mon", "overlapping working hours '09:00-12:00' and '11:00-18:00'"),
    ("a date both holiday and adjusted working day",
     SAMPLE + CAL.format(hours='"09:00-18:00"', extra='holidays = ["2026-10-01..2026-10-07"]\nworkdays = [2026-10-03]'),
     "calendars.x", "overlapping calendar: 2026-10-03 is both a holiday and an adjusted working day"),
    ("badly written hours",
     SAMPLE + CAL.format(hours='"9-18"', extra=""), "calendars.x.hours.mon", "bad working hours '9-18'"),
    ("hours that cross midnight",
     SAMPLE + CAL.format(hours='"22:00-06:00"', extra=""), "calendars.x.hours.mon", "split them at 24:00"),
    ("unknown time zone",
     edit('timezone = "Europe/Berlin"', 'timezone = "Europe/Berlln"'),
     "calendars.de.timezone", "unknown time zone 'Europe/Berlln'"),
    ("bad duration",
     edit('first_response = "30m"', 'first_response = "30 minutes"'),
     "sla.P1.first_response", "bad duration '30 minutes': write a number and a unit"),
    ("resolution shorter than first response",
     edit('resolution = "4h"', 'resolution = "10m"'),
     "sla.P1", "resolution is shorter than first_response"),
    ("priority outside P1-P4",
     SAMPLE + rule("p5", 'then = { priority = "P5" }'),
     f"rule 'p5' (rules #{N_RULES + 1}), then.priority", "'P5' is not allowed: use 'P1', 'P2', 'P3' or 'P4'"),
    ("an SLA policy for a priority that does not exist",
     SAMPLE + '\n[sla.P5]\nfirst_response = "1d"\nresolution = "9d"\n',
     "sla.P5", "unknown priority 'P5': SLA policies are named P1, P2, P3, P4"),
    ("a missing SLA policy",
     edit('[sla.P4]\nfirst_response = "1d"\nresolution = "5d"\nbusiness_hours = true\n', ''),
     "sla.P4", "no SLA policy for P4: add [sla.P4]"),
    ("an SLA calendar that is not defined",
     edit('business_hours = false        # around the clock', 'calendar = "us"'),
     "sla.P1.calendar", "calendar 'us' is not defined: add [calendars.us]"),
    ("a customer tier missing from the matrix",
     edit('tier = "key"', 'tier = "gold"'),
     "customers.acme.tier", "customer tier 'gold' is not in [priority_matrix]"),
    ("a condition on an undefined organisation",
     SAMPLE + rule("org", 'when = { organisation = "acmee" }\nthen = { tags = ["x"] }'),
     f"rule 'org' (rules #{N_RULES + 1}), when.organisation", "organisation 'acmee' is not defined"),
    ("a team nobody is in",
     SAMPLE + rule("dbaa", 'then = { team = "dbaa" }'),
     f"rule 'dbaa' (rules #{N_RULES + 1}), then.team", "team 'dbaa' has no engineers"),
    ("two rules with one name",
     SAMPLE + rule("billing", 'then = { tags = ["x"] }'),
     f"rule 'billing' (rules #{BILLING_INDEX})",
     "the name 'billing' is used by 2 rules"),
    ("a domain claimed by two customers",
     edit('domains = ["acme.example.com"]', 'domains = ["acme.example.com", "bigbank.example"]'),
     "customers.acme.domains", "domain bigbank.example is also claimed by customer 'bigbank'"),
    ("an empty condition",
     SAMPLE + rule("empty", 'when = {}\nthen = { tags = ["x"] }'),
     f"rule 'empty' (rules #{N_RULES + 1}), when", "empty condition"),
    ("an empty keyword list",
     SAMPLE + rule("empty-list", 'when = { keywords = [] }\nthen = { tags = ["x"] }'),
     f"rule 'empty-list' (rules #{N_RULES + 1}), when.keywords", "empty list: it would match nothing"),
    ("a rule that does nothing",
     SAMPLE + rule("idle", 'when = { keywords = ["x"] }\nthen = { }'),
     f"rule 'idle' (rules #{N_RULES + 1})", "the rule has no actions"),
    ("a rule without a name",
     SAMPLE + '\n[[rules]]\nthen = { tags = ["x"] }\n',
     f"rule '?' (rules #{N_RULES + 1}), name", "required key 'name' is missing"),
    ("an escalation target team nobody is in",
     edit('database = "dba"', 'database = "dba2"'),
     "escalation.support.database", "team 'dba2' has no engineers"),
]


@pytest.mark.parametrize("story,text,where,fragment", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_config_error_is_reported_with_file_place_and_fix(tmp_path, story, text, where, fragment):
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    problems = check_file(path)
    assert problems, "the broken file passed the check"
    hits = [p for p in problems if p.where == where and fragment in p.message]
    assert hits, "\n".join(map(str, problems))
    assert all(p.file == str(path) for p in problems)
    with pytest.raises(RulesError) as err:
        load_rules(path)
    assert f"{path}: {where}: " in str(err.value)


def test_the_sample_rules_pass_their_own_check():
    assert check_file(SAMPLE_RULES) == []


def test_every_problem_is_reported_at_once(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(SAMPLE + rule("a", 'then = { owner = "zoe" }') + rule("b", 'then = { team = "nobody" }')
                    + rule("c", 'then = { watchers = ["yan"] }'), encoding="utf-8")
    problems = check_file(path)
    assert [p.where.split(",")[0] for p in problems] == [
        f"rule 'a' (rules #{N_RULES + 1})", f"rule 'b' (rules #{N_RULES + 2})", f"rule 'c' (rules #{N_RULES + 3})"]
    assert str(RulesError(problems)).startswith("3 problems in the routing rules:\n  ")


def test_toml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(SAMPLE + '\n[[rules]\nname = "x"\n', encoding="utf-8")
    (p,) = check_file(path)
    assert "not valid TOML" in p.message and "line" in p.message and p.file == str(path)


def test_missing_file(tmp_path):
    (p,) = check_file(tmp_path / "nope.toml")
    assert p.message.startswith("cannot read the file")


def test_gateway_config_that_names_a_rules_file_is_followed(tmp_path):
    (tmp_path / "my-rules.toml").write_text(SAMPLE + rule("mine", 'then = { tags = ["mine"] }'), encoding="utf-8")
    cfg_file = tmp_path / "supportgw.toml"
    cfg_file.write_text('[gateway]\ndomain = "x"\n[routing]\nrules_file = "my-rules.toml"\n', encoding="utf-8")
    assert check_file(cfg_file) == []
    cfg = load_rules(cfg_file)
    assert cfg.path == tmp_path / "my-rules.toml" and cfg.rules[-1].name == "mine"


# --- reload while running -------------------------------------------------------------------

def email(subject: str) -> ParsedEmail:
    return ParsedEmail(sender=Address("", "x@acme.example.com"), to=(), cc=(), reply_to=(), subject=subject,
                       message_id="m", in_reply_to=(), references=(), date=None, text="", html="",
                       attachments=(), language="en", headers=())


def write(path, text: str, bump: int = 0) -> None:
    path.write_text(text, encoding="utf-8")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + bump * 1_000_000_000))


def test_reload_puts_new_rules_in_force(tmp_path):
    path = tmp_path / "rules.toml"
    write(path, SAMPLE)
    holder = RulesHolder(path)
    assert route(email("hello"), holder.current, now=NOW).category == "general"
    write(path, SAMPLE + rule("all-billing", 'then = { category = "billing" }'), bump=1)
    assert holder.reload() is True
    assert route(email("hello"), holder.current, now=NOW).category == "billing"


def test_broken_new_file_is_refused_and_the_old_rules_stay(tmp_path, caplog):
    path = tmp_path / "rules.toml"
    write(path, SAMPLE)
    holder = RulesHolder(path)
    old = holder.current
    write(path, SAMPLE + rule("bad", 'when = { body_regex = "([" }\nthen = { tags = ["x"] }'), bump=1)
    with caplog.at_level(logging.ERROR, logger="supportgw.routing"):
        assert holder.reload() is False
    assert holder.current is old
    assert "rule 'bad'" in str(holder.last_error)
    assert any("old rules stay in force" in r.getMessage() and "bad regular expression" in r.getMessage()
               for r in caplog.records)
    # Fixing the file brings reloads back.
    write(path, SAMPLE + rule("good", 'then = { tags = ["good"] }'), bump=2)
    assert holder.reload() is True and holder.last_error is None
    assert route(email("x"), holder.current, now=NOW).tags[-1] == "good"


def test_reload_if_changed_reloads_only_on_change_and_tries_a_broken_file_once(tmp_path, caplog):
    path = tmp_path / "rules.toml"
    write(path, SAMPLE)
    holder = RulesHolder(path)
    first = holder.current
    assert holder.reload_if_changed() is False and holder.current is first
    write(path, SAMPLE + rule("new", 'then = { tags = ["new"] }'), bump=1)
    assert holder.reload_if_changed() is True and holder.current is not first
    write(path, "this is not toml [", bump=2)
    with caplog.at_level(logging.ERROR, logger="supportgw.routing"):
        assert holder.reload_if_changed() is False
        assert holder.reload_if_changed() is False  # same broken file: not retried, not re-logged
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1
    assert holder.current.rules[-1].name == "new"


def test_broken_file_at_start_is_fatal(tmp_path):
    path = tmp_path / "rules.toml"
    write(path, SAMPLE + rule("x", 'then = { owner = "nobody" }'))
    with pytest.raises(RulesError, match="engineer 'nobody' is referenced but not defined"):
        RulesHolder(path)


def test_routing_continues_while_rules_are_reloaded(tmp_path):
    """Routers never see a half-loaded configuration: each decision is the old or the new rules."""
    path = tmp_path / "rules.toml"
    texts = [SAMPLE + rule("flip", f'then = {{ category = "{c}" }}') for c in ("alpha", "beta")]
    write(path, texts[0])
    holder = RulesHolder(path)
    seen, errors = set(), []
    done = threading.Event()

    def router():
        try:
            while not done.is_set():
                seen.add(route(email("outage"), holder.current, now=NOW).category)
        except Exception as exc:  # noqa: BLE001 — reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=router) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for i in range(20):
            write(path, texts[(i + 1) % 2], bump=i + 1)
            assert holder.reload() is True
    finally:
        done.set()
        for t in threads:
            t.join()
    assert errors == []
    assert seen <= {"alpha", "beta"} and seen


def test_every_kind_of_problem_is_reported_in_one_run(tmp_path):
    """A misspelt key, a bad regex and a missing name (the file's shape) no longer hide the
    undefined engineer 'bobb' (a reference) until they are fixed."""
    path = tmp_path / "rules.toml"
    path.write_text(SAMPLE + rule("typo", 'then = { categroy = "billing" }')
                    + rule("bad-re", 'when = { subject_regex = "(unclosed" }\nthen = { owner = "zoe" }')
                    + '\n[[rules]]\nthen = { tags = ["x"] }\n'
                    + rule("to-bobb", 'then = { owner = "bobb" }'), encoding="utf-8")
    problems = check_file(path)
    wheres = [(p.where, p.message.split(":")[0]) for p in problems]
    n = N_RULES
    assert (f"rule 'typo' (rules #{n + 1}), then.categroy", "unknown key 'categroy'") in wheres
    assert (f"rule 'bad-re' (rules #{n + 2}), when.subject_regex", "bad regular expression '(unclosed'") in wheres
    assert (f"rule '?' (rules #{n + 3}), name", "required key 'name' is missing") in wheres
    # the references, numbered as in the file although the rules before them are broken
    assert (f"rule 'bad-re' (rules #{n + 2}), then.owner", "engineer 'zoe' is referenced but not defined") in wheres
    assert (f"rule 'to-bobb' (rules #{n + 4}), then.owner", "engineer 'bobb' is referenced but not defined") in wheres
    assert len(problems) == 5, "\n".join(map(str, problems))


def test_a_broken_definition_is_reported_once_not_again_as_undefined(tmp_path):
    path = tmp_path / "rules.toml"
    text = SAMPLE.replace("[engineers.alice]\n", "[engineers.alice]\nshoe_size = 42\n", 1)
    assert text != SAMPLE
    path.write_text(text + rule("to-bobb", 'then = { owner = "bobb" }'), encoding="utf-8")
    problems = check_file(path)
    assert [p.where for p in problems] == ["engineers.alice.shoe_size", f"rule 'to-bobb' (rules #{N_RULES + 1}), then.owner"], \
        "\n".join(map(str, problems))


def test_a_missing_sla_table_is_one_problem_and_the_references_still_checked(tmp_path):
    path = tmp_path / "rules.toml"
    start = SAMPLE.index("\n[sla.")
    end = SAMPLE.index("\n[", SAMPLE.rindex("\n[sla.") + 1)
    text = SAMPLE[:start] + SAMPLE[end:]
    assert "[sla." not in text
    path.write_text(text + rule("to-bobb", 'then = { owner = "bobb" }'), encoding="utf-8")
    problems = check_file(path)
    assert [p.where for p in problems] == ["sla", f"rule 'to-bobb' (rules #{N_RULES + 1}), then.owner"], \
        "\n".join(map(str, problems))


def test_a_broken_sla_policy_is_not_also_reported_missing(tmp_path):
    path = tmp_path / "rules.toml"
    text = SAMPLE.replace("[sla.P1]\n", "[sla.P1]\ncolour = 'red'\n", 1)
    path.write_text(text + rule("to-bobb", 'then = { owner = "bobb" }'), encoding="utf-8")
    problems = check_file(path)
    assert [p.where for p in problems] == ["sla.P1.colour", f"rule 'to-bobb' (rules #{N_RULES + 1}), then.owner"], \
        "\n".join(map(str, problems))


def test_dates_that_are_not_a_list_are_a_problem_not_a_crash(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(SAMPLE + CAL.format(hours="'09:00-18:00'", extra="holidays = true"), encoding="utf-8")
    (p,) = check_file(path)
    assert p.where == "calendars.x.holidays" and "bad dates True" in p.message, p
