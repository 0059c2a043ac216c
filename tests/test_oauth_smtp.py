"""OAuth 2.0 for outbound SMTP, for real: the outbox dispatcher authenticates with AUTH XOAUTH2 at
a submission server (aiosmtpd) that checks each token at the loopback authorization server's
introspection endpoint, refreshes an expired or refused token, and keeps every mail (without
using up its attempts) while the relay's consent is revoked."""

from __future__ import annotations

import time

import pytest

from gateway.oauth import tokens as oauth
from gateway import outbox
from gateway.runtime.dispatch import dispatch_due
from storage.models import OutboxAttempt, OutboxRow
from templates import Rendered
from tests.oauth_kit import auth_server, oauth_dovecot, oauth_table, sign_in, submission  # noqa: F401

# the submission server asks for AUTH without TLS: it listens on loopback only
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

SENDER = "support@support.example.test"
ADMIN = "it-admin@support.example.test"


def _app(make_app, srv, relay):
    return make_app(gateway={"admins": [ADMIN]},
                    outbound={"smtp_host": "127.0.0.1", "smtp_port": relay.port, "auth": "oauth2",
                              "username": SENDER, "oauth": oauth_table(srv)})


def _queue(app, tag: str) -> None:
    with app.db.session() as s:
        outbox.queue(app, s, kind="test", ticket=None, rendered=Rendered(f"{tag}", f"{tag} body\n", ""),
                     to=[f"{tag}@customer.example.com"])


def _rows(app, kind="test") -> list[OutboxRow]:
    with app.db.session() as s:
        rows = list(s.query(OutboxRow).filter(OutboxRow.kind == kind).order_by(OutboxRow.id))
        s.expunge_all()
        return rows


def test_outbound_mail_is_sent_with_xoauth2_and_an_expired_token_is_refreshed(make_app, auth_server,
                                                                             submission):
    auth_server.access_ttl = 3
    app = _app(make_app, auth_server, submission)
    sign_in(app, "outbound", auth_server, SENDER)
    _queue(app, "one")
    assert dispatch_due(app) == 1
    refreshes = auth_server.grants.count("refresh_token")  # 0, or 1 on a slow machine
    time.sleep(3.5)  # the token is dead at the authorization server now
    _queue(app, "two")
    assert dispatch_due(app) == 1
    assert [m["to"] for m in submission.messages] == [["one@customer.example.com"], ["two@customer.example.com"]]
    assert submission.logins == [SENDER, SENDER] and submission.refusals == 0
    assert auth_server.grants.count("refresh_token") == refreshes + 1  # renewed before use, not refused
    assert [r.status for r in _rows(app)] == ["sent", "sent"]


def test_a_token_the_relay_refuses_before_its_expiry_is_replaced_once(make_app, auth_server, submission):
    app = _app(make_app, auth_server, submission)
    sign_in(app, "outbound", auth_server, SENDER)
    auth_server.access.clear()  # the provider invalidated the access token early (password reset...)
    _queue(app, "early")
    assert dispatch_due(app) == 1
    assert submission.refusals == 1 and submission.logins == [SENDER]
    assert auth_server.grants[-1] == "refresh_token"


def test_revoked_relay_consent_keeps_the_mail_without_using_its_attempts_and_tells_the_admins(
        make_app, auth_server, submission):
    auth_server.access_ttl = 2
    app = _app(make_app, auth_server, submission)
    sign_in(app, "outbound", auth_server, SENDER)
    auth_server.revoke(SENDER, access_too=True)
    _queue(app, "kept")
    for _ in range(3):
        assert dispatch_due(app) == 0
        with app.db.session() as s:
            s.query(OutboxRow).update({OutboxRow.next_attempt_at: app.now()})  # due again at once
    [row] = _rows(app)
    assert row.status == "pending" and row.attempts == 0  # max_attempts is not being used up
    assert "invalid_grant" in row.last_error
    with app.db.session() as s:
        assert s.query(OutboxAttempt).filter(OutboxAttempt.outbox_id == row.id).count() == 3
    [alert] = _rows(app, "oauth_failed")
    assert alert.to == [ADMIN] and "outgoing mail waits" in alert.draft["text"]
    assert submission.messages == []

    sign_in(app, "outbound", auth_server, SENDER)  # an administrator signs in again
    assert dispatch_due(app) == 2  # the kept mail, and the (now late) alert
    assert sorted(m["to"][0] for m in submission.messages) == [ADMIN, "kept@customer.example.com"]
    assert oauth.source_for(app.config, "outbound").status()["failed_since"] is None


