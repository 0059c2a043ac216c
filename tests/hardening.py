"""Helpers for the hardening tests (loops, bounces, bad input, faults, security).

Pipeline-level helpers that need no sockets, a capturing transport for the outbox,
a DSN builder, and a config-file writer for tests that run the `supportgw` CLI or
the gateway as a subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
from email.utils import make_msgid
from pathlib import Path

from sqlalchemy import func, select

from gateway.runtime.dispatch import dispatch_due
from gateway.pipeline.process import Source, ingest
from storage.models import Event, Message, OutboxRow, SpoolEntry, Ticket
from tests.mail import toml_value

SUPPORT = "support@support.example.test"
DOMAIN = "support.example.test"
ROOT = Path(__file__).resolve().parent.parent


class CaptureTransport:
    """An outbox transport that keeps what it is given; `fail_with` raises instead."""

    def __init__(self):
        self.sent: list[dict] = []
        self.fail_with: Exception | None = None

    def send(self, envelope_from, recipients, raw):
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append({"from": envelope_from, "to": list(recipients), "raw": raw})
        return "250 captured"

    def close(self):
        pass


def push(app, raw: bytes, *, to=(SUPPORT,), source="smtp", envelope_from=""):
    """One message through spool and pipeline; returns the outcome Counter."""
    return ingest(app, [(raw, Source(source, envelope_from, tuple(to)))])


def push_many(app, raws, *, to=(SUPPORT,), source="smtp"):
    return ingest(app, [(r, Source(source, "", tuple(to))) for r in raws])


def rows(app, model, *where, order=None):
    with app.db.session() as s:
        stmt = select(model).where(*where).order_by(order if order is not None else model.id)
        return list(s.execute(stmt).scalars())


def count(app, model, *where) -> int:
    with app.db.session() as s:
        return s.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def acks(app):
    return rows(app, OutboxRow, OutboxRow.kind == "acknowledgement")


def events(app, kind):
    return rows(app, Event, Event.kind == kind)


def dispatch(app, transport=None):
    transport = transport or CaptureTransport()
    dispatch_due(app, transport)
    return transport


def spool_outcomes_are_complete(app) -> list[str]:
    """Every spool entry ended as a ticket message, a duplicate of one, a quarantine entry or a
    suspended one (with its reasons).
    Returns the problems found (empty when all is well)."""
    problems = []
    with app.db.session() as s:
        for e in s.execute(select(SpoolEntry)).scalars():
            if e.status == "quarantined":
                if not e.error:
                    problems.append(f"spool {e.id} quarantined without a reason")
                continue
            if e.status == "duplicate":
                continue
            if e.status == "suspended":  # the suspended area: kept with its reasons, no ticket message
                if not e.reason or not (e.verdict or {}).get("reasons"):
                    problems.append(f"spool {e.id} suspended without a reason")
                continue
            n = s.execute(select(func.count(Message.id)).where(Message.spool_id == e.id)).scalar_one()
            if e.status != "processed" or n != 1:
                problems.append(f"spool {e.id}: status {e.status}, {n} ticket message(s)")
    return problems


def build_dsn(verp: str, failed: str, *, original: bytes = b"", status="5.1.1", action="failed",
              diagnostic="smtp; 550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown",
              to_header: str | None = None) -> bytes:
    """An RFC 3464 delivery report, as Postfix writes it, returning `original`'s headers."""
    head = original.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace") if original else ""
    msgid = make_msgid(domain="mx.customer.example.net")
    text = f"""From: MAILER-DAEMON@mx.customer.example.net (Mail Delivery System)
To: {to_header or verp}
Subject: Undelivered Mail Returned to Sender
Message-ID: {msgid}
Date: Mon, 02 Mar 2026 09:05:00 +0800
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="BOUNDARY"

--BOUNDARY
Content-Type: text/plain; charset=us-ascii

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<{failed}>: host mx.customer.example.net said: 550 User unknown

--BOUNDARY
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.customer.example.net

Final-Recipient: rfc822; {failed}
Original-Recipient: rfc822;{failed}
Action: {action}
Status: {status}
Diagnostic-Code: {diagnostic.format(rcpt=failed)}

--BOUNDARY
Content-Type: text/rfc822-headers
Content-Description: Undelivered Message Headers

{head}

--BOUNDARY--
"""
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def write_config(app_or_cfg, path: Path, **extra_toml: dict) -> Path:
    """A TOML file describing the same data dir, database and key as a test app's config."""
    cfg = getattr(app_or_cfg, "config", app_or_cfg)
    data = {
        "gateway": {
            "domain": cfg.gateway.domain,
            "support_addresses": cfg.gateway.support_addresses,
            "display_name": cfg.gateway.display_name,
            "data_dir": str(cfg.data_dir),
            "secret_key": cfg.gateway.secret_key.value or "test-secret-key-0123456789abcdef",
        },
        "database": {"url": cfg.database.url},
    }
    for k, v in extra_toml.items():
        data.setdefault(k, {}).update(v)
    path.write_text(_toml(data), encoding="utf-8")
    return path


def _toml(data: dict) -> str:
    out = []
    for section, values in data.items():
        out.append(f"[{section}]")
        for k, v in values.items():
            out.append(f"{k} = {toml_value(v)}")
        out.append("")
    return "\n".join(out)


def supportgw_command() -> list[str]:
    """This checkout's `supportgw`, run by the interpreter running the tests (whatever
    environment the project is installed in); callers run it with cwd=ROOT, so the
    checkout's code is what runs."""
    return [sys.executable, "-m", "gateway.cli"]


def cli(config: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("SUPPORTGW_CONFIG", None)
    return subprocess.run([*supportgw_command(), "--config", str(config), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=str(ROOT), env=env)


def tickets(app):
    return rows(app, Ticket)
