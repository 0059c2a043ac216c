"""Build outbound RFC 5322 messages from rendered templates.

Owns header hygiene: our Message-ID, threading headers, Auto-Submitted and
loop-prevention headers on automatic mail, and Reply-To signed addresses.
Nothing here sends; the outbox does.
"""

from __future__ import annotations

import base64
import hashlib
import os
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, make_msgid

from templates import Rendered

MAX_REFERENCES = 20


def clean_header(value: str) -> str:
    """One line, no control characters: data never becomes a second header."""
    return " ".join("".join(ch if ch >= " " or ch == "\t" else " " for ch in value).split())


def new_message_id(domain: str) -> str:
    return make_msgid(idstring=os.urandom(6).hex(), domain=domain)[1:-1]


def thread_index(root_message_id: str) -> str:
    """A stable Outlook Thread-Index for the conversation rooted at this id (22 bytes)."""
    digest = hashlib.sha256(root_message_id.encode()).digest()
    return base64.b64encode(b"\x01" + digest[:21]).decode()


def build_message(
    rendered: Rendered,
    *,
    from_addr: tuple[str, str],
    to: list[str],
    cc: list[str] | None = None,
    reply_to: str | None = None,
    message_id: str,
    in_reply_to: str | None = None,
    references: list[str] | None = None,
    automatic: str | None = None,  # "auto-replied" | "auto-generated" | None
    loop_address: str = "",
    thread_topic: str = "",
    thread_root: str = "",
    extra_headers: dict[str, str] | None = None,
    date=None,
    attachments: list[tuple[str, str, bytes]] | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = formataddr((clean_header(from_addr[0]), from_addr[1]))
    msg["To"] = ", ".join(clean_header(a) for a in to)
    if cc:
        msg["Cc"] = ", ".join(clean_header(a) for a in cc)
    if reply_to:
        msg["Reply-To"] = reply_to
    msg["Subject"] = clean_header(rendered.subject)
    msg["Message-ID"] = f"<{message_id}>"
    if date is not None:
        msg["Date"] = format_datetime(date)
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
    refs = [r for r in (references or []) if r][-MAX_REFERENCES:]
    if refs:
        msg["References"] = " ".join(f"<{r}>" for r in refs)
    if thread_topic:
        msg["Thread-Topic"] = clean_header(thread_topic)
    if thread_root:
        msg["Thread-Index"] = thread_index(thread_root)
    if automatic:
        # RFC 3834 plus the headers Exchange and list software honour.
        msg["Auto-Submitted"] = automatic
        msg["X-Auto-Response-Suppress"] = "All"
        msg["Precedence"] = "auto_reply"
    if loop_address:
        msg["X-Loop"] = loop_address
    for k, v in (extra_headers or {}).items():
        msg[k] = clean_header(v)
    msg.set_content(rendered.text, charset="utf-8")
    if rendered.html:
        msg.add_alternative(rendered.html, subtype="html", charset="utf-8")
    for filename, ctype, data in attachments or []:
        maintype, _, subtype = ctype.partition("/")
        msg.add_attachment(data, maintype=maintype or "application", subtype=subtype or "octet-stream",
                           filename=filename)
    return msg.as_bytes(policy=SMTP)
