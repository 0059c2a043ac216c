"""Where outbound mail goes: an SMTP relay, or a local Maildir for newcomers.

A transport either returns (the relay took the message), or raises
`TemporaryFailure` (try again later) or `PermanentFailure` (never retry).

Handing a mail over and committing "sent" cannot be one atomic step, so a crash
between them sends the mail again (with the same Message-ID) after a restart.
The window is kept as small as it can be: the Maildir transport delivers each
Message-ID once whatever it is asked, and the SMTP transport calls
`on_handover()` (the dispatcher records "handing over") just before the final
"." of DATA, the moment the relay takes responsibility (RFC 5321 4.1.1.4): a
crash before it loses nothing and duplicates nothing, and only a crash between
the relay's reply and our commit can make one duplicate.

`TransportUnavailable` is a temporary failure that is not the mail's: the relay
cannot be used at all (its OAuth token cannot be renewed), so the dispatcher keeps
the mail without counting the attempt against it.
"""

from __future__ import annotations

import hashlib
import mailbox
import os
import re
import smtplib
import socket
import ssl
from pathlib import Path

from gateway.oauth import tokens as oauth, alert as oauth_alert
from parsers.quick import message_id


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
    """Writes each outgoing mail into a Maildir so a newcomer can read it (var/sent).

    Idempotent by Message-ID: the file is named after it (a hash), delivered by an
    exclusive link from tmp/, so a mail sent again after a crash is not stored twice,
    even if a reader has since moved the first copy to cur/."""

    handover_aware = True  # send() takes on_handover (gateway.runtime.dispatch)

    def __init__(self, path: Path) -> None:
        self.path = path
        self._box = mailbox.Maildir(str(path), create=True)

    def send(self, envelope_from: str, recipients: list[str], raw: bytes, on_handover=None) -> str:
        header = f"X-Envelope-From: {envelope_from}\r\nX-Envelope-To: {', '.join(recipients)}\r\n".encode()
        mid = message_id(raw)
        if not mid:  # not ours (we always write one): no identity to deliver once by
            return f"stored in {self.path}/new/{self._box.add(header + raw)}"
        key = "supportgw-" + hashlib.sha256(mid.encode("utf-8", "surrogateescape")).hexdigest()[:40]
        if self._delivered(key):
            return f"already stored in {self.path} as {key}"
        if on_handover is not None:
            on_handover()
        tmp = self.path / "tmp" / f"{key}.{os.getpid()}.{os.urandom(4).hex()}"
        with open(tmp, "wb") as fh:
            fh.write(header + raw)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, self.path / "new" / key)  # fails if a copy is there: at most one
        except FileExistsError:
            return f"already stored in {self.path} as {key}"
        finally:
            tmp.unlink(missing_ok=True)
        return f"stored in {self.path}/new/{key}"

    def _delivered(self, key: str) -> bool:
        if (self.path / "new" / key).exists():
            return True
        return any(name.split(":", 1)[0] == key for name in os.listdir(self.path / "cur"))

    def close(self) -> None:
        pass


class SmtpTransport:
    handover_aware = True
    def __init__(self, host: str, port: int, *, starttls: bool = False, tls: bool = False,
                 username: str = "", password: str = "", timeout: float = 30.0, local_hostname: str | None = None,
                 tokens=None, on_oauth_failure=None):
        self.host, self.port = host, port
        # tokens: a gateway.oauth.tokens.TokenSource for AUTH XOAUTH2; on_oauth_failure(message, permanent)
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
        # The final "." of DATA goes in its own small write, after the hand-over is recorded
        # (_sendmail): with Nagle's algorithm it waited for the ACK of the message's last
        # segment, which the relay delays (delayed ACK), about 40 ms per mail.
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
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

    def send(self, envelope_from: str, recipients: list[str], raw: bytes, on_handover=None) -> str:
        try:
            if self._conn is None:
                self._conn = self._connect()
            try:
                refused = _sendmail(self._conn, envelope_from, recipients, raw, on_handover)
            except smtplib.SMTPServerDisconnected:
                self._conn = self._connect()  # a relay may drop idle connections: reconnect once
                refused = _sendmail(self._conn, envelope_from, recipients, raw, on_handover)
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


def _sendmail(conn: smtplib.SMTP, envelope_from: str, recipients: list[str], raw: bytes, on_handover) -> dict:
    """smtplib's sendmail, with `on_handover()` called between the message and the final
    "." of DATA: after it the relay may have the mail, before it the relay surely has not."""
    conn.ehlo_or_helo_if_needed()
    options = []
    if conn.does_esmtp and conn.has_extn("size"):
        options.append(f"SIZE={len(raw)}")
    code, resp = conn.mail(envelope_from, options)
    if code != 250:
        _reset(conn)
        raise smtplib.SMTPSenderRefused(code, resp, envelope_from)
    refused = {}
    for rcpt in recipients:
        code, resp = conn.rcpt(rcpt)
        if code not in (250, 251):
            refused[rcpt] = (code, resp)
    if len(refused) == len(recipients):
        _reset(conn)
        raise smtplib.SMTPRecipientsRefused(refused)
    code, resp = conn.docmd("data")
    if code != 354:
        _reset(conn)
        raise smtplib.SMTPDataError(code, resp)
    body = _DOT_AT_LINE_START.sub(b"..", raw)  # RFC 5321 4.5.2 transparency
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    conn.send(body)
    if on_handover is not None:
        try:
            on_handover()
        except Exception as exc:
            conn.close()  # mid-DATA: the relay never saw the ".", so it discards what it has
            raise TemporaryFailure(f"could not record the hand-over, not sent: {exc}") from exc
    conn.send(b".\r\n")
    code, resp = conn.getreply()
    if code != 250:
        _reset(conn)
        raise smtplib.SMTPDataError(code, resp)
    return refused


_DOT_AT_LINE_START = re.compile(rb"(?m)^\.")


def _reset(conn: smtplib.SMTP) -> None:
    try:
        conn.rset()
    except smtplib.SMTPServerDisconnected:
        pass


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