def test_supportgw_run_drains_an_oauth_mailbox_and_answers_through_an_oauth_relay(
        tmp_path, auth_server, submission, oauth_dovecot):
    """As deployed: `supportgw run` (gateway.workers = 1), the poller in the edge process and the
    outbox dispatcher in the worker process, each refreshing from the same token store."""
    from gateway.config import load_config
    from tests.conftest import wait_for
    from tests.gwproc import GatewayProcess, write_run_config
    from tests.imap_kit import seen_flags
    from tests.mail import build, toml_value
    from tests.oauth_kit import oauth_mailbox

    auth_server.access_ttl = 4  # both processes refresh while the test runs
    cfg_path, port = write_run_config(
        tmp_path, f"sqlite:///{tmp_path}/gw.db", submission.port, gateway={"admins": [ADMIN]},
        outbound={"auth": "oauth2", "username": SENDER, "oauth": oauth_table(auth_server)})
    mailbox = oauth_mailbox(oauth_dovecot, auth_server)
    with open(cfg_path, "a", encoding="utf-8") as f:
        f.write("\n[[imap]]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in mailbox.items()))
    cfg = load_config(cfg_path)
    sign_in(cfg, "helpdesk", auth_server, oauth_dovecot.user)
    sign_in(cfg, "outbound", auth_server, SENDER)
    oauth_dovecot.append(build(frm="li.wei@bigbank.example", subject="Portal down", msgid="<run-1@bigbank.example>"))
    gw = GatewayProcess(cfg_path, port, tmp_path / "gw.log")
    gw.start()
    try:
        acks = wait_for(lambda: [m for m in submission.messages if "li.wei@bigbank.example" in m["to"]],
                        timeout=60, what="the acknowledgement through the XOAUTH2 relay")
        assert seen_flags(oauth_dovecot) == [True]
        time.sleep(5)  # past the access tokens' lifetime: both are renewed, nothing breaks
        oauth_dovecot.append(build(frm="bob@other.example", subject="Printer", msgid="<run-2@other.example>"))
        wait_for(lambda: [m for m in submission.messages if "bob@other.example" in m["to"]], timeout=60,
                 what="the second acknowledgement after the tokens were renewed")
    finally:
        gw.stop_quietly()
    assert len(acks) == 1 and set(submission.logins) == {SENDER}
    assert auth_server.grants.count("refresh_token") >= 2
    log = (tmp_path / "gw.log").read_text()
    for secret in [*auth_server.access, *auth_server.refresh]:
        assert secret not in log  # never in a log


def test_app_only_access_sends_without_anyone_signing_in(make_app, auth_server, submission):
    """flow = "client_credentials" on [outbound] (an app registration granted the mailbox, as
    Microsoft 365 allows): no `oauth login`, no refresh token kept, the mail goes out."""
    auth_server.app_mailboxes[oauth_table(auth_server)["client_id"]] = SENDER
    app = make_app(outbound={"smtp_host": "127.0.0.1", "smtp_port": submission.port, "auth": "oauth2",
                             "username": SENDER,
                             "oauth": oauth_table(auth_server, flow="client_credentials", device_authorization_url="")})
    _queue(app, "apponly")
    assert dispatch_due(app) == 1
    assert [m["to"] for m in submission.messages] == [["apponly@customer.example.com"]]
    assert submission.logins == [SENDER] and auth_server.grants == ["client_credentials"]
    assert not oauth.source_for(app.config, "outbound").status().get("refresh_token")  # nothing to revoke
    from gateway.edges import health

    assert health.readiness(app)["checks"]["oauth"] == {"ok": True, "accounts": {"outbound": "ok"}}
