"""OAuth 2.0 access tokens for IMAP and SMTP: provider endpoints, refresh, device sign-in.

`TokenSource(account, settings, username, store).token()` returns an access token that
is valid for at least `refresh_margin` more seconds, refreshing it first when needed
(refresh_token grant, or client_credentials for app-only access) under the token
store's lock, so several gateways never spend the same refresh token twice.
The sign-in flows behind `supportgw oauth login` are in gateway/oauth/login.py.

One generic OAuth 2.0 client does every grant: Authlib's `OAuth2Session` (maintained,
RFC 6749 client authentication and token parsing, error responses as `OAuthError`).
Microsoft's identity platform and Google speak the same protocol at their documented
endpoints, which are the defaults here; every endpoint is configurable, which is how
the tests point the gateway at a real authorization server on loopback. MSAL is not
used: it adds Microsoft's token cache and authority discovery, which cannot be pointed
at another server, for no grant we need beyond these three.

A failure is an `OAuthFailure`; `permanent` means a person must act (consent revoked,
refresh token expired, client secret wrong or expired): it is recorded in the store
with the time it first happened, for `supportgw imap check` and the administrators'
alert (gateway/oauth/alert.py). Tokens never appear in a message or a log line.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from gateway.config import ConfigError, OAuthSettings
from gateway.oauth.store import TokenStore

log = logging.getLogger("supportgw.oauth")

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# OAuth error codes that no retry will cure (RFC 6749 §5.2, RFC 8628 §3.5)
FAILURE_MEMO = 20.0
PERMANENT_ERRORS = {"invalid_grant", "invalid_client", "unauthorized_client", "invalid_scope",
                    "access_denied", "expired_token", "unsupported_grant_type"}


@dataclass(frozen=True)
class Provider:
    token_url: str
    device_authorization_url: str
    authorization_url: str
    delegated_scopes: tuple[str, ...]  # device / authorization_code: act as the signed-in account
    app_scopes: tuple[str, ...] | None  # flow = client_credentials; None: the provider has none for mail


# Documented endpoints and scopes (not verifiable on this machine: see README "OAuth 2.0").
PROVIDERS = {
    "microsoft": Provider(
        token_url="https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
        device_authorization_url="https://login.microsoftonline.com/{tenant}/oauth2/v2.0/devicecode",
        authorization_url="https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize",
        delegated_scopes=("offline_access", "https://outlook.office.com/IMAP.AccessAsUser.All",
                          "https://outlook.office.com/SMTP.Send"),
        app_scopes=("https://outlook.office365.com/.default",)),
    "google": Provider(
        token_url="https://oauth2.googleapis.com/token",
        device_authorization_url="https://oauth2.googleapis.com/device/code",
        authorization_url="https://accounts.google.com/o/oauth2/v2/auth",
        delegated_scopes=("https://mail.google.com/",),
        app_scopes=None),
}


class OAuthFailure(Exception):
    """No token for `account`; `permanent`: a person must sign in again or fix the client."""

    def __init__(self, account: str, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.account, self.permanent = account, permanent


def authorization_url(settings: OAuthSettings) -> str:
    p = PROVIDERS.get(settings.provider)
    return settings.authorization_url or (p.authorization_url.format(tenant=settings.tenant) if p else "")


def endpoints(settings: OAuthSettings) -> tuple[str, str, list[str]]:
    """(token URL, device-authorization URL, scopes) after the provider's defaults."""
    p = PROVIDERS.get(settings.provider)
    token_url = settings.token_url or (p.token_url.format(tenant=settings.tenant) if p else "")
    device_url = settings.device_authorization_url or (
        p.device_authorization_url.format(tenant=settings.tenant) if p else "")
    if settings.scopes:
        scopes = list(settings.scopes)
    elif p is None:
        scopes = []
    elif settings.flow == "client_credentials":
        if p.app_scopes is None:
            raise ConfigError(f"provider {settings.provider!r} has no client-credentials access to mail; "
                              "use flow = 'device' (see README 'OAuth 2.0')")
        scopes = list(p.app_scopes)
    else:
        scopes = list(p.delegated_scopes)
    return token_url, device_url, scopes


