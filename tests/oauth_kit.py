"""Fixtures for OAuth 2.0 tests: the loopback authorization server, a Dovecot whose oauth2
passdb asks its introspection endpoint, and a submission server (aiosmtpd) that checks
AUTH XOAUTH2 tokens the same way.

Client `gw` (secret `gw-secret`) is the gateway's app registration; the resource
servers (Dovecot, the submission server) introspect as `dovecot` / `intro-pw`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import threading

import pytest
import requests
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from tests.conftest import free_port
from tests.dovecot import Dovecot, dovecot_or_skip, new_base
from tests.oauth_server import AuthServer

CLIENT_ID, CLIENT_SECRET = "gw", "gw-secret"
RS_ID, RS_PASSWORD = "dovecot", "intro-pw"


@pytest.fixture
def auth_server():
    srv = AuthServer(access_ttl=3600).start()
    srv.clients[CLIENT_ID] = CLIENT_SECRET
    srv.resource_servers[RS_ID] = RS_PASSWORD
    yield srv
    srv.stop()


def introspection_url(srv: AuthServer) -> str:
    return srv.url.replace("http://", f"http://{RS_ID}:{RS_PASSWORD}@") + "/introspect"


@pytest.fixture
def oauth_dovecot(auth_server):
    dovecot_or_skip()
    base = new_base()
    server = Dovecot(base, oauth_introspection_url=introspection_url(auth_server))
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def oauth_table(srv: AuthServer, **over) -> dict:
    """The `oauth` table of a mailbox or of [outbound] pointing at the loopback server."""
    table = {"provider": "generic", "client_id": CLIENT_ID, "client_secret": {"value": CLIENT_SECRET},
             "token_url": f"{srv.url}/token", "device_authorization_url": f"{srv.url}/device",
             "authorization_url": f"{srv.url}/authorize",
             "scopes": ["mail"], "refresh_margin": 1.0}
    table.update(over)
    return table


def oauth_mailbox(dovecot: Dovecot, srv: AuthServer, name: str = "helpdesk", oauth: dict | None = None,
                  **over) -> dict:
    cfg = dovecot.mailbox_config(name, **over)
    cfg.pop("password")
    cfg.update(auth="oauth2", oauth=oauth_table(srv, **(oauth or {})))
    return cfg


def sign_in(app_or_config, account: str, srv: AuthServer, username: str) -> None:
    """What `supportgw oauth login` leaves behind, by the real device flow (approved at once)."""
    from gateway.oauth import tokens as oauth, login as oauth_login

    config = getattr(app_or_config, "config", app_or_config)
    source = oauth.source_for(config, account)
    approver = threading.Thread(target=_approve_when_asked, args=(srv, username), daemon=True)
    approver.start()
    oauth_login.device_login(source, say=lambda _text: None, sleep=lambda s: threading.Event().wait(min(s, 0.2)))
    approver.join(5)


def _approve_when_asked(srv: AuthServer, username: str) -> None:
    for _ in range(100):
        codes = srv.pending_user_codes()
        if codes:
            srv.approve(codes[0], username)
            return
        threading.Event().wait(0.05)


class Submission:
    """AUTH XOAUTH2 checked at the introspection endpoint; mail accepted only when authenticated."""

    def __init__(self, srv: AuthServer) -> None:
        self.srv = srv
        self.messages: list[dict] = []
        self.logins: list[str] = []
        self.refusals = 0

    def _introspect(self, token: str) -> dict:
        return requests.post(f"{self.srv.url}/introspect", data={"token": token},
                             auth=(RS_ID, RS_PASSWORD), timeout=10).json()

    async def auth_XOAUTH2(self, server, args):
        blob = base64.b64decode(args[1]) if len(args) > 1 else await server.challenge_auth("")
        fields = dict(f.split("=", 1) for f in blob.decode().split("\x01") if "=" in f)
        user, _, token = fields.get("user", ""), None, fields.get("auth", "").removeprefix("Bearer ")
        info = await asyncio.get_running_loop().run_in_executor(None, self._introspect, token)
        if info.get("active") and info.get("username") == user:
            self.logins.append(user)
            return AuthResult(success=True, auth_data=user)
        self.refusals += 1
        # RFC 7628 §3.2.2: an error challenge, answered by an empty line, then 535
        await server.challenge_auth(json.dumps({"status": "401", "schemes": "bearer"}))
        return AuthResult(success=False, handled=False)  # aiosmtpd then answers 535

    async def handle_DATA(self, server, session, envelope):
        self.messages.append({"user": session.auth_data, "to": list(envelope.rcpt_tos),
                              "raw": envelope.original_content or envelope.content})
        return "250 OK"


@pytest.fixture
def submission(auth_server):
    handler = Submission(auth_server)
    ctl = Controller(handler, hostname="127.0.0.1", port=free_port(), auth_required=True,
                     auth_require_tls=False, auth_exclude_mechanism=["PLAIN", "LOGIN"])
    ctl.start()
    handler.port = ctl.port
    yield handler
    ctl.stop()
