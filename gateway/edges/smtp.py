"""The SMTP edge (aiosmtpd): bytes in for our own addresses, nothing else.

Accepts only configured support addresses and their signed `+token` and
bounce forms (550 otherwise: never an open relay), refuses oversized mail
(552, by aiosmtpd's size limit), and answers 250 only once the bytes are
committed to the spool (451 when storage is unavailable, so the sender retries).
Per client IP: a cap on concurrent connections (421) and a token bucket on
messages per minute (451 at MAIL FROM, so a well-behaved MTA slows down).
"""

from __future__ import annotations

import logging
import ssl
from collections import Counter

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from gateway.pipeline.process import Source
from gateway.edges.smtp_data import StreamingDATA
from storage.db import StorageUnavailable
from storage.spool import SpoolSink

log = logging.getLogger("supportgw.smtp")


class MessageRate:
    """Token bucket per client IP: `per_minute` messages, refilled continuously.

    Time comes from the app's clock, so tests drive it with the ManualClock.
    """

    def __init__(self, app, per_minute: int) -> None:
        self.app = app
        self.per_minute = per_minute
        self._buckets: dict[str, tuple[float, object]] = {}

    def allow(self, ip: str) -> bool:
        if self.per_minute <= 0:
            return True
        now = self.app.now()
        tokens, last = self._buckets.get(ip, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - last).total_seconds() * self.per_minute / 60.0)
        if tokens < 1.0:
            self._buckets[ip] = (tokens, now)
            return False
        self._buckets[ip] = (tokens - 1.0, now)
        if len(self._buckets) > 10000:  # forget idle clients rather than grow without bound
            self._buckets = {k: v for k, v in self._buckets.items() if v[0] < self.per_minute - 1}
        return True


class SupportHandler:
    def __init__(self, app, writer) -> None:
        self.app = app
        self.writer = writer
        self.rate = MessageRate(app, app.config.smtp.max_messages_per_ip_per_minute)

    def accepts(self, address: str) -> bool:
        return self.app.is_own_address(address)

    def open_sink(self) -> SpoolSink:
        """Where StreamingDATA writes a message as it arrives (gateway/edges/smtp_data.py)."""
        return SpoolSink(self.app.spool_blobs, self.app.config.gateway.spool_inline_max)

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        ip = session.peer[0] if session.peer else "?"
        if not self.rate.allow(ip):
            log.warning("rate limit: too many messages from %s", ip)
            return "451 4.7.1 Too many messages from your address, slow down and try again later"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if not self.accepts(address):
            return f"550 5.7.1 <{address}>: relay access denied, this server only accepts mail for its support addresses"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        src = Source("smtp", envelope.mail_from or "", tuple(a.lower() for a in envelope.rcpt_tos),
                     client_ip=session.peer[0] if session.peer else "", helo=session.host_name or "")
        try:
            await self.writer.spool(raw, src)
        except StorageUnavailable as exc:
            log.warning("451 to %s: %s", session.peer, exc)
            return "451 4.3.0 Temporary storage failure, please try again later"
        return "250 2.0.0 Message accepted for delivery"


class LimitedSMTP(StreamingDATA):
    """The listener's protocol: DATA streamed to the spool (StreamingDATA), and a per-IP cap
    on concurrent connections.

    The cap uses what aiosmtpd documents: SMTP is an asyncio StreamReaderProtocol, whose
    connection_made/connection_lost we extend, and `line_length_limit`. The counter and
    the cap belong to one listener (set by its factory, the Controller's documented
    override), so two gateways in one process do not share or overwrite each other's limits.
    """

    active: Counter = Counter()
    max_per_ip = 20
    # The stream reader's buffer limit. DATA is read in slices of this size
    # (gateway/edges/smtp_data.py); command lines keep aiosmtpd's own 512-byte check.
    line_length_limit = 64 * 1024

    def connection_made(self, transport):
        peer = transport.get_extra_info("peername")
        self._client_ip = peer[0] if peer else "?"
        self.active[self._client_ip] += 1
        super().connection_made(transport)
        if self.active[self._client_ip] > self.max_per_ip:
            log.warning("too many connections from %s", self._client_ip)
            transport.write(b"421 4.7.0 Too many connections from your address, try again later\r\n")
            transport.close()

    def connection_lost(self, error):
        self.active[self._client_ip] -= 1
        if self.active[self._client_ip] <= 0:
            del self.active[self._client_ip]
        super().connection_lost(error)


class _Controller(Controller):
    def __init__(self, *a, max_per_ip: int = 20, **kw):
        self._max_per_ip = max_per_ip
        self._active: Counter = Counter()
        super().__init__(*a, **kw)

    def factory(self):
        smtp = LimitedSMTP(self.handler, **self.SMTP_kwargs)
        smtp.active, smtp.max_per_ip = self._active, self._max_per_ip
        return smtp


def _authenticator(users: dict[str, str]):
    def check(server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword):
            user = auth_data.login.decode(errors="replace")
            pw = auth_data.password.decode(errors="replace")
            if user in users and users[user] == pw:
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    return check


def start_listener(app, writer, *, host: str | None = None, port: int | None = None) -> Controller:
    cfg = app.config.smtp
    kw = dict(data_size_limit=cfg.max_message_size, enable_SMTPUTF8=True, ident="supportgw ESMTP")
    if cfg.tls_cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(app.config.path(cfg.tls_cert)), str(app.config.path(cfg.tls_key)))
        kw["tls_context"] = ctx
    if cfg.auth_users:
        users = {u: s.resolve(f"smtp.auth_users.{u}") for u, s in cfg.auth_users.items()}
        kw["authenticator"] = _authenticator(users)
        kw["auth_required"] = cfg.require_auth
        kw["auth_require_tls"] = bool(cfg.tls_cert)
    ctl = _Controller(SupportHandler(app, writer), hostname=host or cfg.host, port=port if port is not None else cfg.port,
                      max_per_ip=cfg.max_connections_per_ip, ready_timeout=10, **kw)
    ctl.start()
    return ctl