def session(settings: OAuthSettings, what: str, scopes: list[str], **kw) -> OAuth2Session:
    secret = settings.client_secret.resolve(f"{what} client_secret")
    return OAuth2Session(settings.client_id, secret or None,
                         token_endpoint_auth_method="client_secret_post" if secret else "none",
                         scope=" ".join(scopes) or None, default_timeout=settings.http_timeout, **kw)


def describe(exc: OAuthError) -> str:
    text = exc.error or "error"
    if exc.description:
        text += f": {exc.description}"
    return text


def expiry(token: dict, now: float) -> float:
    if token.get("expires_at"):
        return float(token["expires_at"])
    return now + float(token.get("expires_in") or 3600)


class TokenSource:
    """Access tokens for one account (an [[imap]] mailbox's name, or 'outbound')."""

    def __init__(self, account: str, settings: OAuthSettings, username: str, store: TokenStore,
                 *, clock=time.time) -> None:
        self.account, self.settings, self.username = account, settings, username
        self.store, self.clock = store, clock
        self._cached: dict = {}
        # after a failed grant, callers within FAILURE_MEMO seconds get the same failure
        # without asking the token endpoint again (an outbox batch would ask once per mail)
        self._failure: OAuthFailure | None = None
        self._failure_until = 0.0

    @property
    def what(self) -> str:
        return "outbound" if self.account == "outbound" else f"imap {self.account!r}"

    def _fresh(self, rec: dict) -> bool:
        return bool(rec.get("access_token")) and float(rec.get("expires_at", 0)) - self.settings.refresh_margin > self.clock()

    def due(self) -> bool:
        """Whether the next token() call would refresh (the poller asks between drains)."""
        return not self._fresh(self._cached)

    def token(self, *, refused: str | None = None) -> str:
        """A valid access token. `refused`: the server just rejected this one; get another."""
        rec = self._cached
        if refused is None and self._fresh(rec):
            return rec["access_token"]
        with self.store.locked(self.account):
            rec = self.store.load(self.account)
            # another process (or thread) may have refreshed while we waited for the lock
            if self._fresh(rec) and rec["access_token"] != refused:
                self._cached, self._failure = rec, None
                return rec["access_token"]
            if self._failure is not None and self.clock() < self._failure_until:
                raise self._failure
            try:
                rec = self._grant(rec)
            except OAuthFailure as exc:
                self._failure, self._failure_until = exc, self.clock() + FAILURE_MEMO
                raise
            self._cached, self._failure = rec, None
            return rec["access_token"]

    def _grant(self, rec: dict) -> dict:
        token_url, _device, scopes = endpoints(self.settings)
        now = self.clock()
        try:
            client = session(self.settings, self.what, scopes)
            if self.settings.flow == "client_credentials":
                token = client.fetch_token(token_url, grant_type="client_credentials")
            else:
                if not rec.get("refresh_token"):
                    raise OAuthFailure(self.account, f"{self.what}: nobody has signed in yet; run "
                                       f"'supportgw oauth login {self.account}'", permanent=True)
                token = client.refresh_token(token_url, refresh_token=rec["refresh_token"])
        except OAuthFailure as exc:
            self._failed(rec, str(exc), permanent=True, now=now)
        except ConfigError as exc:
            self._failed(rec, str(exc), permanent=True, now=now)
        except OAuthError as exc:
            permanent = exc.error in PERMANENT_ERRORS
            hint = (f"; sign in again with 'supportgw oauth login {self.account}'"
                    if exc.error == "invalid_grant" else
                    "; check client_id and client_secret (an expired secret needs a new one)"
                    if exc.error in ("invalid_client", "unauthorized_client") else "")
            self._failed(rec, f"{self.what}: the token endpoint refused the refresh ({describe(exc)}){hint}",
                         permanent=permanent, now=now)
        except (requests.RequestException, ValueError) as exc:
            self._failed(rec, f"{self.what}: token endpoint {token_url} unreachable ({type(exc).__name__})",
                         permanent=False, now=now)
        recovered = rec.get("failed_since")
        rec.update(access_token=token["access_token"], expires_at=expiry(token, now),
                   refresh_token=token.get("refresh_token") or rec.get("refresh_token", ""),
                   scope=token.get("scope", rec.get("scope", "")), refreshed_at=now,
                   failed_since=None, last_error="", permanent=False, alerted_at=None)
        self.store.save(self.account, rec)
        if recovered:
            log.warning("%s: OAuth token refreshed again after failing since %s", self.what,
                        time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(recovered)))
        else:
            log.info("%s: OAuth access token refreshed, valid until %s", self.what,
                     time.strftime("%H:%M:%S UTC", time.gmtime(rec["expires_at"])))
        return rec

    def _failed(self, rec: dict, message: str, *, permanent: bool, now: float):
        rec.update(failed_since=rec.get("failed_since") or now, last_error=message, permanent=permanent)
        if permanent:
            rec.pop("access_token", None)  # it will not be renewed; don't pretend it is usable
        self.store.save(self.account, rec)
        raise OAuthFailure(self.account, message, permanent=permanent)

    def status(self) -> dict:
        return self.store.load(self.account)

    def signed_in(self, token: dict, scopes: list[str]) -> dict:
        """Store what a sign-in (gateway/oauth/login.py) obtained; clears any failure."""
        if not token.get("refresh_token"):
            raise OAuthFailure(self.account, f"{self.what}: the provider gave no refresh token; add the "
                               "'offline_access' scope (Microsoft) and sign in again", permanent=True)
        now = self.clock()
        with self.store.locked(self.account):
            rec = {"account": self.username, "refresh_token": token["refresh_token"],
                   "access_token": token["access_token"], "expires_at": expiry(token, now),
                   "scope": token.get("scope", " ".join(scopes)), "signed_in_at": now, "refreshed_at": now,
                   "failed_since": None, "last_error": "", "permanent": False, "alerted_at": None}
            self.store.save(self.account, rec)
        self._cached, self._failure = rec, None
        return rec


