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

from parsers.quick import message_id


class TemporaryFailure(Exception):
    pass


class PermanentFailure(Exception):
    pass


class MaildirTransport:
    """Writes each outgoing mail into a Maildir so a newcomer can read it (var/sent).

    Idempotent by Message-ID: the file is named after it (a hash), delivered by an
    exclusive link from tmp/, so a mail sent again after a crash is not stored twice,
    even if a reader has since moved the first copy to cur/."""

    handover_aware = True  # send() takes on_handover (gateway.dispatch)

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
                 username: str = "", password: str = "", timeout: float = 30.0, local_hostname: str | None = None):
        self.host, self.port = host, port
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
        if self.username:
            conn.login(self.username, self.password)
        return conn

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
    return SmtpTransport(out.smtp_host, out.smtp_port, starttls=out.starttls, tls=out.tls,
                         username=out.username, password=out.password.resolve("outbound.password"),
                         timeout=out.timeout, local_hostname=app.config.gateway.domain)
