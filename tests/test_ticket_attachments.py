"""A ticket's attachments can be listed and fetched: `supportgw tickets attachments REF` and
`supportgw tickets attachment REF N [-o FILE]`, byte for byte and checked against the hash the
notification names when the file was too large to forward."""

from __future__ import annotations

import hashlib
import json
import os
from email.message import EmailMessage
from email.policy import SMTP

import pytest

from tests.hardening import cli, write_config

BIG = os.urandom(3 * 1024 * 1024 + 17)  # over spool_inline_max: ingest streams it to the blob store
SMALL = b"error 502 upstream\n" * 10


@pytest.fixture
def ticket(app, tmp_path):
    m = EmailMessage()
    m["From"] = "Li Wei <li.wei@bigbank.example>"
    m["To"] = "support@support.example.test"
    m["Subject"] = "Website returns 502, logs attached"
    m["Message-ID"] = "<att@bigbank.example>"
    m.set_content("Logs and a core dump attached.\n")
    m.add_attachment(SMALL, maintype="text", subtype="plain", filename="error.log")
    m.add_attachment(BIG, maintype="application", subtype="octet-stream", filename="core.dump")
    mail = tmp_path / "with-attachments.eml"
    mail.write_bytes(m.as_bytes(policy=SMTP))
    cfg = write_config(app, tmp_path / "gw.toml", workflow={"attachment_link_over": 1024 * 1024})
    out = cli(cfg, "ingest", "--json", str(mail))
    assert out.returncode == 0 and json.loads(out.stdout)["tickets_created"] == 1, out.stdout + out.stderr
    return cfg


def test_attachments_are_listed_numbered_with_size_type_and_hash(ticket):
    out = cli(ticket, "tickets", "attachments", "ts-000001")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:2] == ["1", "error.log"] and f"{len(SMALL):,} B" in lines[0]
    assert lines[1].split()[:2] == ["2", "core.dump"] and f"{len(BIG):,} B" in lines[1]
    assert hashlib.sha256(BIG).hexdigest()[:12] in lines[1] and "li.wei@bigbank.example" in lines[1]
    assert "supportgw tickets attachment TS-000001 N -o FILE" in lines[-1]
    items = json.loads(cli(ticket, "tickets", "attachments", "TS-000001", "--json").stdout)
    assert [(a["n"], a["filename"], a["size"], a["sha256"], a["stored"]) for a in items] == [
        (1, "error.log", len(SMALL), hashlib.sha256(SMALL).hexdigest(), True),
        (2, "core.dump", len(BIG), hashlib.sha256(BIG).hexdigest(), True)]


def test_an_attachment_is_fetched_byte_for_byte_by_number_or_hash(ticket, tmp_path):
    target = tmp_path / "core.dump"
    out = cli(ticket, "tickets", "attachment", "TS-000001", "2", "-o", str(target))
    assert out.returncode == 0, out.stderr
    assert target.read_bytes() == BIG
    import subprocess

    from tests.hardening import ROOT, supportgw_command
    by_hash = subprocess.run([*supportgw_command(), "--config", str(ticket), "tickets", "attachment", "TS-000001",
                              hashlib.sha256(SMALL).hexdigest()[:8]], capture_output=True, cwd=str(ROOT), timeout=60)
    assert by_hash.returncode == 0, by_hash.stderr
    assert by_hash.stdout == SMALL


def test_the_notification_says_how_to_fetch_what_it_did_not_forward(ticket):
    listed = json.loads(cli(ticket, "outbox", "list", "--json").stdout)
    note = next(r for r in listed if r["kind"] == "notification")
    text = cli(ticket, "outbox", "show", str(note["id"])).stdout
    sha = hashlib.sha256(BIG).hexdigest()
    assert f"kept on the ticket as sha256 {sha}" in text
    assert "Fetch one kept on the ticket with: supportgw tickets attachment TS-000001 SHA256 -o FILE" in text


def test_mistakes_are_one_line_and_exit_2(ticket, tmp_path):
    existing = tmp_path / "already-here"
    existing.write_bytes(b"keep me")
    cases = [
        (["tickets", "attachment", "TS-000001", "3"], "has 2 attachment(s), no number 3"),
        (["tickets", "attachment", "TS-000001", "abcdef12"], "matches none"),
        (["tickets", "attachment", "TS-000009", "1"], "no ticket TS-000009"),
        (["tickets", "attachments", "TS-000009"], "no ticket TS-000009"),
        (["tickets", "attachment", "TS-000001", "1", "-o", str(existing)], "exists; give --force"),
    ]
    for args, fragment in cases:
        out = cli(ticket, *args)
        assert out.returncode == 2 and fragment in out.stderr and "Traceback" not in out.stderr, (args, out.stderr)
    assert existing.read_bytes() == b"keep me"
    assert cli(ticket, "tickets", "attachment", "TS-000001", "1", "-o", str(existing), "--force").returncode == 0
    assert existing.read_bytes() == SMALL


def test_a_damaged_stored_file_is_reported_not_handed_out(app, ticket, tmp_path):
    path = app.attachments.path_for(hashlib.sha256(SMALL).hexdigest())
    path.write_bytes(b"tampered")
    target = tmp_path / "out.log"
    out = cli(ticket, "tickets", "attachment", "TS-000001", "1", "-o", str(target))
    assert out.returncode == 2 and "damaged" in out.stderr, out.stderr
    assert not target.exists()


def test_bytes_are_not_poured_onto_a_terminal(ticket):
    import pty
    import subprocess

    from tests.hardening import ROOT, supportgw_command
    leader, follower = pty.openpty()
    try:
        out = subprocess.run([*supportgw_command(), "--config", str(ticket), "tickets", "attachment", "TS-000001", "2"],
                             stdout=follower, stderr=subprocess.PIPE, cwd=str(ROOT), timeout=60)
    finally:
        os.close(follower)
        os.close(leader)
    assert out.returncode == 2 and b"not writing" in out.stderr and b"-o core.dump" in out.stderr, out.stderr
