"""OAuth 2.0 for IMAP, for real: `supportgw oauth login` by the device flow against a loopback
authorization server, a Dovecot whose oauth2 passdb checks every token at that server's
introspection endpoint, and the gateway's poller logging in with XOAUTH2 or OAUTHBEARER.
Expired tokens are refreshed and the mailbox drained once; a revoked consent is one alert
to the administrators at the first refused refresh, while the mail waits on the server."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.oauth import tokens as oauth
from gateway.config import ConfigError
from gateway.edges import health
from gateway.runtime.runner import Gateway
from storage.models import OutboxRow
from tests.conftest import wait_for
from tests.hardening import cli
from tests.imap_kit import inbound_by_message_id, seen_flags, write_config
from tests.mail import build
from tests.oauth_kit import CLIENT_ID, auth_server, oauth_dovecot, oauth_mailbox, sign_in  # noqa: F401

ADMIN = "it-admin@support.example.test"
ROOT_DIR = Path(__file__).resolve().parent.parent


def _mail(tag: str) -> bytes:
    return build(frm=f"{tag}@customer.example.com", subject=f"{tag}: the portal is down",
                 msgid=f"<{tag}@customer.example.com>", body=f"{tag}: nothing loads since 9:00.\n")


def _gateway(make_app, dovecot, srv, *, sign=True, **over):
    app = make_app(imap=[oauth_mailbox(dovecot, srv, **over)], gateway={"admins": [ADMIN]})
    if sign:
        sign_in(app, "helpdesk", srv, dovecot.user)
    gw = Gateway(app, smtp=False, scheduler=False).start()
    return app, gw


def _alerts(app) -> list[OutboxRow]:
    with app.db.session() as s:
        return list(s.query(OutboxRow).filter(OutboxRow.kind == "oauth_failed"))


@pytest.mark.parametrize("mechanism", ["xoauth2", "oauthbearer"])
def test_poller_logs_in_with_an_oauth_token_and_drains_the_mailbox(make_app, oauth_dovecot, auth_server,
                                                                   mechanism):
    oauth_dovecot.append(_mail("first"))
    app, gw = _gateway(make_app, oauth_dovecot, auth_server, oauth={"mechanism": mechanism})
    try:
        wait_for(lambda: inbound_by_message_id(app).get("first@customer.example.com") == 1, timeout=30,
                 what="the mail read over an OAuth login")
        wait_for(lambda: seen_flags(oauth_dovecot) == [True], timeout=10, what="\\Seen")
    finally:
        gw.stop()
    log = (oauth_dovecot.log_path).read_text()
    assert f"method={mechanism.upper()}" in log  # Dovecot says how we logged in
    assert auth_server.introspections >= 1


def test_oauth_login_by_device_flow_stores_the_token_privately_and_imap_check_uses_it(
        tmp_path, oauth_dovecot, auth_server):
    data = tmp_path / "gw-var"
    cfg = write_config(tmp_path / "gw.toml", database_url=f"sqlite:///{tmp_path}/gw.db", data_dir=data,
                       imap=[oauth_mailbox(oauth_dovecot, auth_server)])
    assert cli(cfg, "db", "upgrade").returncode == 0
    before = cli(cfg, "health")
    assert before.returncode == 1
    assert "nobody has signed in; run 'supportgw oauth login helpdesk'" in before.stdout
    env = dict(os.environ)
    env.pop("SUPPORTGW_CONFIG", None)
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "--config", str(cfg), "oauth", "login",
                             "helpdesk"], cwd=str(ROOT_DIR), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        code = wait_for(lambda: auth_server.pending_user_codes(), timeout=30, what="a device code")[0]
        auth_server.approve(code, oauth_dovecot.user)  # the administrator signs in on their laptop
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    assert code in out and f"{auth_server.url}/device" in out  # what the person is told to do
    token_file = data / "oauth" / "helpdesk.json"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(token_file.parent.stat().st_mode) == 0o700
    stored = token_file.read_text()
    [refresh] = [rt for rt in auth_server.refresh if rt in stored]
    assert refresh not in out

    checked = cli(cfg, "imap", "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "ok    mailbox 'helpdesk'" in checked.stdout and "XOAUTH2" in checked.stdout
    healthy = json.loads(cli(cfg, "health", "--json").stdout)["checks"]["oauth"]
    assert healthy == {"ok": True, "accounts": {"helpdesk": "ok"}}
    for secret in [refresh, *auth_server.access]:
        assert secret not in checked.stdout + checked.stderr


def test_expired_token_is_refreshed_and_the_session_reconnected_without_losing_or_repeating_mail(
        make_app, oauth_dovecot, auth_server):
    auth_server.access_ttl = 3  # Dovecot's introspection calls a token dead after 3 s
    oauth_dovecot.append(_mail("before"))
    app, gw = _gateway(make_app, oauth_dovecot, auth_server)
    try:
        wait_for(lambda: inbound_by_message_id(app).get("before@customer.example.com") == 1, timeout=30,
                 what="first mail")
        time.sleep(3.5)  # the token the session logged in with has expired by now
        oauth_dovecot.kick()  # the server ends the session: the poller must log in again
        oauth_dovecot.append(_mail("after"))
        wait_for(lambda: inbound_by_message_id(app).get("after@customer.example.com") == 1, timeout=60,
                 what="mail read after the reconnection")
        assert "refresh_token" in auth_server.grants
    finally:
        gw.stop()
    assert inbound_by_message_id(app) == {"before@customer.example.com": 1, "after@customer.example.com": 1}
    assert _alerts(app) == []


def test_revoked_consent_is_one_alert_at_the_first_refused_refresh_and_the_mail_waits(
        make_app, oauth_dovecot, auth_server, tmp_path):
    auth_server.access_ttl = 3
    app, gw = _gateway(make_app, oauth_dovecot, auth_server)
    try:
        wait_for(lambda: gw.pollers[0].last_error == "" and gw.pollers[0].spooled == 0
                 and oauth_dovecot.log_path.read_text().count("method=XOAUTH2") >= 1, timeout=30,
                 what="first login")
        auth_server.revoke(oauth_dovecot.user)  # consent withdrawn in the provider's console
        # while the session still sits in IDLE, the poller refreshes ahead of expiry and is refused
        alerts = wait_for(lambda: _alerts(app), timeout=30, what="the administrators' alert")
        oauth_dovecot.kick()
        oauth_dovecot.append(_mail("waiting"))
        time.sleep(4)  # several refused reconnections later...
        assert len(_alerts(app)) == 1  # ...still one alert
        assert inbound_by_message_id(app) == {}
        assert seen_flags(oauth_dovecot) == [False]  # the mail waits on the server, untouched
        [alert] = alerts
        assert alert.to == [ADMIN]
        assert "helpdesk" in alert.subject
        text = alert.draft["text"]
        assert "supportgw oauth login helpdesk" in text and "invalid_grant" in text
        record = oauth.source_for(app.config, "helpdesk").status()
        assert record["failed_since"] and record["alerted_at"]
        report = health.readiness(app)  # /readyz and `supportgw health` say it too
        assert report["checks"]["oauth"]["accounts"] == {"helpdesk": "failing"}
        assert any(p.startswith("oauth: imap 'helpdesk': token refresh failing since") and "invalid_grant" in p
                   for p in report["problems"])

        sign_in(app, "helpdesk", auth_server, oauth_dovecot.user)  # an administrator signs in again
        wait_for(lambda: inbound_by_message_id(app).get("waiting@customer.example.com") == 1, timeout=60,
                 what="the waiting mail drained after the new sign-in")
    finally:
        gw.stop()
    assert inbound_by_message_id(app) == {"waiting@customer.example.com": 1}
    assert len(_alerts(app)) == 1
    assert health.readiness(app)["checks"]["oauth"] == {"ok": True, "accounts": {"helpdesk": "ok"}}
    assert oauth.source_for(app.config, "helpdesk").status()["alerted_at"] is None  # the next failure is told


def test_imap_check_shows_a_failing_refresh(tmp_path, oauth_dovecot, auth_server):
    cfg_path = write_config(tmp_path / "gw.toml", database_url=f"sqlite:///{tmp_path}/gw.db",
                            data_dir=tmp_path / "var", imap=[oauth_mailbox(oauth_dovecot, auth_server)])
    from gateway.config import load_config

    cfg = load_config(cfg_path)
    sign_in(cfg, "helpdesk", auth_server, oauth_dovecot.user)
    source = oauth.source_for(cfg, "helpdesk")
    source.store.update("helpdesk", expires_at=0)  # the access token has run out
    auth_server.revoke(oauth_dovecot.user)
    checked = cli(cfg_path, "imap", "check")
    assert checked.returncode == 2
    assert "FAIL" in checked.stdout and "invalid_grant" in checked.stdout
    assert "FAILING since" in checked.stdout and "supportgw oauth login helpdesk" in checked.stdout


def _token_in_process(args):
    cfg_path, _n = args
    from gateway.config import load_config

    return oauth.source_for(load_config(cfg_path), "helpdesk").token()


def test_gateways_sharing_the_data_dir_spend_a_rotating_refresh_token_once(tmp_path, oauth_dovecot,
                                                                          auth_server):
    cfg_path = write_config(tmp_path / "gw.toml", database_url=f"sqlite:///{tmp_path}/gw.db",
                            data_dir=tmp_path / "var", imap=[oauth_mailbox(oauth_dovecot, auth_server)])
    from gateway.config import load_config

    sign_in(load_config(cfg_path), "helpdesk", auth_server, oauth_dovecot.user)
    oauth.source_for(load_config(cfg_path), "helpdesk").store.update("helpdesk", expires_at=0)
    before = len(auth_server.grants)
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        tokens = pool.map(_token_in_process, [(cfg_path, i) for i in range(4)])
    # one process refreshed (the old refresh token is void after it); the others read its result
    assert auth_server.grants[before:] == ["refresh_token"]
    assert len(set(tokens)) == 1 and tokens[0] in auth_server.access


def test_client_credentials_needs_no_sign_in(make_app, oauth_dovecot, auth_server):
    auth_server.app_mailboxes[CLIENT_ID] = oauth_dovecot.user  # the app was granted this mailbox
    oauth_dovecot.append(_mail("apponly"))
    app, gw = _gateway(make_app, oauth_dovecot, auth_server, sign=False,
                       oauth={"flow": "client_credentials", "device_authorization_url": ""})
    try:
        wait_for(lambda: inbound_by_message_id(app).get("apponly@customer.example.com") == 1, timeout=30,
                 what="mail read with an app-only token")
    finally:
        gw.stop()
    assert auth_server.grants == ["client_credentials"]
    assert not oauth.source_for(app.config, "helpdesk").status().get("refresh_token")  # nothing to revoke


def test_oauth2_without_its_table_is_a_configuration_error(tmp_path, auth_server):
    from gateway.config import parse_config

    with pytest.raises(ConfigError, match=r"auth = 'oauth2' needs an \[imap.oauth\] table"):
        parse_config({"imap": [{"name": "m", "host": "127.0.0.1", "security": "plain", "username": "u@x",
                                "auth": "oauth2"}]})
    with pytest.raises(ConfigError, match="needs 'token_url'"):
        parse_config({"imap": [{"name": "m", "host": "127.0.0.1", "security": "plain", "username": "u@x",
                                "auth": "oauth2", "oauth": {"client_id": "c"}}]})
    cfg = parse_config({"imap": [{"name": "m", "host": "127.0.0.1", "security": "plain", "username": "u@x",
                                  "auth": "oauth2", "oauth": {"provider": "google", "client_id": "c",
                                                              "flow": "client_credentials",
                                                              "client_secret": "s"}}]})
    with pytest.raises(ConfigError, match="no client-credentials access"):
        oauth.endpoints(cfg.imap[0].oauth)
    google = parse_config({"imap": [{"name": "m", "host": "imap.gmail.com", "username": "u@x", "auth": "oauth2",
                                     "oauth": {"provider": "google", "client_id": "c"}}]}).imap[0].oauth
    microsoft = parse_config({"imap": [{"name": "m", "host": "outlook.office365.com", "username": "u@x",
                                        "auth": "oauth2", "oauth": {"provider": "microsoft", "client_id": "c",
                                                                    "tenant": "contoso.com"}}]}).imap[0].oauth
    assert google.flow == "authorization_code" and microsoft.flow == "device"
    assert oauth.endpoints(microsoft)[0] == "https://login.microsoftonline.com/contoso.com/oauth2/v2.0/token"
    assert "offline_access" in oauth.endpoints(microsoft)[2]


@pytest.mark.parametrize("answer", ["redirect", "paste"])
def test_browser_sign_in_with_pkce_then_the_poller_uses_the_token(make_app, oauth_dovecot, auth_server, answer):
    """Google's way (its device flow does not allow the Gmail scope): authorization code + PKCE,
    the browser sent back to a loopback port, or the address it ended on pasted in the terminal."""
    import threading

    import requests

    from gateway.oauth import login as oauth_login
    from tests.conftest import free_port

    port = free_port()
    app = make_app(imap=[oauth_mailbox(oauth_dovecot, auth_server,
                                       oauth={"flow": "authorization_code", "redirect_port": port})])
    source = oauth.source_for(app.config, "helpdesk")
    said, pasted, result = [], threading.Event(), {}
    paste_box = []

    def paste():
        pasted.wait(30)
        return paste_box[0] if paste_box else ""

    t = threading.Thread(target=lambda: result.update(oauth_login.browser_login(source, say=said.append,
                                                                                 paste=paste, timeout=30)))
    t.start()
    url = wait_for(lambda: [w for line in said for w in line.split() if w.startswith(auth_server.url)],
                   what="the sign-in address")[0]
    auth_server.sign_in_as = oauth_dovecot.user  # the person signs in in their browser
    if answer == "redirect":
        assert requests.get(url, timeout=10).status_code == 200  # back at our loopback listener
    else:
        hop = requests.get(url, timeout=10, allow_redirects=False)
        paste_box.append(hop.headers["Location"])  # the address the browser ended on
        pasted.set()
    t.join(30)
    assert result.get("refresh_token") and auth_server.grants == ["authorization_code"]
    oauth_dovecot.append(_mail("browser"))
    gw = Gateway(app, smtp=False, scheduler=False).start()
    try:
        wait_for(lambda: inbound_by_message_id(app).get("browser@customer.example.com") == 1, timeout=30,
                 what="mail read with the browser-obtained token")
    finally:
        pasted.set()
        gw.stop()


def test_a_public_client_without_a_secret_signs_in_and_refreshes(make_app, oauth_dovecot, auth_server):
    """Microsoft's device flow needs no client secret ("Allow public client flows")."""
    auth_server.clients["public-app"] = None
    app = make_app(imap=[oauth_mailbox(oauth_dovecot, auth_server,
                                       oauth={"client_id": "public-app", "client_secret": {"value": ""}})])
    sign_in(app, "helpdesk", auth_server, oauth_dovecot.user)
    source = oauth.source_for(app.config, "helpdesk")
    source.store.update("helpdesk", expires_at=0)
    assert source.token() in auth_server.access
    assert auth_server.grants == ["device_code", "refresh_token"]


