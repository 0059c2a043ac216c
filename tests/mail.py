"""Helpers that build and send real emails in tests."""

from __future__ import annotations

import email
import json
import smtplib
from email.message import EmailMessage
from email.policy import SMTP, default as default_policy
from email.utils import make_msgid

from tests.dates import sent_now


def build(frm="alice@customer.example.com", to="support@support.example.test", subject="Printer on fire",
          body="Hello,\nthe printer is on fire.\n", *, cc=None, msgid=None, in_reply_to=None, references=None,
          headers=None, name="Alice Customer") -> bytes:
    m = EmailMessage()
    m["From"] = f"{name} <{frm}>" if name else frm
    m["To"] = to
    if cc:
        m["Cc"] = cc
    m["Subject"] = subject
    m["Message-ID"] = msgid or make_msgid(domain="customer.example.com")
    m["Date"] = sent_now()
    if in_reply_to:
        m["In-Reply-To"] = in_reply_to
    if references:
        m["References"] = references
    for k, v in (headers or {}).items():
        m[k] = v
    m.set_content(body)
    return m.as_bytes(policy=SMTP)  # CRLF, as real clients send


def send(port: int, raw: bytes, mail_from: str, rcpts: list[str]) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.sendmail(mail_from, rcpts, raw)


def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=default_policy)


def body_text(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    return part.get_content() if part else ""


def toml_value(v) -> str:
    """A Python value as TOML, for the config files tests write for real gateway processes."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(v)


def redate(raw: bytes, when=None, received=(), hop: str = "from mx.customer.example.com by mx.support.example.test"
           ) -> bytes:
    """`raw` with its Date header replaced by `when` (a datetime; None: no Date at all) and a
    Received header of `hop` for each datetime in `received`, newest first as servers add them."""
    from email.utils import format_datetime

    head, body = raw.split(b"\r\n\r\n", 1)
    lines = [ln for ln in head.split(b"\r\n") if not ln.lower().startswith(b"date:")]
    if when is not None:
        lines.append(b"Date: " + format_datetime(when).encode())
    hops = [f"Received: {hop}; {format_datetime(r)}".encode() for r in received]
    return b"\r\n".join(hops + lines) + b"\r\n\r\n" + body


def mbox_entry(raw: bytes, sender: str, delivered) -> bytes:
    """One mbox message: the `From sender date` line (the delivery date, a datetime), then
    `raw` with LF line ends and a blank line after it (no From-quoting: tests' bodies have none)."""
    return (f"From {sender} {delivered.strftime('%a %b %d %H:%M:%S %Y')}\n".encode()
            + raw.replace(b"\r\n", b"\n") + b"\n")


def parser_raises_on(monkeypatch, marker: bytes, error: str) -> None:
    """Make `parse_email` raise ValueError(error) for mail containing `marker`, where the pipeline
    calls it (gateway.pipeline.parse_pool, in this process): a parser bug on one message."""
    from gateway.pipeline import parse_pool

    real = parse_pool.parse_email

    def buggy(raw, **kw):
        if marker in raw:
            raise ValueError(error)
        return real(raw, **kw)

    monkeypatch.setattr(parse_pool, "parse_email", buggy)
