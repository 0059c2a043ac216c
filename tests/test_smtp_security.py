"""The SMTP edge under attack: never an open relay, optional STARTTLS and AUTH (really
negotiated over loopback), per-IP connection and message-rate limits, secrets never logged."""

from __future__ import annotations

import base64
import logging
import smtplib
import ssl
import subprocess

import pytest

from gateway.config import ConfigError, Secret
from gateway.runtime.runner import Gateway
from storage.models import SpoolEntry, Ticket
from tests.conftest import wait_for
from tests.hardening import SUPPORT, count, rows
from tests.mail import build

CUSTOMER = "alice@customer.example.com"

TRICKY_RECIPIENTS = [
    "victim@elsewhere.example",
    "support@support.example.test@evil.example",
    '"support@support.example.test"@evil.example',
    "@support.example.test:victim@evil.example",  # source route
    "victim%evil.example@support.example.test",  # percent hack
    "victim!evil.example@support.example.test",  # bang path
    "support@evil.example",
    "support@support.example.test.evil.example",
    "support@sub.support.example.test",
    "postmaster@support.example.test",
]


@pytest.mark.parametrize("rcpt", TRICKY_RECIPIENTS)
def test_never_an_open_relay(running, relay, rcpt):
    gw = running()
    with smtplib.SMTP("127.0.0.1", gw.smtp_port, timeout=10) as s:
        s.ehlo()
        s.mail("spammer@evil.example")
        code, _ = s.docmd(f"RCPT TO:<{rcpt}>")
        assert code >= 500, rcpt
        code, _ = s.docmd("DATA")
        assert code >= 500  # no valid recipient: no data phase at all
    assert count(gw.app, SpoolEntry) == 0
    assert relay.messages == []


def test_own_addresses_are_accepted_whatever_the_case(running):
    gw = running()
    for rcpt in ["SUPPORT@SUPPORT.EXAMPLE.TEST", "Security@Support.Example.Test", "support+t1xabc@support.example.test",
                 "bounces+7@support.example.test"]:
        with smtplib.SMTP("127.0.0.1", gw.smtp_port, timeout=10) as s:
            s.ehlo()
            s.mail(CUSTOMER)
            assert s.rcpt(rcpt)[0] == 250, rcpt


