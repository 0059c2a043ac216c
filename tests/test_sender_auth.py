"""Sender authentication behind an MTA: our receiving server's Authentication-Results only.

Only the topmost header with [spam] authserv_id counts; another server's (or the
sender's own) results are ignored and not shown. DMARC fail where the domain publishes
p=reject or p=quarantine is suspended; so is mail claiming to be from one of our
engineers or support addresses that authentication does not pass, whatever reply token
it carries. The results a ticket's mail came with are on the ticket for engineers.
"""

from __future__ import annotations

import json

from gateway.tokens import reply_address
from parsers.authresults import foreign, read
from storage.models import Event, SpoolEntry, Ticket
from tests.hardening import acks, cli, push, rows, write_config
from tests.mail import build

OURS = "mx1.support.example.test"
AUTH = {"spam": {"authserv_id": OURS}}
ENGINEER = "alice@support.example.com"  # routing/sample_rules.toml


def ar(text: str, server: str = OURS) -> dict:
    return {"Authentication-Results": f"{server}; {text}"}


def with_ar(raw: bytes, *values: str) -> bytes:
    return "".join(f"Authentication-Results: {v}\r\n" for v in values).encode() + raw


def test_only_the_topmost_results_of_our_own_server_are_read():
    headers = (("Authentication-Results", f"{OURS}; spf=fail smtp.mailfrom=x@bank.example; dmarc=fail (p=reject dis=none) header.from=bank.example"),
               ("Authentication-Results", f"{OURS}; dmarc=pass header.from=bank.example"),  # forged, below ours
               ("Authentication-Results", "mx.attacker.example; dkim=pass header.d=bank.example"))
    got = read(headers, OURS)
    assert (got.spf, got.dmarc, got.dmarc_policy, got.header_from) == ("fail", "fail", "reject", "bank.example")
    assert not got.passes_for("bank.example")
    assert foreign(headers, OURS) == ["mx.attacker.example; dkim=pass header.d=bank.example"]
    assert read(headers, "") is None and read(headers, "mx9.other.example") is None


def test_dmarc_fail_with_p_reject_is_suspended_with_p_none_it_is_a_ticket(make_app):
    app = make_app(**AUTH)
    push(app, build(frm="ceo@bank.example", subject="Wire transfer",
                    headers=ar("spf=fail smtp.mailfrom=ceo@bank.example; dkim=none; "
                               "dmarc=fail (p=reject dis=none) header.from=bank.example")))
    push(app, build(frm="ops@small.example", subject="Portal down",
                    headers=ar("spf=fail smtp.mailfrom=ops@small.example; dmarc=fail (p=none) header.from=small.example")))
    first, second = rows(app, SpoolEntry)
    assert first.status == "suspended" and first.reason == "forged"
    assert "p=reject" in first.verdict["reasons"][0]
    assert second.status == "processed"
    assert [t.requester_email for t in rows(app, Ticket)] == ["ops@small.example"]


def test_a_forged_engineer_is_suspended_whatever_token_it_carries(make_app):
    app = make_app(**AUTH)
    push(app, build(subject="VPN drops"))
    ticket = rows(app, Ticket)[0]
    token = reply_address(app.config.support_address, app.signer.reply_token(ticket.id, ENGINEER))
    forged = build(frm=ENGINEER, to=token, subject=f"Re: [{ticket.ref}] VPN drops", body="#status resolved\nDone.\n",
                   headers=ar("spf=softfail smtp.mailfrom=alice@support.example.com; dkim=none; dmarc=none"))
    assert push(app, forged, to=(token,))["suspended"] == 1
    e = rows(app, SpoolEntry)[-1]
    assert e.reason == "forged" and "one of our engineers" in e.verdict["reasons"][0]
    assert rows(app, Ticket)[0].status != "resolved"
    # the same reply, authenticated by our server, is the engineer's
    real = build(frm=ENGINEER, to=token, subject=f"Re: [{ticket.ref}] VPN drops", body="#status resolved\nDone.\n",
                 headers=ar("dkim=pass header.d=support.example.com header.s=s1; dmarc=pass header.from=support.example.com"))
    push(app, real, to=(token,))
    assert rows(app, SpoolEntry)[-1].status == "processed"
    assert rows(app, Ticket)[0].status == "resolved"


def test_our_own_support_address_failing_authentication_is_forged(make_app):
    app = make_app(**AUTH)
    push(app, build(frm="support@support.example.test", subject="Your ticket", name="",
                    headers=ar("spf=fail smtp.mailfrom=support@support.example.test; dmarc=fail header.from=support.example.test")))
    [e] = rows(app, SpoolEntry)
    assert e.reason == "forged" and "our own support address" in e.verdict["reasons"][0]


def test_without_authserv_id_no_results_are_read(app):
    push(app, build(frm="ceo@bank.example", subject="Wire transfer",
                    headers=ar("dmarc=fail (p=reject) header.from=bank.example")))
    assert rows(app, SpoolEntry)[0].status == "processed" and len(acks(app)) == 1


def test_authentication_results_are_on_the_ticket_and_foreign_ones_are_not_shown(make_app, tmp_path):
    app = make_app(**AUTH)
    raw = with_ar(build(frm="ops@bank.example", subject="Portal down"),
                  f"{OURS}; spf=pass smtp.mailfrom=ops@bank.example; dkim=pass header.d=bank.example; dmarc=pass header.from=bank.example")
    push(app, raw)
    [ev] = rows(app, Event, Event.kind == "authentication")
    assert "spf=pass dkim=pass dmarc=pass" in ev.detail and OURS in ev.detail
    cfg = write_config(app, tmp_path / "gw.toml", spam=AUTH["spam"])
    shown = cli(cfg, "tickets", "show", rows(app, Ticket)[0].ref, "--json")
    assert "dmarc=pass" in shown.stdout

    # a suspended mail's headers, as `suspended show --json` prints them: another server's results are left out
    spoofed = with_ar(build(frm="ceo@bank.example", subject="Wire"),
                      f"{OURS}; dmarc=fail (p=quarantine) header.from=bank.example",
                      "mx.attacker.example; dmarc=pass header.from=bank.example")
    push(app, spoofed)
    e = rows(app, SpoolEntry)[-1]
    assert e.reason == "forged"
    out = json.loads(cli(cfg, "suspended", "show", str(e.id), "--json").stdout)
    values = [v for k, v in out[0]["headers"] if k.lower() == "authentication-results"]
    assert values == [f"{OURS}; dmarc=fail (p=quarantine) header.from=bank.example"]
