"""Bounces: who could not be reached, why, and which outbox row caused it.

Owns reading delivery failures: RFC 3464 multipart/report DSNs first, then the common
non-standard texts (qmail, Exim, Postfix without DSN, Exchange/Sendmail-ish prose), and
VERP: we send with envelope sender `bounces+<outbox-id>@<domain>`, so a bounce addressed
there (or quoting that Return-Path) names the outbox row. Never raises; `None` means
"this is not a bounce". Deciding what to do about a bounce is the gateway's job.
"""

from __future__ import annotations

import email
import re
from dataclasses import dataclass
from email.message import Message

from parsers.charsets import decode_bytes, decode_header

VERP_LOCALPART = "bounces"
_VERP = re.compile(r"(?<![\w.+-])bounces\+(\d{1,18})(?:@|=|$)", re.I)
_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_SMTP_CODE = re.compile(r"(?<![\d.])([45][0-5]\d)(?:[ -]|$)", re.M)
_ADDRESS = r"[A-Za-z0-9._%+!#$&'*/=?^`{|}~-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
_ANGLED = re.compile(rf"<({_ADDRESS})>")
_BARE = re.compile(rf"\b({_ADDRESS})\b")
_DAEMONS = ("mailer-daemon", "postmaster", "post_master", "mail-daemon")
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|returned mail|delivery (status|fail|notification|report)|mail delivery|"
    r"failure notice|non[- ]?delivery|could not be delivered|delivery has failed|"
    r"退信|邮件传输失败|メールエラー|unzustellbar|non remis|delayed",
    re.I,
)
# Where the returned original message starts inside a plain-text bounce.
_ORIGINAL_MARKERS = re.compile(
    r"^[ \t]*-+ ?(?:This is a copy of the message|Below this line is a copy|"
    r"Original message|Original Message Headers|The header of the original message|"
    r"Undelivered message headers|Returned message|Received: from)",
    re.I | re.M,
)
# Per-recipient lines in prose bounces: "<user@host>:" at the start of a line (qmail, and
# Postfix's "<user@host>: host ... said: 550 ...") or an indented bare address (Exim).
_QMAIL_RECIPIENT = re.compile(rf"^<({_ADDRESS})>:", re.M)
_EXIM_RECIPIENT = re.compile(rf"^[ \t]+<?({_ADDRESS})>?(?:[ \t]*$|:)", re.M)
_MAX_SCAN = 256 * 1024


@dataclass(frozen=True)
class Dsn:
    recipients: tuple[str, ...]  # the original recipients that failed, lower-cased
    status: str  # enhanced status code, e.g. "5.1.1"; "" when the bounce gives none
    action: str  # "failed", "delayed", "delivered", "relayed", "expanded" or ""
    diagnostic: str  # the remote server's words, one line
    original_sender: str  # envelope sender of the bounced message ("" if unknown)
    outbox_id: int | None  # from our VERP envelope sender, when found
    standard: bool  # True for an RFC 3464 report, False for a recognised prose bounce

    @property
    def permanent(self) -> bool:
        if self.action:
            return self.action == "failed"
        return not self.status.startswith("4")


def verp_outbox_id(address: str) -> int | None:
    """The outbox id in `bounces+<id>@domain` (angle brackets and case tolerated)."""
    if not address:
        return None
    match = _VERP.search(address.strip().strip("<>"))
    return int(match.group(1)) if match else None


def parse_dsn(raw: bytes) -> Dsn | None:
    """Read a bounce; None when `raw` is not one. Never raises."""
    try:
        msg = email.message_from_bytes(bytes(raw))
    except Exception:  # RecursionError on nesting bombs included
        return None
    try:
        return _from_report(msg, raw) or _from_prose(msg, raw)
    except Exception:
        return None


# --- RFC 3464 ------------------------------------------------------------------------------


def _from_report(msg: Message, raw: bytes) -> Dsn | None:
    status_part = None
    for part in _parts(msg):
        if part.get_content_type() == "message/delivery-status":
            status_part = part
            break
    if status_part is None:
        return None
    blocks = _status_blocks(status_part)
    recipients, statuses, actions, diagnostics = [], [], [], []
    for block in blocks[1:] or blocks:
        recipient = _address_field(block.get("Original-Recipient", "")) or _address_field(
            block.get("Final-Recipient", ""))
        if recipient:
            recipients.append(recipient)
        status = _STATUS.search(str(block.get("Status", "")))
        if status:
            statuses.append(status.group(0))
        action = str(block.get("Action", "")).strip().lower()
        if action:
            actions.append(action.split()[0])
        diagnostic = decode_header(block.get("Diagnostic-Code", ""))
        if diagnostic:
            diagnostics.append(_one_line(diagnostic.split(";", 1)[-1]))
    if not recipients:  # some MTAs put the recipient only in the human part
        recipients = _prose_recipients(msg, _human_text(msg))
    text = _human_text(msg)
    status = statuses[0] if statuses else _status_from_text(text)
    sender, outbox = _verp(msg, raw)
    return Dsn(
        recipients=tuple(dict.fromkeys(recipients)),
        status=status,
        action=actions[0] if actions else "",
        diagnostic=diagnostics[0] if diagnostics else _diagnostic_from_text(text),
        original_sender=sender,
        outbox_id=outbox,
        standard=True,
    )


def _status_blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list) and all(isinstance(p, Message) for p in payload):
        return payload
    # Encoded or malformed: parse the text ourselves, blocks separated by blank lines.
    data = part.get_payload(decode=True) or b""
    text = decode_bytes(data, None)[0].replace("\r\n", "\n")
    return [email.message_from_string(block.strip() + "\n")
            for block in re.split(r"\n\s*\n", text) if block.strip()]


