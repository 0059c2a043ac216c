"""The sign-in behind `supportgw oauth login NAME`: obtaining the first refresh token.

`device_login` is the device-authorization flow (RFC 8628): it prints a URL and a
code, the person signs in on any device, and we poll the token endpoint. It works
on a headless server and is Microsoft's recommended flow for such tools.
`browser_login` is the authorization-code flow with PKCE (RFC 7636) and a loopback
redirect (RFC 8252 §7.3), which Google requires for the Gmail scope: it prints the
URL to open; the browser comes back to http://127.0.0.1:PORT/ on this host (directly,
or through `ssh -L PORT:127.0.0.1:PORT`), or the person pastes the address the
browser ended on. Both store the result with `TokenSource.signed_in`.
"""

from __future__ import annotations

import queue
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import requests
from authlib.integrations.base_client.errors import OAuthError

from gateway.config import ConfigError
from gateway.oauth.tokens import DEVICE_GRANT, OAuthFailure, TokenSource, authorization_url, describe, endpoints, session


def login(source: TokenSource, *, say=print, **kw) -> dict:
    flow = source.settings.flow
    if flow == "device":
        return device_login(source, say=say, **kw)
    if flow == "authorization_code":
        return browser_login(source, say=say, **kw)
    raise ConfigError(f"{source.what} uses flow = {flow!r}: it needs no sign-in")


def device_login(source: TokenSource, *, say=print, sleep=time.sleep) -> dict:
    """RFC 8628: ask for a user code, tell the person where to enter it, wait for the grant,
    store the tokens. Raises OAuthFailure when the person declines or the code expires."""
    s = source.settings
    token_url, device_url, scopes = endpoints(s)
    client = session(s, source.what, scopes)
    data = {"client_id": s.client_id, "scope": " ".join(scopes)}
    if client.client_secret:
        data["client_secret"] = client.client_secret
    try:
        resp = requests.post(device_url, data=data, timeout=s.http_timeout)
        grant = resp.json()
    except (requests.RequestException, ValueError) as exc:
        raise OAuthFailure(source.account, f"{source.what}: device authorization endpoint {device_url} "
                           f"unreachable ({type(exc).__name__})", permanent=False) from None
    if "error" in grant or "device_code" not in grant:
        raise OAuthFailure(source.account, f"{source.what}: device authorization refused "
                           f"({grant.get('error', resp.status_code)}: {grant.get('error_description', '')})",
                           permanent=True)
    say(f"To let supportgw read and send mail as {source.username}, open\n\n"
        f"    {grant.get('verification_uri') or grant.get('verification_url')}\n\n"
        f"and enter the code  {grant['user_code']}\n\n"
        f"Sign in as {source.username} (or an account allowed to use that mailbox). "
        f"Waiting up to {int(grant.get('expires_in', 900)) // 60} minutes...")
    interval = float(grant.get("interval", 5))
    deadline = source.clock() + float(grant.get("expires_in", 900))
    while True:
        sleep(interval)
        try:
            token = client.fetch_token(token_url, grant_type=DEVICE_GRANT, device_code=grant["device_code"])
            break
        except OAuthError as exc:
            if exc.error == "authorization_pending" and source.clock() < deadline:
                continue
            if exc.error == "slow_down":
                interval += 5
                continue
            raise _not_completed(source, exc) from None
        except (requests.RequestException, ValueError) as exc:
            raise _unreachable(source, exc) from None
    return source.signed_in(token, scopes)


def browser_login(source: TokenSource, *, say=print, paste=None, timeout: float = 600.0) -> dict:
    """Authorization code + PKCE. `paste`: a callable returning the address the person pastes
    (default: a line read from stdin); whichever comes first, the redirect or the paste, wins."""
    s = source.settings
    token_url, _device, scopes = endpoints(s)
    redirect_uri = f"http://127.0.0.1:{s.redirect_port}/"
    client = session(s, source.what, scopes, redirect_uri=redirect_uri, code_challenge_method="S256")
    verifier = secrets.token_urlsafe(48)
    extra = {"access_type": "offline", "prompt": "consent"} if s.provider == "google" else {}
    url, state = client.create_authorization_url(authorization_url(s), code_verifier=verifier,
                                                 login_hint=source.username, **extra)
    answers: queue.Queue[str] = queue.Queue()
    try:
        server = HTTPServer(("127.0.0.1", s.redirect_port), _redirect_handler(answers))
    except OSError as exc:
        raise ConfigError(f"{source.what}: cannot listen on 127.0.0.1:{s.redirect_port} for the sign-in "
                          f"({exc.strerror}); set 'redirect_port' to a free port") from None
    threading.Thread(target=server.serve_forever, daemon=True, name="oauth-redirect").start()
    reader = paste or (lambda: sys.stdin.readline())
    threading.Thread(target=lambda: answers.put(reader().strip()), daemon=True, name="oauth-paste").start()
    say(f"To let supportgw read and send mail as {source.username}, open this address in a browser "
        f"and sign in as {source.username}:\n\n    {url}\n\n"
        f"The browser is sent back to {redirect_uri}. If that is not this machine, either forward the "
        f"port first (ssh -L {s.redirect_port}:127.0.0.1:{s.redirect_port} this-host) or paste here the "
        "whole address the browser ended on (it shows an error page; the address is what counts):")
    try:
        try:
            response = answers.get(timeout=timeout)
        except queue.Empty:
            raise OAuthFailure(source.account, f"{source.what}: nobody signed in within "
                               f"{timeout / 60:g} minutes", permanent=True) from None
    finally:
        server.shutdown()
        server.server_close()
    if "code=" not in response:
        raise OAuthFailure(source.account, f"{source.what}: sign-in not completed (the address holds no "
                           f"code: {response.split('?')[-1][:200] or 'nothing pasted'})", permanent=True)
    try:
        token = client.fetch_token(token_url, authorization_response=response, state=state,
                                   code_verifier=verifier)
    except OAuthError as exc:
        raise _not_completed(source, exc) from None
    except (requests.RequestException, ValueError) as exc:
        raise _unreachable(source, exc) from None
    return source.signed_in(token, scopes)


def _not_completed(source: TokenSource, exc: OAuthError) -> OAuthFailure:
    """The provider refused the grant: signing in again is the only way on."""
    return OAuthFailure(source.account, f"{source.what}: sign-in not completed ({describe(exc)})", permanent=True)


def _unreachable(source: TokenSource, exc: Exception) -> OAuthFailure:
    """The token endpoint could not be asked: trying again later may work."""
    return OAuthFailure(source.account, f"{source.what}: token endpoint unreachable ({type(exc).__name__})",
                        permanent=False)


def _redirect_handler(answers: queue.Queue):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            answers.put(f"http://127.0.0.1:{self.server.server_address[1]}{self.path}")
            body = b"supportgw: sign-in received; you can close this page and return to the terminal.\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # the query string holds the code: never logged
            pass

    return Handler
