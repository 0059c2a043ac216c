"""A small but genuine OAuth 2.0 authorization server on a loopback port, for tests.

Token endpoint (RFC 6749 §3.2) with the authorization_code (PKCE S256, RFC 7636),
refresh_token, client_credentials and device_code (RFC 8628 §3.4) grants, an
authorization endpoint whose "person" is whoever the test names in `sign_in_as`,
a device authorization endpoint (RFC 8628 §3.1) and a token introspection endpoint (RFC 7662) that Dovecot's oauth2 passdb and the
test submission server ask. Refresh tokens rotate on every use (the old one is then
invalid, as many providers do), so two gateways that both spent one would be seen.
Clients authenticate with client_secret_post or HTTP Basic; public clients (no
secret) only by client_id; introspection callers (resource servers) by HTTP Basic.

Why the standard library's http.server and not Authlib's server side: Authlib's
authorization server needs a web framework integration (Flask, Django) and a model
layer for clients and tokens; four endpoints over plain dicts are shorter, and the
test controls what it must (token lifetime, revocation, a person approving a code).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlencode

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


class AuthServer:
    def __init__(self, *, access_ttl: float = 3600.0) -> None:
        self.access_ttl = access_ttl
        self.clients: dict[str, str | None] = {}  # client_id -> secret (None: public client)
        self.app_mailboxes: dict[str, str] = {}  # client_credentials: the mailbox the app may use
        self.resource_servers: dict[str, str] = {}  # introspection callers: id -> password
        self.access: dict[str, dict] = {}
        self.refresh: dict[str, dict] = {}
        self.devices: dict[str, dict] = {}
        self.codes: dict[str, dict] = {}  # authorization codes
        self.sign_in_as: str | None = None  # who signs in at the authorization endpoint
        self.grants: list[str] = []  # every grant served, in order
        self.introspections = 0
        self.lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> "AuthServer":
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True, name="oauth-server").start()
        return self

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    # ------------------------------------------------------------ what a test does

    def approve(self, user_code: str, username: str) -> None:
        """The person signs in and approves the code (what the provider's web page does)."""
        with self.lock:
            for d in self.devices.values():
                if d["user_code"] == user_code:
                    d["approved_by"] = username
                    return
        raise KeyError(user_code)

    def pending_user_codes(self) -> list[str]:
        with self.lock:
            return [d["user_code"] for d in self.devices.values() if not d["approved_by"]]

    def revoke(self, username: str, *, access_too: bool = False) -> None:
        """Consent withdrawn: the user's refresh tokens (and perhaps access tokens) stop working."""
        with self.lock:
            for rt in [k for k, v in self.refresh.items() if v["username"] == username]:
                del self.refresh[rt]
            if access_too:
                for at in [k for k, v in self.access.items() if v["username"] == username]:
                    del self.access[at]

    def issue_refresh_token(self, client_id: str, username: str, scope: str = "mail") -> str:
        rt = "rt-" + secrets.token_urlsafe(24)
        with self.lock:
            self.refresh[rt] = {"client_id": client_id, "username": username, "scope": scope}
        return rt

    # ------------------------------------------------------------ endpoints

    def _issue(self, client_id: str, username: str, scope: str, *, with_refresh: bool) -> dict:
        at = "at-" + secrets.token_urlsafe(24)
        self.access[at] = {"client_id": client_id, "username": username, "scope": scope,
                           "exp": time.time() + self.access_ttl}
        out = {"access_token": at, "token_type": "Bearer", "expires_in": int(self.access_ttl), "scope": scope}
        if with_refresh:
            rt = "rt-" + secrets.token_urlsafe(24)
            self.refresh[rt] = {"client_id": client_id, "username": username, "scope": scope}
            out["refresh_token"] = rt
        return out

    def _client(self, form: dict, headers) -> str | None:
        cid, secret = form.get("client_id"), form.get("client_secret")
        auth = headers.get("Authorization", "")
        if auth.startswith("Basic "):
            cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            cid, secret = unquote(cid), unquote(secret)
        if cid not in self.clients:
            return None
        expected = self.clients[cid]
        if expected is not None and secret != expected:
            return None
        return cid

    def token(self, form: dict, headers) -> tuple[int, dict]:
        with self.lock:
            cid = self._client(form, headers)
            if cid is None:
                return 401, {"error": "invalid_client", "error_description": "unknown client or wrong secret"}
            grant = form.get("grant_type")
            if grant == "refresh_token":
                rec = self.refresh.pop(form.get("refresh_token", ""), None)  # rotation: single use
                if rec is None or rec["client_id"] != cid:
                    return 400, {"error": "invalid_grant", "error_description": "refresh token revoked or expired"}
                self.grants.append("refresh_token")
                return 200, self._issue(cid, rec["username"], rec["scope"], with_refresh=True)
            if grant == "authorization_code":
                c = self.codes.pop(form.get("code", ""), None)  # single use
                verifier = form.get("code_verifier", "")
                challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
                if (c is None or c["client_id"] != cid or c["redirect_uri"] != form.get("redirect_uri")
                        or c["challenge"] != challenge):
                    return 400, {"error": "invalid_grant"}
                self.grants.append("authorization_code")
                return 200, self._issue(cid, c["username"], c["scope"], with_refresh=True)
            if grant == "client_credentials":
                if self.clients[cid] is None or cid not in self.app_mailboxes:
                    return 400, {"error": "unauthorized_client"}
                self.grants.append("client_credentials")
                return 200, self._issue(cid, self.app_mailboxes[cid], form.get("scope", ""), with_refresh=False)
            if grant == DEVICE_GRANT:
                d = self.devices.get(form.get("device_code", ""))
                if d is None or d["client_id"] != cid:
                    return 400, {"error": "invalid_grant"}
                if time.time() > d["exp"]:
                    return 400, {"error": "expired_token"}
                if not d["approved_by"]:
                    return 400, {"error": "authorization_pending"}
                del self.devices[form["device_code"]]
                self.grants.append("device_code")
                return 200, self._issue(cid, d["approved_by"], d["scope"], with_refresh=True)
            return 400, {"error": "unsupported_grant_type"}

    def authorize(self, query: dict) -> tuple[int, dict, str]:
        """GET /authorize: the person (sign_in_as) approves; 302 back to the client's redirect URI."""
        with self.lock:
            if query.get("client_id") not in self.clients or query.get("response_type") != "code":
                return 400, {"error": "invalid_request"}, ""
            if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
                return 400, {"error": "invalid_request", "error_description": "PKCE S256 required"}, ""
            back = {"state": query.get("state", "")}
            if self.sign_in_as is None:
                back["error"] = "access_denied"
            else:
                code = secrets.token_urlsafe(24)
                self.codes[code] = {"client_id": query["client_id"], "redirect_uri": query.get("redirect_uri", ""),
                                    "challenge": query["code_challenge"], "username": self.sign_in_as,
                                    "scope": query.get("scope", "")}
                back["code"] = code
            return 302, {}, f"{query.get('redirect_uri', '')}?{urlencode(back)}"

    def device_authorization(self, form: dict, headers) -> tuple[int, dict]:
        with self.lock:
            cid = self._client(form, headers)
            if cid is None:
                return 401, {"error": "invalid_client"}
            code = secrets.token_urlsafe(24)
            user_code = "-".join(secrets.token_hex(2).upper() for _ in range(2))
            self.devices[code] = {"client_id": cid, "scope": form.get("scope", ""), "user_code": user_code,
                                  "approved_by": None, "exp": time.time() + 600}
            return 200, {"device_code": code, "user_code": user_code, "verification_uri": f"{self.url}/device",
                         "expires_in": 600, "interval": 1}

    def introspect(self, form: dict, headers) -> tuple[int, dict]:
        auth = headers.get("Authorization", "")
        if not auth.startswith("Basic "):
            return 401, {"error": "invalid_client"}
        rs, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
        with self.lock:
            self.introspections += 1
            if self.resource_servers.get(unquote(rs)) != unquote(pw):
                return 401, {"error": "invalid_client"}
            rec = self.access.get(form.get("token", ""))
            if rec is None or rec["exp"] < time.time():
                return 200, {"active": False}
            return 200, {"active": True, "username": rec["username"], "client_id": rec["client_id"],
                         "scope": rec["scope"], "exp": int(rec["exp"]), "token_type": "Bearer"}


def _handler(server: AuthServer):
    routes = {"/token": server.token, "/device": server.device_authorization, "/introspect": server.introspect}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            path, _, qs = self.path.partition("?")
            status, payload, location = (server.authorize({k: v[0] for k, v in parse_qs(qs).items()})
                                         if path == "/authorize" else (404, {"error": "not_found"}, ""))
            data = json.dumps(payload).encode()
            self.send_response(status)
            if location:
                self.send_header("Location", location)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode()
            form = {k: v[0] for k, v in parse_qs(body).items()}
            route = routes.get(self.path.split("?")[0])
            status, payload = (404, {"error": "not_found"}) if route is None else route(form, self.headers)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):  # quiet
            pass

    return Handler
