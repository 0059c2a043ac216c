"""A mail with nobody to answer is quarantined, never a ticket: random bytes, an empty
file, text with no headers, a From that is no address. With no From but an envelope
sender, the envelope sender is the requester."""

from __future__ import annotations

import json
import os

import pytest

from gateway.handlers.senders import is_usable
from storage.models import Event, OutboxRow, SpoolEntry, Ticket
from tests.hardening import cli, count, push, rows, write_config

NO_SENDER = {
    "random_bytes": os.urandom(4096),
    "empty_file": b"",
    "plain_text_no_headers": b"hello, my printer is broken since Monday\nplease call me\n",
    "headers_but_no_from": b"To: support@support.example.test\r\nSubject: help\r\n\r\nbody\r\n",
    "from_is_a_name_only": b"From: just a name\r\nSubject: who am I\r\n\r\nbody\r\n",
    "from_without_domain": b"From: Alice <alice>\r\nSubject: hi\r\n\r\nbody\r\n",
    "from_with_empty_domain": b"From: alice@\r\nSubject: hi\r\n\r\nbody\r\n",
}


def test_files_with_nobody_to_answer_are_quarantined_by_ingest_not_made_tickets(app, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name, raw in NO_SENDER.items():
        (folder / f"{name}.eml").write_bytes(raw)
    cfg = write_config(app, tmp_path / "gw.toml")
    out = cli(cfg, "ingest", "--json", str(folder))
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["tickets_created"] == 0 and summary["quarantined"] == len(NO_SENDER), summary
    assert count(app, Ticket) == 0
    assert count(app, OutboxRow) == 0, "somebody was notified of a ticket from nobody"
    assert count(app, Event, Event.kind == "auto_suppressed") == 0

    listed = cli(cfg, "quarantine", "list", "--json")
    entries = json.loads(listed.stdout)
    assert len(entries) == len(NO_SENDER)
    for e in entries:
        assert e["reason"].startswith("no usable sender:"), e
        assert "own address" not in e["reason"]
    shown = cli(cfg, "quarantine", "show", str(entries[0]["id"]))
    assert "nobody to answer" in shown.stdout and "Traceback" not in shown.stdout


def test_no_from_header_but_an_envelope_sender_makes_the_envelope_sender_the_requester(app):
    counts = push(app, NO_SENDER["headers_but_no_from"], envelope_from="bob@customer.example.com")
    assert counts["created"] == 1, counts
    (ticket,) = rows(app, Ticket)
    assert ticket.requester_email == "bob@customer.example.com"
    assert [r.to for r in rows(app, OutboxRow, OutboxRow.kind == "acknowledgement")] == [["bob@customer.example.com"]]


def test_a_null_envelope_sender_does_not_rescue_a_mail_without_from(app):
    counts = push(app, NO_SENDER["plain_text_no_headers"], envelope_from="<>")
    assert counts["quarantined"] == 1, counts
    (entry,) = rows(app, SpoolEntry)
    assert entry.status == "quarantined" and entry.error.startswith("no usable sender:")


def test_retrying_a_quarantined_mail_without_sender_keeps_it_quarantined(app, tmp_path):
    push(app, NO_SENDER["empty_file"])
    (entry,) = rows(app, SpoolEntry)
    cfg = write_config(app, tmp_path / "gw.toml")
    out = cli(cfg, "quarantine", "retry", str(entry.id))
    assert "quarantined: 1" in out.stdout, out.stdout + out.stderr
    assert count(app, Ticket) == 0


@pytest.mark.parametrize("address,usable", [
    ("alice@bigbank.example", True), ("a.b+tag@sub.example.co.uk", True), ("root@localhost", True),
    ("王伟@例子.公司", True), ("", False), ("alice", False), ("alice@", False), ("@bigbank.example", False),
    ("a@b@c", False), ("a b@c.example", False), ("a@c..example", False), ("<a@c.example>", False),
    ("a@c.example\n", False),
])
def test_what_counts_as_a_usable_sender(address, usable):
    assert is_usable(address) is usable
