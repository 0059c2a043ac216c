"""Listening on SMTP directly: the gateway checks SPF, DKIM, ARC and DMARC itself.

A real DNS server on loopback (tests/dns_server.py) holds the records; mail arrives over
a real SMTP session from 127.0.0.1. A DKIM-signed mail from a domain whose SPF allows us
is a ticket whose history shows spf/dkim/dmarc pass; a mail in the name of a domain that
publishes p=quarantine but fails SPF and has no signature is suspended; so is a mail in
the name of one of our engineers that authentication does not pass.
"""

from __future__ import annotations

import base64
import re
import smtplib
import subprocess

import dkim

from storage.models import Event, SpoolEntry
from tests.conftest import wait_for
from tests.dns_server import dns_zone  # noqa: F401  (the fixture)
from tests.hardening import rows
from tests.mail import build


def _keypair(tmp_path):
    key = tmp_path / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "1024"], check=True, capture_output=True)
    der = subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"], check=True,
                         capture_output=True).stdout
    return key.read_bytes(), base64.b64encode(der).decode()


def _send(port, raw, mail_from):
    with smtplib.SMTP("127.0.0.1", port, local_hostname="mx.sender.example", timeout=30) as s:
        s.sendmail(mail_from, ["support@support.example.test"], raw)


def _settled(app, n):
    return wait_for(lambda: (lambda r: r if len(r) >= n and all(e.status != "pending" for e in r) else None)(
        rows(app, SpoolEntry)), timeout=30, what=f"{n} mails processed")


def test_smtp_mail_is_checked_for_spf_dkim_and_dmarc(running, dns_zone, tmp_path):  # noqa: F811
    private, public = _keypair(tmp_path)
    dns_zone.add("customer.example", "TXT", "v=spf1 ip4:127.0.0.1 -all")
    dns_zone.add("s1._domainkey.customer.example", "TXT", f"v=DKIM1; k=rsa; p={public}")
    dns_zone.add("_dmarc.customer.example", "TXT", "v=DMARC1; p=reject")
    dns_zone.add("bank.example", "TXT", "v=spf1 ip4:192.0.2.1 -all")
    dns_zone.add("_dmarc.bank.example", "TXT", "v=DMARC1; p=quarantine")
    dns_zone.add("support.example.com", "TXT", "v=spf1 ip4:192.0.2.7 -all")
    dns_zone.add("_dmarc.support.example.com", "TXT", "v=DMARC1; p=none")
    gw = running(spam={"verify_smtp": True, "resolver": dns_zone.address, "timeout": 3.0})
    port = gw.app.config.smtp.port

    real = build(frm="ops@customer.example", subject="Portal down", body="Nobody can log in since 9:00.\n")
    signature = dkim.sign(real, b"s1", b"customer.example", private, include_headers=[b"from", b"to", b"subject"])
    _send(port, signature + real, "ops@customer.example")
    forged_bank = build(frm="ceo@bank.example", subject="Urgent wire transfer", body="Pay the attached invoice.\n")
    _send(port, forged_bank, "ceo@bank.example")
    forged_engineer = build(frm="alice@support.example.com", subject="Re: your ticket", body="#status resolved\n")
    _send(port, forged_engineer, "alice@support.example.com")

    first, second, third = _settled(gw.app, 3)
    assert first.status == "processed", first.verdict
    [ev] = rows(gw.app, Event, Event.kind == "authentication")
    assert "spf=pass dkim=pass dmarc=pass" in ev.detail, ev.detail
    assert second.status == "suspended" and second.reason == "forged"
    assert "p=quarantine" in second.verdict["reasons"][0]
    assert third.status == "suspended" and third.reason == "forged"
    assert "one of our engineers" in third.verdict["reasons"][0]


def test_dns_down_the_mail_is_still_a_ticket(running):
    from tests.conftest import free_port

    gw = running(spam={"verify_smtp": True, "resolver": f"127.0.0.1:{free_port()}", "timeout": 0.5})
    _send(gw.app.config.smtp.port, build(frm="ops@customer.example", subject="Portal down"), "ops@customer.example")
    [e] = _settled(gw.app, 1)
    assert e.status == "processed"
    [ev] = rows(gw.app, Event, Event.kind == "authentication")
    assert "dmarc=pass" not in ev.detail and "spf=pass" not in ev.detail


def test_an_arc_sealed_forward_is_checked_and_its_result_shown(running, dns_zone, tmp_path):  # noqa: F811
    """A mailing list (lists.example) forwards a customer's mail: SPF names the list, not the
    customer, but the list sealed what it saw with ARC (RFC 8617); the gateway verifies the seal."""
    private, public = _keypair(tmp_path)
    dns_zone.add("lists.example", "TXT", "v=spf1 ip4:127.0.0.1 -all")
    dns_zone.add("arc1._domainkey.lists.example", "TXT", f"v=DKIM1; k=rsa; p={public}")
    dns_zone.add("customer.example", "TXT", "v=spf1 ip4:192.0.2.1 -all")
    dns_zone.add("_dmarc.customer.example", "TXT", "v=DMARC1; p=none")
    gw = running(spam={"verify_smtp": True, "resolver": dns_zone.address, "timeout": 3.0})
    seen = b"Authentication-Results: lists.example; spf=pass smtp.mailfrom=ops@customer.example\r\n"
    mail = seen + build(frm="ops@customer.example", subject="Portal down", body="Nobody can log in since 9:00.\n")
    seal = b"".join(dkim.arc_sign(mail, b"arc1", b"lists.example", private, b"lists.example",
                                  include_headers=[b"from", b"to", b"subject"]))
    _send(gw.app.config.smtp.port, seal + mail, "bounces@lists.example")
    other = seen + build(frm="ops@customer.example", subject="Invoice", body="Please pay invoice 76.\n")
    other_seal = b"".join(dkim.arc_sign(other, b"arc1", b"lists.example", private, b"lists.example",
                                        include_headers=[b"from", b"to", b"subject"]))
    tampered = other_seal + other.replace(b"Subject: Invoice", b"Subject: Invoice 77, pay at once")
    _send(gw.app.config.smtp.port, tampered, "bounces@lists.example")
    first, second = _settled(gw.app, 2)
    assert first.status == "processed", first.verdict
    sealed, broken = sorted(rows(gw.app, Event, Event.kind == "authentication"), key=lambda ev: ev.ticket_id)
    assert re.search(r"\barc=pass", sealed.detail), sealed.detail  # \b: not the tail of "dmarc=pass"
    assert re.search(r"\barc=fail", broken.detail), broken.detail  # changed after the list sealed it