def _address_field(value: object) -> str:
    value = decode_header(value).strip()
    if ";" in value:
        value = value.split(";", 1)[1]
    value = value.strip().strip("<>").strip()
    return value.lower() if "@" in value else ""


# --- prose bounces --------------------------------------------------------------------------


def _from_prose(msg: Message, raw: bytes) -> Dsn | None:
    if not _looks_like_bounce(msg):
        return None
    text = _human_text(msg)
    recipients = [a.strip().lower() for a in
                  ",".join(str(v) for v in msg.get_all("X-Failed-Recipients", [])).split(",")
                  if "@" in a]
    recipients = recipients or _prose_recipients(msg, text)
    status = _status_from_text(text)
    sender, outbox = _verp(msg, raw)
    if not (recipients or status or outbox is not None):
        return None
    return Dsn(
        recipients=tuple(dict.fromkeys(recipients)),
        status=status,
        action="delayed" if status.startswith("4") else "failed",
        diagnostic=_diagnostic_from_text(text),
        original_sender=sender,
        outbox_id=outbox,
        standard=False,
    )


def _looks_like_bounce(msg: Message) -> bool:
    sender = decode_header(msg.get("From", "")).lower()
    return_path = str(msg.get("Return-Path", "")).strip()
    subject = decode_header(msg.get("Subject", ""))
    return bool(
        msg.get("X-Failed-Recipients")
        or return_path in ("<>", "")
        and msg.get("Return-Path") is not None
        or any(d in sender for d in _DAEMONS)
        or _BOUNCE_SUBJECT.search(subject)
    )


def _prose_recipients(msg: Message, text: str) -> list[str]:
    head = _ORIGINAL_MARKERS.split(text, maxsplit=1)[0]
    own = {a.lower() for a in _BARE.findall(decode_header(msg.get("From", "")))}
    own |= {a.lower() for a in _BARE.findall(decode_header(msg.get("To", "")))}
    for pattern in (_QMAIL_RECIPIENT, _EXIM_RECIPIENT, _ANGLED, _BARE):
        found = [a.lower() for a in pattern.findall(head) if a.lower() not in own]
        found = [a for a in found if verp_outbox_id(a) is None
                 and a.split("@", 1)[0] not in _DAEMONS]
        if found:
            return list(dict.fromkeys(found))
    return []


def _status_from_text(text: str) -> str:
    head = _ORIGINAL_MARKERS.split(text, maxsplit=1)[0]
    match = _STATUS.search(head)
    if match:
        return match.group(0)
    code = _SMTP_CODE.search(head)
    if code:  # a bare SMTP reply: 550 -> 5.0.0, 452 -> 4.0.0
        return f"{code.group(1)[0]}.0.0"
    return ""


def _diagnostic_from_text(text: str) -> str:
    head = _ORIGINAL_MARKERS.split(text, maxsplit=1)[0]
    for line in head.splitlines():
        if _STATUS.search(line) or _SMTP_CODE.search(line):
            return _one_line(line)
    return ""


# --- VERP and the original message --------------------------------------------------------


def _verp(msg: Message, raw: bytes) -> tuple[str, int | None]:
    """(original envelope sender, outbox id) from the places a VERP address shows up."""
    candidates: list[str] = []
    for name in ("To", "Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To"):
        candidates.extend(str(v) for v in msg.get_all(name, []))
    original = _original_headers(msg)
    if original is not None:
        candidates.extend(str(v) for v in original.get_all("Return-Path", []))
        candidates.extend(str(v) for v in original.get_all("Sender", []))
    for value in candidates:
        outbox = verp_outbox_id(value)
        if outbox is not None:
            found = _VERP_ADDRESS.search(value)
            return (found.group(0).lower() if found else value.strip().strip("<>").lower()), outbox
    # Prose bounces quote the original headers as text; the VERP address is still there.
    match = _VERP_ADDRESS.search(raw[:_MAX_SCAN].decode("latin-1"))
    if match:
        return match.group(0).lower(), verp_outbox_id(match.group(0))
    if original is not None:
        return_path = str(original.get("Return-Path", "")).strip().strip("<>").lower()
        return return_path, None
    return "", None


_VERP_ADDRESS = re.compile(r"bounces\+\d{1,18}@[A-Za-z0-9.-]+", re.I)


def _original_headers(msg: Message) -> Message | None:
    for part in _parts(msg):
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
        elif ctype == "text/rfc822-headers":
            data = part.get_payload(decode=True) or b""
            return email.message_from_bytes(data.lstrip())
    return None


def _parts(msg: Message) -> list[Message]:
    found, stack = [], [msg]
    while stack and len(found) < 200:
        part = stack.pop(0)
        found.append(part)
        payload = part.get_payload()
        if part.is_multipart() and part.get_content_type() != "message/delivery-status":
            if part.get_content_type() == "message/rfc822":
                continue  # the returned original is evidence, not part of the report
            stack.extend(p for p in payload if isinstance(p, Message))
    return found


def _human_text(msg: Message) -> str:
    chunks = []
    for part in _parts(msg):
        if part.get_content_type() in ("text/plain", "text/html") and not part.is_multipart():
            data = part.get_payload(decode=True) or b""
            text = decode_bytes(data[:_MAX_SCAN], part.get_content_charset())[0]
            if part.get_content_type() == "text/html":
                text = re.sub(r"<[^>]*>", " ", text)
            chunks.append(text)
            if part.get_content_type() == "text/plain":
                break
    return "\n".join(chunks).replace("\r\n", "\n")


def _one_line(text: str) -> str:
    return " ".join(text.split())[:500]