def oauth_accounts(config) -> list[str]:
    """Every account that signs in with OAuth 2.0: [[imap]] mailboxes by name, and 'outbound'."""
    names = [mb.name for mb in config.imap if mb.auth == "oauth2"]
    return names + (["outbound"] if config.outbound.auth == "oauth2" and config.outbound.smtp_host else [])


def health(config) -> dict | None:
    """The token state of every OAuth account, for /readyz and `supportgw health` (no token in it).
    A person must act (nobody signed in, consent revoked, secret expired): a problem. A refresh
    that failed for a reason that may pass (endpoint unreachable): a warning. None: no OAuth here."""
    names = oauth_accounts(config)
    if not names:
        return None
    problems, warnings, accounts = [], [], {}
    for name in names:
        source = source_for(config, name)
        rec = source.status()
        since = rec.get("failed_since")
        state = "ok"
        if source.settings.flow != "client_credentials" and not rec.get("refresh_token"):
            state = "not signed in"
            problems.append(f"{source.what}: nobody has signed in; run 'supportgw oauth login {name}'")
        elif since and rec.get("permanent"):
            state = "failing"
            problems.append(f"{source.what}: token refresh failing since "
                            f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(float(since)))}: "
                            f"{rec.get('last_error', '')}")
        elif since:
            state = "retrying"
            warnings.append(f"{source.what}: token refresh failing for now: {rec.get('last_error', '')}")
        accounts[name] = state
    return {"ok": not problems, "accounts": accounts, **({"problem": "; ".join(problems)} if problems else {}),
            **({"warning": "; ".join(warnings)} if warnings else {})}


def source_for(config, account: str) -> TokenSource:
    """The TokenSource of an [[imap]] mailbox (by name) or of 'outbound'."""
    if account == "outbound":
        section = config.outbound
    else:
        section = next((mb for mb in config.imap if mb.name == account), None)
        if section is None:
            names = ", ".join([mb.name for mb in config.imap if mb.auth == "oauth2"] + ["outbound"])
            raise ConfigError(f"no [[imap]] mailbox named {account!r}; OAuth accounts: {names}")
    if section.auth != "oauth2" or section.oauth is None:
        raise ConfigError(f"{account!r} does not use auth = 'oauth2'")
    return TokenSource(account, section.oauth, section.username, TokenStore(config.data_dir / "oauth"))
