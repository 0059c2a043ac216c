"""`supportgw rules explain FILE.eml`: every rule evaluated, matched or not, and the decision."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from routing.engine import route
from routing.explain import explain, explain_email, parse_for_routing
from routing.loader import load_rules
from tests.conftest import corpus

NOW = datetime(2026, 3, 6, 8, 30, tzinfo=timezone.utc)  # Friday 16:30 in Shanghai

RAW = """\
From: Ops Team <ops@bigbank.example>
To: support@support.example.com
Subject: =?utf-8?b?5pWw5o2u5bqT5a6V5py6?= - urgent
Message-ID: <outage-1@bigbank.example>
Date: Fri, 06 Mar 2026 16:30:00 +0800
Content-Type: text/plain; charset=utf-8

All users cannot log in since 16:00. ORA-00060 deadlock detected.
""".encode()


@pytest.fixture(scope="module")
def sample():
    return load_rules()


def test_explain_lists_every_rule_and_the_decision(sample):
    out = explain_email(RAW, sample, ("support@support.example.com",), NOW)
    lines = out.splitlines()
    assert lines[0] == "Email:    '数据库宕机 - urgent' from Ops Team <ops@bigbank.example>"
    assert "Customer: bigbank (tier strategic)" in lines
    assert "Project:  core-banking: primary alice, secondary bob, manager carol" in lines
    assert f"Rules:    {len(sample.rules)} evaluated, 4 matched" in lines
    for rule in sample.rules:  # matched or not, each rule has its line
        assert sum(f"rule '{rule.name}'" in ln for ln in lines) == 1, rule.name
    assert "  [x] rule 'outage-keywords' → impact=high, tags+=outage → P1" in lines
    assert "        because subject or body has 'all users', '宕机'" in lines
    assert "  [x] rule 'database' → category=database, team=dba" in lines
    assert any(ln.startswith("  [ ] rule 'billing': subject or body has none of 'billing', 'invoice'")
               for ln in lines)
    assert lines[lines.index("Decision:") + 1:] == [
        "  category  database",
        "  team      dba",
        "  priority  P1 (matrix: tier strategic, impact high, urgency high)",
        "  owner     alice <alice@support.example.com>",
        "  tags      outage, vip",
        "  watchers  carol@support.example.com",
        "SLA P1/strategic (calendar time):",
        "  first response by 2026-03-06 08:45 UTC (2026-03-06 16:45 Asia/Shanghai)",
        "  resolution by     2026-03-06 12:30 UTC (2026-03-06 20:30 Asia/Shanghai)",
    ]


def test_explain_shows_what_a_stop_skipped(sample):
    raw = RAW.replace(b"To: support@", b"To: security@")
    out = explain_email(raw, sample, (), NOW)
    assert "stopped by 'security-mailbox'" in out
    assert "  not evaluated (stop): outage-keywords, limited-impact," in out
    assert "Note: watcher project.manager" not in out  # bigbank has a project: the manager resolves
    assert "  watchers  carol@support.example.com, sam@support.example.com" in out


def test_explain_shows_unresolved_references_and_adjustments(sample):
    raw = (b"From: someone@elsewhere.example\nTo: security@support.example.com\nSubject: vulnerability\n\nhi\n")
    out = explain_email(raw, sample, (), NOW)
    assert "Customer: not in the customer directory (tier standard)" in out
    assert "  priority  P1 (matrix: tier standard, impact medium, urgency medium, adjusted by rules from P3)" in out
    assert "  owner     (team queue)" in out
    assert "Note: watcher project.manager: the email has no customer project; left to the team" in out


def test_explain_of_a_decision_without_full_trace_lists_matched_rules_only(sample):
    email = parse_for_routing(RAW)
    d = route(email, sample, now=NOW)
    text = explain(d)
    assert "[ ]" not in text and text.count("[x]") == 4


def test_out_of_office_primary_is_called_out(sample):
    import dataclasses

    sample.engineers["alice"] = dataclasses.replace(sample.engineers["alice"], out_of_office=True)
    try:
        out = explain_email(RAW, sample, (), NOW)
    finally:
        sample.engineers["alice"] = dataclasses.replace(sample.engineers["alice"], out_of_office=False)
    assert "  owner     alice <alice@support.example.com> — out of office: hand over to the secondary" in out


def test_explain_a_real_corpus_email(sample):
    raw = corpus("spamscope-mail-parser/mail_test_12").read_bytes()
    out = explain_email(raw, sample, ("support@support.example.com",), NOW)
    assert "'代开各地增值税发票'" in out.splitlines()[0]
    assert "  category  billing" in out
    assert "[x] rule 'billing' → category=billing, impact=low, tags+=billing" in out
