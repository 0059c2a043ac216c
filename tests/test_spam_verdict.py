"""A spam verdict from a real engine, before any ticket; upstream verdicts only from trusted hops.

rspamd runs for real (tests/rspamd.py: a private instance on loopback with its own Redis).
GTUBE is rejected and suspended; a customer's mail is a ticket; an engine that is down
never loses or holds mail (the verdict is "unchecked" and the health line says so); a
person's release or drop teaches the engine. Upstream SpamAssassin / rspamd / Microsoft 365
headers count only when our own trusted hop wrote the topmost Received line, and a forged
"not spam" below the real verdict cannot lower it.
"""

from __future__ import annotations

import smtplib

import pytest

from gateway.handlers import spam_verdict
from storage.models import SpoolEntry, Ticket
from tests.conftest import free_port, wait_for
from tests.hardening import acks, cli, push, rows, write_config
from tests.mail import build
from tests.rspamd import rspamd  # noqa: F401  (the session fixture)

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
OURS = "Received: from mail.attacker.example (mail.attacker.example [203.0.113.9])\r\n\tby mx1.support.example.test (Postfix) with ESMTPS id 4Q1; Tue, 1 Dec 2026 09:00:00 +0000\r\n"


def with_headers(raw: bytes, *lines: str) -> bytes:
    return "".join(lines).encode() + raw


# ---------------------------------------------------------------- upstream verdicts

TRUSTED = {"spam": {"trusted_hops": ["support.example.test"]}}


@pytest.mark.parametrize("header", [
    "X-Spam-Flag: YES\r\n",
    "X-Spam-Status: Yes, score=9.2 required=5.0 tests=BAYES_99,URIBL_BLACK autolearn=no\r\n",
    "X-Spam: Yes\r\n",
    "X-Spamd-Result: default: True [16.20 / 15.00]; GTUBE(0.00)[]\r\n",
    "X-MS-Exchange-Organization-SCL: 9\r\n",
    "X-Forefront-Antispam-Report: CIP:203.0.113.9;CTRY:;LANG:en;SCL:5;SRV:;IPV:NLI;SFV:SPM;H:mail;\r\n",
])
def test_upstream_spam_verdict_from_a_trusted_hop_suspends(make_app, header):
    app = make_app(**TRUSTED)
    push(app, with_headers(build(subject="Cheap watches"), header, OURS))
    [e] = rows(app, SpoolEntry)
    assert e.status == "suspended" and e.reason == "spam", e.verdict
    assert "received by mx1.support.example.test" in e.verdict["reasons"][0]
    assert rows(app, Ticket) == [] and acks(app) == []


def test_upstream_spam_headers_are_ignored_without_a_trusted_hop(make_app):
    app = make_app(**TRUSTED)
    untrusted = "Received: from x by mx.attacker.example; Tue, 1 Dec 2026 09:00:00 +0000\r\n"
    push(app, with_headers(build(subject="hello"), untrusted, "X-Spam-Flag: YES\r\n"))
    assert [e.status for e in rows(app, SpoolEntry)] == ["processed"]
    nohops = make_app()  # no trusted_hops configured: no upstream verdict counts at all
    push(nohops, with_headers(build(subject="hello"), "X-Spam-Flag: YES\r\n", OURS))
    assert [e.status for e in rows(nohops, SpoolEntry)] == ["processed"]


def test_a_forged_not_spam_below_the_real_verdict_cannot_lower_it(make_app):
    app = make_app(**TRUSTED)
    # the filter appended its verdict; the sender had written its own "No" into the mail
    raw = with_headers(build(subject="Invoice", headers={"X-Spam-Flag": "NO", "X-Spam-Status": "No, score=-5"}),
                       OURS, "X-Spam-Status: Yes, score=12.0 required=5.0\r\n")
    push(app, raw)
    [e] = rows(app, SpoolEntry)
    assert e.reason == "spam" and e.verdict["spam"]["score"] == 12.0


def test_upstream_not_spam_lets_a_customer_through(make_app):
    app = make_app(**TRUSTED)
    push(app, with_headers(build(subject="Login fails"), "X-MS-Exchange-Organization-SCL: 1\r\n", OURS))
    assert len(rows(app, Ticket)) == 1 and len(acks(app)) == 1


# ---------------------------------------------------------------- rspamd for real

def test_rspamd_rejects_gtube_and_it_is_suspended_not_answered(make_app, rspamd):  # noqa: F811
    app = make_app(spam=rspamd.config())
    push(app, build(subject="Win big", body=f"{GTUBE}\n"), envelope_from="spammer@attacker.example")
    [e] = rows(app, SpoolEntry)
    assert e.status == "suspended" and e.reason == "spam"
    assert e.verdict["spam"]["source"] == "rspamd" and e.verdict["spam"]["action"] == "reject"
    assert "GTUBE" in e.verdict["spam"]["symbols"]
    assert rows(app, Ticket) == [] and acks(app) == []