@pytest.fixture
def tls_files(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=localhost"], check=True, capture_output=True)
    return str(cert), str(key)


def _client_tls():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # our throwaway self-signed certificate
    return ctx


def test_starttls_is_offered_and_negotiated(running, tls_files):
    cert, key = tls_files
    gw = running(smtp={"tls_cert": cert, "tls_key": key})
    with smtplib.SMTP("127.0.0.1", gw.smtp_port, timeout=10) as s:
        s.ehlo()
        assert s.has_extn("starttls")
        code, _ = s.starttls(context=_client_tls())
        assert code == 220
        assert s.sock.version().startswith("TLS")
        s.ehlo()
        s.sendmail(CUSTOMER, [SUPPORT], build(subject="over TLS"))
    wait_for(lambda: rows(gw.app, Ticket), what="ticket from TLS session")
    # TLS stays optional: a plain session still delivers
    with smtplib.SMTP("127.0.0.1", gw.smtp_port, timeout=10) as s:
        s.sendmail(CUSTOMER, [SUPPORT], build(subject="plain"))
    wait_for(lambda: len(rows(gw.app, Ticket)) == 2, what="ticket from plain session")


def test_auth_required_only_over_tls_and_checked(running, tls_files, monkeypatch):
    cert, key = tls_files
    monkeypatch.setenv("SGW_TEST_SMTP_PASSWORD", "s3cret-Relay-Pw!")
    gw = running(smtp={"tls_cert": cert, "tls_key": key, "require_auth": True,
                       "auth_users": {"mx-relay": {"env": "SGW_TEST_SMTP_PASSWORD"}}})
    with smtplib.SMTP("127.0.0.1", gw.smtp_port, timeout=10) as s:
        s.ehlo()
        assert not s.has_extn("auth")  # never offered in clear text
        code, _ = s.mail(CUSTOMER)
        assert code == 530  # authentication required
    with smtplib.SMTP("127.0.0.1", gw.smtp_port, timeout=10) as s:
        s.starttls(context=_client_tls())
        s.ehlo()
        assert s.has_extn("auth")
        with pytest.raises(smtplib.SMTPAuthenticationError) as err:
            s.login("mx-relay", "wrong")
        assert err.value.smtp_code == 535
    with smtplib.SMTP("127.0.0.1", gw.smtp_port, timeout=10) as s:
        s.starttls(context=_client_tls())
        s.ehlo()
        assert s.login("mx-relay", "s3cret-Relay-Pw!")[0] == 235
        s.sendmail(CUSTOMER, [SUPPORT], build(subject="authenticated"))
        # authentication does not make us a relay
        s.mail(CUSTOMER)
        assert s.rcpt("victim@elsewhere.example")[0] == 550
    wait_for(lambda: rows(gw.app, Ticket), what="ticket after AUTH")


def test_connections_per_ip_are_capped(running):
    gw = running(smtp={"max_connections_per_ip": 3})
    held = [smtplib.SMTP("127.0.0.1", gw.smtp_port, timeout=10) for _ in range(3)]
    try:
        with pytest.raises(smtplib.SMTPConnectError) as err:
            smtplib.SMTP("127.0.0.1", gw.smtp_port, timeout=10)
        assert err.value.smtp_code == 421
    finally:
        held.pop().quit()
    # one slot free again: a new connection is served
    def one_more():
        try:
            with smtplib.SMTP("127.0.0.1", gw.smtp_port, timeout=10) as s:
                return s.noop()[0] == 250
        except smtplib.SMTPConnectError:
            return False
    wait_for(one_more, what="a freed connection slot")
    for s in held:
        s.quit()


def test_messages_per_ip_are_rate_limited_on_the_app_clock(make_app, relay, clock):
    app = make_app(clock=clock, smtp={"max_messages_per_ip_per_minute": 3},
                   outbound={"smtp_host": "127.0.0.1", "smtp_port": relay.port})
    gw = Gateway(app, imap=False, scheduler=False).start()
    try:
        with smtplib.SMTP("127.0.0.1", gw.smtp_port, timeout=10) as s:
            for i in range(3):
                s.sendmail(f"c{i}@customer.example.com", [SUPPORT], build(frm=f"c{i}@customer.example.com",
                                                                        subject=f"m{i}"))
            with pytest.raises(smtplib.SMTPSenderRefused) as err:
                s.sendmail(CUSTOMER, [SUPPORT], build(subject="one too many"))
            assert err.value.smtp_code == 451  # temporary: a real MTA queues and retries
            clock.advance(seconds=21)  # a third of a minute: one message's worth of tokens
            s.sendmail(CUSTOMER, [SUPPORT], build(subject="after the pause"))
            with pytest.raises(smtplib.SMTPSenderRefused):
                s.sendmail(CUSTOMER, [SUPPORT], build(subject="again too fast"))
        wait_for(lambda: len(rows(app, Ticket)) == 4, what="four tickets")
        assert count(app, SpoolEntry) == 4
    finally:
        gw.stop()


# --- secrets ----------------------------------------------------------------------------------

def test_secret_files_must_not_be_readable_by_others(tmp_path, monkeypatch):
    f = tmp_path / "pw"
    f.write_text("hunter2-file\n")
    f.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        Secret(file=str(f)).resolve("outbound.password")
    f.chmod(0o600)
    assert Secret(file=str(f)).resolve("outbound.password") == "hunter2-file"
    with pytest.raises(ConfigError, match="SGW_NOT_SET"):
        Secret(env="SGW_NOT_SET").resolve("imap.password")
    monkeypatch.setenv("SGW_SET", "hunter2-env")
    assert Secret(env="SGW_SET").resolve("imap.password") == "hunter2-env"


def test_secrets_never_reach_the_logs(running, relay, tls_files, monkeypatch, caplog, tmp_path):
    cert, key = tls_files
    smtp_pw, relay_pw = "smtp-Pw-7f3a91", "relay-Pw-c04e22"
    monkeypatch.setenv("SGW_TEST_SMTP_PASSWORD", smtp_pw)
    pwfile = tmp_path / "relay.pw"
    pwfile.write_text(relay_pw)
    pwfile.chmod(0o600)
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="mail.log")  # `supportgw` without -v quiets aiosmtpd; -v does not
    gw = running(smtp={"tls_cert": cert, "tls_key": key,
                       "auth_users": {"mx-relay": {"env": "SGW_TEST_SMTP_PASSWORD"}}},
                 outbound={"username": "gw", "password": {"file": str(pwfile)}, "max_attempts": 1})
    with smtplib.SMTP("127.0.0.1", gw.smtp_port, timeout=10) as s:
        s.starttls(context=_client_tls())
        s.ehlo()
        with pytest.raises(smtplib.SMTPAuthenticationError):
            s.login("mx-relay", smtp_pw + "-wrong")
        s.login("mx-relay", smtp_pw)
        s.sendmail(CUSTOMER, [SUPPORT], build(subject="log check"))
    # the relay offers no AUTH, so the dispatcher's login fails: an error path that logs
    wait_for(lambda: any("outbox" in r.name for r in caplog.records), what="dispatcher log lines")
    text = caplog.text
    assert any(r.name == "mail.log" and "AUTH" in r.getMessage() for r in caplog.records)  # logged at DEBUG
    secrets = [smtp_pw, relay_pw, smtp_pw + "-wrong", "test-secret-key-0123456789abcdef"]
    for secret in secrets:
        assert secret not in text
        for form in (f"\0mx-relay\0{secret}", f"\0gw\0{secret}", secret):
            assert base64.b64encode(form.encode()).decode() not in text
    assert rows(gw.app, Ticket)
