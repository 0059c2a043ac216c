"""Opening an IMAP session for one configured mailbox, and naming what went wrong.

`connect(mailbox)` returns a logged-in `IMAPClient` (implicit TLS, STARTTLS or
plain on loopback), logged in with the password or, for `auth = "oauth2"`, with
SASL XOAUTH2 or OAUTHBEARER and a token from `gateway.oauth.tokens`. Failures come out as
`ImapProblem` with a sentence for the operator: what failed and what to change.
No ticket logic lives here.
"""

from __future__ import annotations

import imaplib
import socket
import ssl

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from gateway.config import ConfigError, ImapMailbox
from gateway.oauth.tokens import OAuthFailure, TokenSource


class ImapProblem(Exception):
    """A failure worth one clear log line; `kind` groups them (login, network, server, config)."""

    def __init__(self, kind: str, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.kind = kind
        self.permanent = permanent  # kind 'oauth': a person must sign in again or fix the client


# What can go wrong on the wire, beyond our own ImapProblem. imaplib's abort is
# what a dropped connection (and imapclient bug #519 in idle_check) raises.
NETWORK_ERRORS = (OSError, ssl.SSLError, imaplib.IMAP4.abort, IMAPClient.AbortError, EOFError)
SERVER_ERRORS = (IMAPClientError, imaplib.IMAP4.error)


def where(mb: ImapMailbox) -> str:
    return f"mailbox {mb.name!r} ({mb.username} at {mb.host}:{mb.port}, {mb.security})"


def password_hint(mb: ImapMailbox) -> str:
    p = mb.password
    if p.env:
        return f"the password comes from environment variable {p.env}"
    if p.file:
        return f"the password comes from file {p.file}"
    return "the password is given inline in the config"


def connect(mb: ImapMailbox, tokens: TokenSource | None = None) -> IMAPClient:
    """Connect and log in; raises ImapProblem with what to fix. `tokens`: the mailbox's
    TokenSource when it uses auth = 'oauth2' (kept by the caller across connections)."""
    try:
        password = mb.password.resolve(f"imap {mb.name!r} password") if mb.auth == "password" else ""
    except ConfigError as exc:
        raise ImapProblem("config", str(exc)) from None
    try:
        if mb.security == "tls":
            client = IMAPClient(mb.host, port=mb.port, ssl=True, ssl_context=ssl.create_default_context(),
                                timeout=mb.timeout)
        else:
            client = IMAPClient(mb.host, port=mb.port, ssl=False, timeout=mb.timeout)
    except socket.gaierror as exc:
        raise ImapProblem("network", f"{where(mb)}: cannot resolve host {mb.host!r} ({exc}); check 'host'") from None
    except ssl.SSLError as exc:
        raise ImapProblem("network", f"{where(mb)}: TLS handshake failed ({exc}); check 'security' and 'port' "
                                     "(993 is usually implicit TLS, 143 STARTTLS)") from None
    except ConnectionRefusedError:
        raise ImapProblem("network", f"{where(mb)}: connection refused; is the server up and is 'port' right?") from None
    except NETWORK_ERRORS as exc:
        raise ImapProblem("network", f"{where(mb)}: cannot connect: {exc}") from None
    try:
        if mb.security == "starttls":
            try:
                client.starttls(ssl.create_default_context())
            except ssl.SSLError as exc:
                raise ImapProblem("network", f"{where(mb)}: STARTTLS failed ({exc}); check 'security'") from None
            except SERVER_ERRORS as exc:
                raise ImapProblem("config", f"{where(mb)}: server refused STARTTLS ({_text(exc)}); "
                                            "use security = 'tls' or check the port") from None
        if mb.auth == "oauth2":
            _oauth_login(client, mb, tokens)
            return client
        try:
            client.login(mb.username, password)
        except LoginError as exc:
            raise ImapProblem("login", f"{where(mb)}: login refused ({_text(exc)}); check 'username' and the "
                                       f"password ({password_hint(mb)}), and that IMAP access is enabled for the "
                                       "account (some providers need an app password)") from None
        return client
    except BaseException:
        _close(client)
        raise


def _oauth_login(client: IMAPClient, mb: ImapMailbox, tokens: TokenSource | None) -> None:
    if tokens is None:
        raise ImapProblem("config", f"{where(mb)}: auth = 'oauth2' but no token source was given")
    login = client.oauth2_login if mb.oauth.mechanism == "xoauth2" else client.oauthbearer_login
    try:
        token = tokens.token()
        try:
            login(mb.username, token)
        except LoginError:
            # refused before its expiry (revoked, or the server's clock is ahead): one fresh
            # token; a refusal of that one is not the token's fault
            token = tokens.token(refused=token)
            login(mb.username, token)
    except OAuthFailure as exc:
        raise ImapProblem("oauth", f"{where(mb)}: {exc}", permanent=exc.permanent) from None
    except LoginError as exc:
        raise ImapProblem("login", f"{where(mb)}: {mb.oauth.mechanism.upper()} login refused with a fresh token "
                                   f"({_text(exc)}); check 'username' (the mailbox address) and that the signed-in "
                                   "account or app may open this mailbox by IMAP") from None


def select(client: IMAPClient, mb: ImapMailbox) -> dict:
    """SELECT the configured folder; a missing folder is an ImapProblem naming the folders there are."""
    try:
        return client.select_folder(mb.folder)
    except SERVER_ERRORS as exc:
        if isinstance(exc, NETWORK_ERRORS):
            raise
        try:
            names = ", ".join(sorted(f[2] for f in client.list_folders()))
        except Exception:
            names = "?"
        raise ImapProblem("config", f"{where(mb)}: cannot select folder {mb.folder!r} ({_text(exc)}); "
                                    f"folders on the server: {names}") from None


def close(client: IMAPClient | None, *, graceful: bool = True) -> None:
    """LOGOUT, or with graceful=False just drop the socket: after a failure the session may be
    mid-IDLE or half-read, and a LOGOUT would wait out the whole timeout for a reply."""
    _close(client, graceful)


def _close(client, graceful: bool = True) -> None:
    if client is None:
        return
    if graceful:
        try:
            client.logout()
            return
        except Exception:
            pass
    try:
        client.shutdown()
    except Exception:
        pass


def _text(exc: Exception) -> str:
    s = str(exc)
    if s.startswith("b'") or s.startswith('b"'):
        s = s[2:-1]
    return s.strip() or type(exc).__name__
