"""Where outbound mail goes: an SMTP relay, or a local Maildir for newcomers.

A transport either returns (the relay took the message), or raises
`TemporaryFailure` (try again later) or `PermanentFailure` (never retry).
"""

from __future__ import annotations

import mailbox
import smtplib
import socket
import ssl
from pathlib import Path


class TemporaryFailure(Exception):
    pass


class PermanentFailure(Exception):
    pass


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
    return SmtpTransport(out.smtp_host, out.smtp_port, starttls=out.starttls, tls=out.tls,
                         username=out.username, password=out.password.resolve("outbound.password"),
                         timeout=out.timeout, local_hostname=app.config.gateway.domain)
