"""Hostile input, addresses: a crafted From never becomes a requester we answer
(CVE-2023-27043 class: Python's getaddresses reads an address out of an encoded
display name), and nothing that is not a valid local@domain is acknowledged."""

from __future__ import annotations

import pytest

from parsers.addresses import getaddresses, is_valid_address
from tests.dates import sent_now
from parsers.message import parse_email
from storage.models import OutboxRow, Ticket
from tests.hardening import acks, push, rows

CRAFTED_FROMS = [
    "=?utf-8?q?Eve=0D=0ABcc:_victim2@evil.example=0D=0AX-Injected:_1?= <eve2@evil.example>",
    "alice@customer.example.com <eve@evil.example>",  # the CVE's own example
    "bob@",
    "<@>",
    "Eve <eve@[127.0.0.1]>",
    "eve(@customer.example.com",
    "\"Eve\" <eve@evil..example>",
    "eve@localhost",
]


def _mail(frm: str, cc: str = "") -> bytes:
    return (f"From: {frm}\r\nTo: support@support.example.test\r\n" + (f"Cc: {cc}\r\n" if cc else "") +
            "Subject: Invoice question\r\nMessage-ID: <crafted-{0}@evil.example>\r\n"
            f"Date: {sent_now()}\r\n\r\nHello,\r\nplease call me.\r\n"
            .replace("{0}", str(abs(hash(frm + cc))))).encode("utf-8")


@pytest.mark.parametrize("frm", CRAFTED_FROMS)
def test_a_crafted_from_yields_no_sender_and_a_defect(frm):
    e = parse_email(_mail(frm))
    assert e.sender.email == ""
    assert "invalid-address:from" in e.defects


def test_the_injected_address_inside_an_encoded_name_is_never_read_as_an_address():
    e = parse_email(_mail(CRAFTED_FROMS[0], cc=CRAFTED_FROMS[0]))
    everyone = [e.sender.email] + [a.email for a in e.to + e.cc]
    assert not any("victim2" in a or "=0d" in a for a in everyone), everyone


@pytest.mark.parametrize("frm", CRAFTED_FROMS)
def test_a_crafted_from_is_never_acknowledged(app, frm):
    push(app, _mail(frm))
    assert acks(app) == []
    for row in rows(app, OutboxRow):
        assert all(is_valid_address(a) for a in row.envelope_to), row.envelope_to
    for t in rows(app, Ticket):
        assert t.requester_email == "" or is_valid_address(t.requester_email)


def test_valid_senders_and_ccs_stay_as_they_were():
    e = parse_email(_mail('"Wang, Li" <li.wang@customer.example.com>',
                          cc="=?utf-8?b?5byg5LiJ?= <zhang@example.cn>, ops+alerts@sub.customer.example.com"))
    assert (e.sender.name, e.sender.email) == ("Wang, Li", "li.wang@customer.example.com")
    assert [(a.name, a.email) for a in e.cc] == [("张三", "zhang@example.cn"), ("", "ops+alerts@sub.customer.example.com")]
    assert e.defects == () or "invalid-address:from" not in e.defects


def test_a_robots_from_without_a_domain_still_marks_its_mail_automatic():
    raw = (b"From: Mail Delivery Subsystem <MAILER-DAEMON>\r\nTo: support@support.example.test\r\n"
           b"Subject: Returned mail: see transcript for details\r\nMessage-ID: <b1@mx.example.net>\r\n\r\n"
           b"The original message was received at Mon, 2 Mar 2026.\r\n")
    e = parse_email(raw)
    assert e.sender.email == "" and e.automatic


@pytest.mark.parametrize("addr,ok", [
    ("alice@customer.example.com", True), ("o'brien+tag@mail.example.ie", True), ("张三@例子.中国", True),
    ("a.b@x.co", True), ("bob@", False), ("@x.com", False), ("a@b", False), ("a@@b.com", False),
    ("a..b@x.com", False), (".a@x.com", False), ("a@-x.com", False), ("a@x.com.", True), ("a@1.2.3.4", False),
    ("a b@x.com", False), ("a\x00b@x.com", False), ("a@x\r\n.com", False), ("\"q\"@x.com", False),
    ("x" * 65 + "@x.com", False), ("a@" + "x" * 64 + ".com", False),
])
def test_is_valid_address(addr, ok):
    assert is_valid_address(addr) is ok


def test_strict_getaddresses_gives_nothing_for_a_malformed_header():
    assert getaddresses(["alice@example.com <bob@example.com>"]) == []
    assert getaddresses(['"Smith, John" <j@x.example>, k@y.example']) == [("Smith, John", "j@x.example"),
                                                                          ("", "k@y.example")]
