"""The `supportgw` command line, run as a user would (in-process main(), real files)."""

from __future__ import annotations

import json
import mailbox
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import main
from tests.conftest import corpus, fresh_database_url
from tests.mail import build

SUPPORT = "support@support.example.test"


@pytest.fixture
def cfgfile(tmp_path):
    url = fresh_database_url(tmp_path)
    key = tmp_path / "secret.key"
    key.write_text("cli-test-secret-0123456789abcdef\n")
    key.chmod(0o600)
    path = tmp_path / "supportgw.toml"
    path.write_text(f"""
[gateway]
data_dir = "{tmp_path / 'var'}"
secret_key = {{ file = "{key}" }}
[database]
url = "{url}"
""")
    yield path
    from tests.conftest import drop_database
    drop_database(url)


def run(cfg, *args, capsys):
    code = main(["--config", str(cfg), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_ingest_eml_maildir_and_mbox_with_json_counts(cfgfile, tmp_path, capsys):
    eml = tmp_path / "one.eml"
    eml.write_bytes(build(msgid="<e1@c>", subject="from a file"))
    md = mailbox.Maildir(str(tmp_path / "md"), create=True)
    md.add(build(msgid="<e2@c>", subject="from maildir"))
    md.add(build(msgid="<e3@c>", in_reply_to="<e2@c>", subject="Re: from maildir"))
    mb = mailbox.mbox(str(tmp_path / "box.mbox"), create=True)
    mb.add(build(msgid="<e4@c>", subject="from mbox", frm="bob@customer.example.com"))
    mb.flush()
    code, out, _ = run(cfgfile, "ingest", "--json", str(eml), str(tmp_path / "md"), str(tmp_path / "box.mbox"),
                       capsys=capsys)
    assert code == 0
    counts = json.loads(out)
    assert counts["ingested"] == 4
    assert counts["tickets_created"] == 3
    assert counts["threaded"] == 1
    assert counts["duplicates"] == 0 and counts["quarantined"] == 0

    code, out, _ = run(cfgfile, "ingest", "--json", str(eml), capsys=capsys)  # same file again
    assert json.loads(out)["duplicates"] == 1

    code, out, _ = run(cfgfile, "tickets", "list", "--json", capsys=capsys)
    tickets = json.loads(out)
    assert {t["subject"] for t in tickets} == {"from a file", "from maildir", "from mbox"}
    for t in tickets:
        assert {"ref", "subject", "status", "priority", "requester", "messages"} <= set(t)
    assert max(t["messages"] for t in tickets) == 2

    ref = tickets[0]["ref"]
    code, out, _ = run(cfgfile, "tickets", "show", ref, capsys=capsys)
    assert code == 0 and ref in out and "History:" in out


def test_outbox_list_and_send(cfgfile, tmp_path, capsys):
    eml = tmp_path / "one.eml"
    eml.write_bytes(build(msgid="<o1@c>"))
    run(cfgfile, "ingest", str(eml), capsys=capsys)
    code, out, _ = run(cfgfile, "outbox", "list", "--json", capsys=capsys)
    rows = json.loads(out)
    ack = [r for r in rows if r["kind"] == "acknowledgement"]
    assert len(ack) == 1
    assert {"id", "to", "subject", "message_id", "kind", "status", "attempts"} <= set(ack[0])
    assert ack[0]["status"] == "pending" and ack[0]["to"] == ["alice@customer.example.com"]
    code, out, _ = run(cfgfile, "outbox", "send", capsys=capsys)
    assert code == 0
    sent = list((tmp_path / "var" / "sent" / "new").iterdir())
    assert any(b"Auto-Submitted: auto-replied" in p.read_bytes() for p in sent)
    code, out, _ = run(cfgfile, "outbox", "list", "--json", capsys=capsys)
    assert all(r["status"] == "sent" and r["attempts"] == 1 for r in json.loads(out))


def test_outbox_show_prints_a_mail_readable(cfgfile, tmp_path, capsys):
    """var/sent holds base64 bodies and RFC 2047 subjects; 'outbox show' is the readable view."""
    eml = tmp_path / "zh.eml"
    eml.write_bytes(build(msgid="<zh1@c>", subject="系统宕机", body="所有用户都无法登录。\n"))
    run(cfgfile, "ingest", str(eml), capsys=capsys)
    _, out, _ = run(cfgfile, "outbox", "list", "--json", capsys=capsys)
    [ack] = [r for r in json.loads(out) if r["kind"] == "acknowledgement"]
    code, out, _ = run(cfgfile, "outbox", "show", str(ack["id"]), capsys=capsys)
    assert code == 0
    assert "Subject: [TS-000001] " in out and "系统宕机" in out  # decoded, not =?utf-8?b?...?=
    assert "Auto-Submitted: auto-replied" in out and "Reply-To: support+" in out
    assert "TS-000001" in out.split("\n\n", 1)[1]  # the text itself, decoded
    code, out, _ = run(cfgfile, "outbox", "show", str(ack["id"]), "--raw", capsys=capsys)
    assert code == 0 and "Content-Transfer-Encoding" in out
    code, _, err = run(cfgfile, "outbox", "show", "999", capsys=capsys)
    assert code == 2 and "no outbox row 999" in err


def test_parse_json_has_the_documented_keys(tmp_path, capsys):
    eml = tmp_path / "x.eml"
    eml.write_bytes(build(msgid="<p1@c>", body="Hi\n\nOn Mon, Alice wrote:\n> old text\n"))
    code = main(["parse", str(eml), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    for key in ("from", "to", "cc", "subject", "message_id", "in_reply_to", "references", "text", "language",
                "attachments", "reply_text", "signature", "automatic", "automatic_reason"):
        assert key in data
    assert data["message_id"] == "p1@c"
    assert data["reply_text"].strip() == "Hi"


def test_parse_gb18030_corpus_sample(capsys):
    path = corpus("rt-request-tracker", "new-ticket-from-gb18030")
    main(["parse", str(path), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert data["subject"] == "测试"
    assert data["language"] == "zh-CN"


def test_ingest_chinese_charset_corpus_samples_become_readable_tickets(cfgfile, capsys, tmp_path):
    # RT's sample is From root@localhost, which is no address we could answer (a dotless
    # domain: quarantined as "no usable sender", tests/test_no_sender.py); this test is about
    # its charset, so it goes in From an address we can answer
    gb18030 = tmp_path / "new-ticket-from-gb18030.eml"
    gb18030.write_bytes(corpus("rt-request-tracker", "new-ticket-from-gb18030").read_bytes()
                        .replace(b"From: root@localhost", b"From: root@customer.example.com"))
    files = [gb18030, corpus("webklex-php-imap", "gbk_charset.eml")]
    code, out, _ = run(cfgfile, "ingest", "--json", *map(str, files), capsys=capsys)
    assert json.loads(out)["quarantined"] == 0
    code, out, _ = run(cfgfile, "tickets", "list", "--json", capsys=capsys)
    subjects = [t["subject"] for t in json.loads(out)]
    assert "测试" in subjects
    assert all("\ufffd" not in s for s in subjects)


def test_invalid_config_names_file_key_and_expectation(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[smtp]\nport = "twenty-five"\nmax_mesage_size = 10\n')
    code = main(["--config", str(bad), "tickets", "list"])
    err = capsys.readouterr().err
    assert code == 2
    assert str(bad) in err
    assert "smtp.port" in err
    assert "smtp.max_mesage_size" in err and "unknown key" in err


def test_missing_config_says_how_to_create_one(tmp_path, capsys):
    code = main(["--config", str(tmp_path / "nope.toml"), "tickets", "list"])
    assert code == 2
    assert "supportgw init" in capsys.readouterr().err


def test_init_writes_config_and_key_then_run_accepts_mail(tmp_path):
    """What `make run` does, as a real process: init, run, send a mail, read the acknowledgement."""
    import signal
    import socket

    from tests.conftest import free_port, wait_for
    from tests.mail import send

    exe = Path(sys.executable).parent / "supportgw"
    env = dict(os.environ)
    env.pop("SUPPORTGW_CONFIG", None)
    subprocess.run([str(exe), "init"], cwd=tmp_path, check=True, env=env, capture_output=True)
    cfg = tmp_path / "supportgw.toml"
    assert cfg.exists()
    key = tmp_path / "var" / "secret.key"
    assert key.exists() and (key.stat().st_mode & 0o077) == 0
    port = free_port()
    cfg.write_text(cfg.read_text().replace("port = 2525", f"port = {port}"))
    log = open(tmp_path / "run.log", "w")
    proc = subprocess.Popen([str(exe), "run"], cwd=tmp_path, env=env, stdout=log, stderr=log)
    try:
        def listening():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return True
            except OSError:
                return False
        wait_for(listening, timeout=60, what="the listener")
        send(port, build(msgid="<run1@c>"), "alice@customer.example.com", [SUPPORT])
        sent = tmp_path / "var" / "sent" / "new"
        wait_for(lambda: sent.exists() and any(sent.iterdir()), timeout=60, what="acknowledgement in var/sent")
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        log.close()
    assert code == 0, (tmp_path / "run.log").read_text()[-2000:]


def test_run_with_its_port_taken_says_so_and_exits(tmp_path):
    """A newcomer whose port 2525 is busy gets one clear line and their prompt back, not a
    traceback and a process that never ends."""
    import socket
    import time

    exe = Path(sys.executable).parent / "supportgw"
    env = dict(os.environ)
    env.pop("SUPPORTGW_CONFIG", None)
    subprocess.run([str(exe), "init"], cwd=tmp_path, check=True, env=env, capture_output=True)
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        cfg = tmp_path / "supportgw.toml"
        cfg.write_text(cfg.read_text().replace("port = 2525", f"port = {port}"))
        started = time.monotonic()
        out = subprocess.run([str(exe), "run"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        took = time.monotonic() - started
    assert out.returncode == 2, out.stderr
    assert f"cannot listen for SMTP on 127.0.0.1:{port}" in out.stderr and "in use" in out.stderr
    assert "supportgw.toml" in out.stderr and "Traceback" not in out.stderr
    assert took < 45  # it stopped by itself (the subprocess timeout would have raised otherwise)


def test_an_impossible_port_is_a_configuration_error(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[smtp]\nport = 99999\n[outbound]\nsmtp_port = 0\n")
    assert main(["--config", str(bad), "tickets", "list"]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "smtp.port" in err and "65535" in err and "outbound.smtp_port" in err


def test_a_relative_secret_file_is_read_next_to_the_config_from_any_directory(tmp_path, capsys, monkeypatch):
    """`supportgw init` writes the key next to the config; every later command must find it there,
    wherever it is run from (it used to look in the current directory)."""
    home = tmp_path / "etc"
    home.mkdir()
    cfg = home / "gw.toml"
    cfg.write_text(f'[gateway]\ndata_dir = "data"\nsecret_key = {{ file = "keys/secret.key" }}\n'
                   f'[database]\nurl = "{fresh_database_url(tmp_path)}"\n')
    monkeypatch.chdir(tmp_path)
    assert main(["--config", str(cfg), "init"]) == 0
    assert (home / "keys" / "secret.key").exists()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    assert main(["--config", str(cfg), "tickets", "list"]) == 0, capsys.readouterr().err
    # and a secret that cannot be found names the file it was configured in
    cfg.write_text(cfg.read_text().replace('{ file = "keys/secret.key" }', '{ env = "SGW_TEST_NO_SUCH_VAR" }'))
    monkeypatch.delenv("SGW_TEST_NO_SUCH_VAR", raising=False)
    assert main(["--config", str(cfg), "tickets", "list"]) == 2
    err = capsys.readouterr().err
    assert str(cfg) in err and "gateway.secret_key" in err and "SGW_TEST_NO_SUCH_VAR" in err
