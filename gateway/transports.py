"""Where outbound mail goes: an SMTP relay, or a local Maildir for newcomers.

A transport either returns (the relay took the message), or raises
`TemporaryFailure` (try again later) or `PermanentFailure` (never retry).
`TransportUnavailable` is a temporary failure that is not the mail's: the relay
cannot be used at all (its OAuth token cannot be renewed), so the dispatcher keeps
the mail without counting the attempt against it.
"""

from __future__ import annotations

import mailbox
import smtplib
import socket
import ssl
from pathlib import Path

from gateway import oauth, oauth_alert


class TemporaryFailure(Exception):
    pass


class PermanentFailure(Exception):
    pass


class TransportUnavailable(TemporaryFailure):
    pass


def xoauth2(user: str, token: str):
    """smtplib authobject for AUTH XOAUTH2: the initial response, then an empty line in
    answer to the server's error challenge, after which it sends 535."""
    def respond(challenge=None):
        return f"user={user}\x01auth=Bearer {token}\x01\x01" if challenge is None else ""
    return respond


class MaildirTransport:
    """Writes each outgoing mail into a Maildir so a newcomer can read it (var/sent)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._box = mailbox.Maildir(str(path), create=True)

    def send(self, envelope_from: str, recipients: list[str], raw: bytes) -> str:
        header = f"X-Envelope-From: {envelope_from}\r\nX-Envelope-To: {', '.join(recipients)}\r\n".encode()
        key = self._box.add(header + raw)
        return f"stored in {self.path}/new/{key}"

    def close(self) -> None:
        pass


class SmtpTransport:
    def __init__(self, host: str, port: int, *, starttls: bool = False, tls: bool = False,
                 username: str = "", password: str = "", timeout: float = 30.0, local_hostname: str | None = None,
                 tokens=None, on_oauth_failure=None):
        self.host, self.port = host, port
        # tokens: a gateway.oauth.TokenSource for AUTH XOAUTH2; on_oauth_failure(message, permanent)
        self.tokens, self.on_oauth_failure = tokens, on_oauth_failure
        self.starttls, self.tls = starttls, tls
        self.username, self.password = username, password
        self.timeout = timeout
        self.local_hostname = local_hostname
        self._conn: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        ctx = ssl.create_default_context()
        if self.tls:
            conn = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=ctx,
                                    local_hostname=self.local_hostname)
        else:
            conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout, local_hostname=self.local_hostname)
            if self.starttls:
                conn.starttls(context=ctx)
        if self.tokens is not None:
            self._oauth_login(conn)
        elif self.username:
            conn.login(self.username, self.password)
        return conn

    def _oauth_login(self, conn: smtplib.SMTP) -> None:
        conn.ehlo_or_helo_if_needed()
        try:
            token = self.tokens.token()
            try:
                conn.auth("XOAUTH2", xoauth2(self.username, token), initial_response_ok=True)
            except smtplib.SMTPAuthenticationError:
                # refused before its expiry (revoked, clocks apart): one fresh token
                token = self.tokens.token(refused=token)
                conn.auth("XOAUTH2", xoauth2(self.username, token), initial_response_ok=True)
        except oauth.OAuthFailure as exc:
            conn.close()
            if self.on_oauth_failure is not None:
                self.on_oauth_failure(str(exc), exc.permanent)
            raise TransportUnavailable(str(exc)) from None
        except BaseException:
            conn.close()
            raise

    def send(self, envelope_from: str, recipients: list[str], raw: bytes) -> str:
        try:
            if self._conn is None:
                self._conn = self._connect()
            try:
                refused = self._conn.sendmail(envelope_from, recipients, raw)
            except smtplib.SMTPServerDisconnected:
                self._conn = self._connect()  # a relay may drop idle connections: reconnect once
                refused = self._conn.sendmail(envelope_from, recipients, raw)
        except smtplib.SMTPRecipientsRefused as exc:
            self.close()
            codes = [c for c, _ in exc.recipients.values()]
            detail = "; ".join(f"{r}: {c} {m.decode(errors='replace')}" for r, (c, m) in exc.recipients.items())
            if all(500 <= c < 600 for c in codes):
                raise PermanentFailure(detail) from exc
            raise TemporaryFailure(detail) from exc
        except smtplib.SMTPResponseException as exc:
            self.close()
            msg = f"{exc.smtp_code} {exc.smtp_error.decode(errors='replace') if isinstance(exc.smtp_error, bytes) else exc.smtp_error}"
            if 500 <= exc.smtp_code < 600 and exc.smtp_code not in (530, 535):  # auth trouble is fixable
                raise PermanentFailure(msg) from exc
            raise TemporaryFailure(msg) from exc
        except TransportUnavailable:
            self.close()
            raise
        except (OSError, smtplib.SMTPException, socket.timeout) as exc:
            self.close()
            raise TemporaryFailure(f"relay {self.host}:{self.port} unreachable: {exc}") from exc
        if refused:
            detail = "; ".join(f"{r}: {c}" for r, (c, _m) in refused.items())
            return f"accepted with some recipients refused: {detail}"
        return f"relayed to {self.host}:{self.port}"

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.quit()
            except Exception:
                pass
            self._conn = None


def make_transport(app):
    out = app.config.outbound
    if not out.smtp_host:
        return MaildirTransport(app.config.data_dir / "sent")
    tokens = on_failure = None
    if out.auth == "oauth2":
        tokens = oauth.source_for(app.config, "outbound")

        def on_failure(message: str, permanent: bool) -> None:
            oauth_alert.alert(app, "outbound", message, permanent=permanent)
    password = out.password.resolve("outbound.password") if out.auth == "password" else ""
    return SmtpTransport(out.smtp_host, out.smtp_port, starttls=out.starttls, tls=out.tls,
                         username=out.username, password=password,
                         timeout=out.timeout, local_hostname=app.config.gateway.domain,
                         tokens=tokens, on_oauth_failure=on_failure)