def test_oauth_status_and_health_agree_on_a_refresh_that_may_pass_and_one_a_person_must_fix(
        tmp_path, oauth_dovecot, auth_server):
    cfg_path = write_config(tmp_path / "gw.toml", database_url=f"sqlite:///{tmp_path}/gw.db",
                            data_dir=tmp_path / "var", imap=[oauth_mailbox(oauth_dovecot, auth_server)])
    from gateway.config import load_config

    cfg = load_config(cfg_path)
    source = oauth.source_for(cfg, "helpdesk")
    sign_in(cfg, "helpdesk", auth_server, oauth_dovecot.user)
    source.store.update("helpdesk", expires_at=0)  # the access token has run out
    auth_server.revoke(oauth_dovecot.user)  # and consent was withdrawn: only a new sign-in helps
    with pytest.raises(oauth.OAuthFailure):
        source.token()
    status = cli(cfg_path, "oauth", "status")
    assert status.returncode == 2 and "FAIL  helpdesk" in status.stdout and "FAILING since" in status.stdout
    report = json.loads(cli(cfg_path, "health", "--json").stdout)["checks"]["oauth"]
    assert not report["ok"] and report["accounts"] == {"helpdesk": "failing"}

    sign_in(cfg, "helpdesk", auth_server, oauth_dovecot.user)  # an administrator signs in again
    source = oauth.source_for(cfg, "helpdesk")  # (a process started since: no failure remembered)
    source.store.update("helpdesk", expires_at=0)
    auth_server.stop()  # and now the provider is out of reach: a failure that may pass
    with pytest.raises(oauth.OAuthFailure):
        source.token()
    status = cli(cfg_path, "oauth", "status")
    assert status.returncode == 0, status.stdout + status.stderr  # as health: a warning, not a failure
    assert "WARN  helpdesk" in status.stdout and "refresh failing for now" in status.stdout
    assert "FAILING" not in status.stdout
    report = json.loads(cli(cfg_path, "health", "--json").stdout)["checks"]["oauth"]
    assert report["ok"] and report["accounts"] == {"helpdesk": "retrying"}