def test_rspamd_lets_a_customer_through_and_its_verdict_is_kept(make_app, rspamd):  # noqa: F811
    app = make_app(spam=rspamd.config())
    push(app, build(subject="VPN drops every hour", body="Since Monday our VPN drops every hour. Logs attached.\n"))
    [e] = rows(app, SpoolEntry)
    assert e.status == "processed" and len(acks(app)) == 1
    assert e.verdict["spam"]["source"] == "rspamd" and not e.verdict["spam"]["suspend"]


def test_rspamd_down_the_mail_is_processed_unchecked_and_health_says_so(make_app, tmp_path):
    closed = free_port()
    app = make_app(spam={"engine": "rspamd", "url": f"http://127.0.0.1:{closed}", "timeout": 1.0})
    push(app, build(subject="Printer on fire"))
    [e] = rows(app, SpoolEntry)
    assert e.status == "processed" and len(rows(app, Ticket)) == 1 and len(acks(app)) == 1
    assert e.verdict["spam"]["source"] == "unchecked"
    assert "DOWN" in spam_verdict.health(app)
    cfg = write_config(app, tmp_path / "gw.toml", spam={"engine": "rspamd", "url": f"http://127.0.0.1:{closed}",
                                                        "timeout": 1.0})
    listed = cli(cfg, "suspended", "list")
    assert listed.returncode == 0 and "DOWN" in listed.stdout.splitlines()[0]


def test_smtp_envelope_reaches_the_engine(running, rspamd):  # noqa: F811
    gw = running(spam=rspamd.config())
    with smtplib.SMTP("127.0.0.1", gw.app.config.smtp.port, local_hostname="mx.customer.example", timeout=30) as s:
        s.sendmail("alice@customer.example.com", ["support@support.example.test"],
                   build(subject="Hello", body=f"{GTUBE}\n"))
    e = wait_for(lambda: next(iter(r for r in rows(gw.app, SpoolEntry) if r.status != "pending"), None),
                 timeout=30, what="the mail processed")
    assert (e.client_ip, e.helo, e.envelope_from) == ("127.0.0.1", "mx.customer.example", "alice@customer.example.com")
    assert e.status == "suspended" and e.verdict["spam"]["action"] == "reject"


def test_release_and_drop_teach_the_engine(make_app, rspamd, tmp_path):  # noqa: F811
    from tests.test_suspended import robot

    app = make_app(spam=rspamd.config())
    push(app, robot("spamarrest-challenge.eml"))
    push(app, robot("allowed-list-challenge.eml"))
    first, second = rows(app, SpoolEntry)
    assert first.status == second.status == "suspended"
    before = rspamd.stat().get("learned", 0)
    cfg = write_config(app, tmp_path / "gw.toml", spam=rspamd.config())
    assert cli(cfg, "suspended", "drop", str(first.id)).returncode == 0
    assert cli(cfg, "suspended", "release", str(second.id)).returncode == 0
    assert rspamd.stat().get("learned", 0) == before + 2


def test_a_likely_spam_below_reject_is_a_ticket_but_gets_no_acknowledgement(make_app, rspamd):  # noqa: F811
    # rspamd's "add header" band, when quiet_actions names it: kept as a ticket (a real customer
    # there loses nothing) but not answered (no backscatter to a forged sender)
    app = make_app(spam=rspamd.config(quiet_actions=["add header"]))
    raw = (b"From: =?utf-8?B?U3VwcG9ydCBUZWFt?= <winner@lottery.example>\r\nTo: someone@else.example\r\n"
           b"Subject: =?utf-8?B?WU9VIEhBVkUgV09OISEh?=\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: text/html; charset=utf-8\r\n\r\n"
           b"<html><body><p>CLICK <a href='http://198.51.100.9/win'>HERE</a> to claim your prize!!!</p>"
           b"<img src='http://198.51.100.9/p.gif'></body></html>\r\n")
    push(app, raw, envelope_from="winner@lottery.example")
    [e] = rows(app, SpoolEntry)
    assert e.verdict["spam"]["action"] == "add header", e.verdict["spam"]
    assert e.status == "processed" and len(rows(app, Ticket)) == 1
    assert acks(app) == []
    from storage.models import Event

    [ev] = rows(app, Event, Event.kind == "auto_suppressed")
    assert "possible spam" in ev.detail
