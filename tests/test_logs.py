"""Structured logs: one line per event, JSON when asked, never a secret, token or message body."""

from __future__ import annotations

import io
import json
import logging

from gateway.logs import configure
from tests.conftest import fresh_database_url, make_config, wait_for
from tests.gwproc import GatewayProcess, write_run_config
from tests.mail import body_text, build, parse, send

SUPPORT = "support@support.example.test"
CUSTOMER = "wang@bigbank.example"
ALICE = "alice@support.example.com"
KEY = "test-secret-key-0123456789abcdef"


def _logger(tmp_path, fmt: str):
    cfg = make_config(tmp_path, database_url=fresh_database_url(tmp_path), log={"format": fmt},
                      gateway={"secret_key": KEY})
    out = io.StringIO()
    root = logging.getLogger()
    # an in-process `ingest` earlier in the run quiets the pipeline's per-mail lines (cli_core)
    pipeline = logging.getLogger("supportgw.pipeline")
    saved = (list(root.handlers), root.level, pipeline.level)
    pipeline.setLevel(logging.NOTSET)
    configure(cfg, stream=out)
    return out, saved


def _restore(saved):
    root = logging.getLogger()
    root.handlers[:] = saved[0]
    logging.getLogger("supportgw.pipeline").setLevel(saved[2])
    root.setLevel(saved[1])


def test_json_lines_carry_the_extra_fields(tmp_path):
    out, saved = _logger(tmp_path, "json")
    try:
        logging.getLogger("supportgw.pipeline").info(
            "mail in: %s", "smtp", extra={"ticket": "TS-1", "message_id": "<m1@x>", "source": "smtp",
                                          "handler": "customer", "outcome": "created"})
    finally:
        _restore(saved)
    [line] = out.getvalue().splitlines()
    rec = json.loads(line)
    assert (rec["msg"], rec["ticket"], rec["message_id"], rec["source"], rec["handler"], rec["outcome"]) == (
        "mail in: smtp", "TS-1", "<m1@x>", "smtp", "customer", "created")
    assert rec["level"] == "INFO" and rec["logger"] == "supportgw.pipeline"


def test_text_lines_append_the_fields_and_both_hide_secrets_and_tokens(tmp_path):
    for fmt in ("text", "json"):
        out, saved = _logger(tmp_path / fmt, fmt)
        try:
            log = logging.getLogger("supportgw.test")
            log.warning("relay said %s to support+t0k3nXYZ.abc@support.example.test", f"AUTH {KEY}",
                        extra={"ticket": "TS-2"})
            try:
                raise RuntimeError(f"connect failed with key {KEY}")
            except RuntimeError:
                log.exception("boom")
        finally:
            _restore(saved)
        text = out.getvalue()
        assert KEY not in text and "t0k3nXYZ" not in text, text
        assert "support+[token]@support.example.test" in text and "[secret]" in text
        if fmt == "text":
            assert "ticket=TS-2" in text
        else:
            assert all(json.loads(line) for line in text.splitlines() if line.startswith("{"))


def test_a_whole_run_logs_json_and_no_secret_token_or_body(tmp_path, relay):
    """`supportgw run` with its worker process, customer and engineer mail over SMTP."""
    cfg, port = write_run_config(tmp_path, fresh_database_url(tmp_path), relay.port, log={"format": "json"})
    gw = GatewayProcess(cfg, port, tmp_path / "gw.log")
    bodies = ["The nightly batch fails with code 7 zebra-quartz.", "Please rerun it with flag kumquat-omega."]
    gw.start()
    try:
        def mail_to(rcpt, text=""):
            found = [parse(m["raw"]) for m in list(relay.messages) if rcpt in m["to"]]
            return [m for m in found if text in body_text(m)]

        send(port, build(frm=CUSTOMER, name="Wang Customer", subject="Batch job fails", body=bodies[0] + "\n"),
             CUSTOMER, [SUPPORT])
        [alice_mail] = wait_for(lambda: mail_to(ALICE), timeout=60, what="notification to alice")
        reply_addr = alice_mail["Reply-To"].addresses[0].addr_spec
        token = reply_addr.split("+", 1)[1].split("@")[0]
        send(port, build(frm=ALICE, name="Alice Wang", to=reply_addr, subject="Re: Batch job fails",
                         body=bodies[1] + "\n", in_reply_to=alice_mail["Message-ID"]), ALICE, [reply_addr])
        wait_for(lambda: mail_to(CUSTOMER, "kumquat-omega"), timeout=60, what="the answer relayed")
    finally:
        assert gw.terminate(30) == 0
    log = gw.log.read_text()
    lines = [line for line in log.splitlines() if line.strip() and not line.startswith("=====")]
    assert len(lines) >= 3, log
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert any(r["msg"].startswith("SMTP listening") for r in records)
    # the per-message lines carry their facts as fields (where the gateway logs them)
    for r in records:
        if r["msg"].startswith("mail in:"):
            assert r["source"] == "smtp" and r["message_id"] and r["outcome"], r
        if r["msg"].startswith("mail out:"):
            assert r["message_id"] and r["outcome"] == "sent", r
    for secret in [KEY, token, *bodies, *(b.split()[-1].rstrip(".") for b in bodies)]:
        assert secret not in log, f"{secret!r} is in the log"
