"""`supportgw run` says what it does with each mail: one INFO line per message processed
(source, Message-ID, sender, outcome, ticket, time) and one per mail sent, from the
default worker process (gateway.workers = 1), so a newcomer watching it sees mail happen."""

from __future__ import annotations

import re

from tests.conftest import fresh_database_url, wait_for
from tests.gwproc import GatewayProcess, deliver_like_an_mta, write_run_config
from tests.mail import build


def test_each_mail_in_and_out_is_one_line_in_the_run_output(tmp_path, relay):
    cfg, port = write_run_config(tmp_path, fresh_database_url(tmp_path), relay.port)
    assert "workers" not in cfg.read_text()  # the default: one worker process
    log = tmp_path / "gw.log"
    gw = GatewayProcess(cfg, port, log)
    gw.start()
    try:
        deliver_like_an_mta(port, "alice@bigbank.example",
                            build(frm="alice@bigbank.example", subject="Portal down", msgid="<first-mail@bigbank.example>"))
        deliver_like_an_mta(port, "", b"just text, no headers at all\r\n")
        wait_for(lambda: len(relay.messages) >= 1, timeout=60, what="the acknowledgement")
        wait_for(lambda: "mail out:" in log.read_text() and log.read_text().count("mail in:") >= 2,
                 timeout=30, what="the log lines")
    finally:
        gw.terminate(30)
    text = log.read_text()
    (created,) = [line for line in text.splitlines() if "<first-mail@bigbank.example>" in line and "mail in:" in line]
    # the ref: TS-000001 on SQLite; on PostgreSQL a batch re-run after the junk mail failed in it
    # may have used a sequence value (a sequence never rolls back), so the ref is read, not assumed
    found = re.search(r"INFO worker supportgw\.pipeline: mail in: smtp <first-mail@bigbank\.example> from "
                      r"alice@bigbank\.example: created (TS-\d{6}) in \d+ ms \[spool 1\] \[handler=customer\]$", created)
    assert found, created
    ref = found.group(1)
    (junk,) = [line for line in text.splitlines() if "mail in:" in line and "[spool 2]" in line]
    assert "WARNING" in junk and "quarantined (no usable sender" in junk, junk
    sent = [line for line in text.splitlines() if "mail out:" in line]
    assert any(re.search(r"INFO worker supportgw\.outbox: mail out: acknowledgement <[^>]+> to "
                         rf"alice@bigbank\.example for {ref}: sent in \d+ ms \[outbox \d+\]$", line)
               for line in sent), "\n".join(sent)
