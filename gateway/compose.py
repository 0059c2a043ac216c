"""Build outbound RFC 5322 messages from rendered templates.

Owns header hygiene: our Message-ID, threading headers, Auto-Submitted and
loop-prevention headers on automatic mail, and Reply-To signed addresses.
Nothing here sends; the outbox does.

Whatever came from inbound mail (a subject, a name, a Message-ID, a file name)
is bounded before it becomes a header: a subject is cut at `SUBJECT_MAX`
characters with an ellipsis, an id too long to fit one line is left out, and
every header is folded so that no line of a mail we send exceeds RFC 5322's
998 characters (`LINE_MAX`). A 2 MB Subject in must not become megabytes out.
"""

from __future__ import annotations

import base64
import hashlib
import os
from email import encoders
from email.header import Header
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import format_datetime, formataddr, formatdate, make_msgid

from templates import Rendered

MAX_REFERENCES = 20
TICKET_SUBJECT_MAX = 200  # characters of an inbound subject kept as a ticket's subject
SUBJECT_MAX = 300  # characters of any Subject we send: a ticket's subject plus a template's words
NAME_MAX = 120  # a display name or a file name taken from inbound mail
LINE_MAX = 998  # RFC 5322 2.1.1, without the CRLF
ID_MAX = 900  # a Message-ID longer than this cannot sit in one In-Reply-To line: left out
_WORD_MAX = 60  # an ASCII run longer than this cannot be folded: it goes as encoded words
_CRLF = compat32.clone(linesep="\r\n")


def clean_header(value: str) -> str:
    """One line, no control characters: data never becomes a second header."""
    return " ".join("".join(ch if ch >= " " or ch == "\t" else " " for ch in value).split())


def cut(value: str, limit: int) -> str:
    """`value` (cleaned to one line) no longer than `limit` characters, an ellipsis marking a cut."""
    value = clean_header(value)
    return value if len(value) <= limit else value[:limit - 1].rstrip() + "…"


def short_subject(subject: str, limit: int = TICKET_SUBJECT_MAX) -> str:
    """A subject as we keep it on a ticket and repeat it in mail: bounded."""
    return cut(subject, limit)


def new_message_id(domain: str) -> str:
    return make_msgid(idstring=os.urandom(6).hex(), domain=domain)[1:-1]


def thread_index(root_message_id: str) -> str:
    """A stable Outlook Thread-Index for the conversation rooted at this id (22 bytes)."""
    digest = hashlib.sha256(root_message_id.encode()).digest()
    return base64.b64encode(b"\x01" + digest[:21]).decode()


def _encode(value: str) -> str:
    """RFC 2047 only when needed: plain ASCII stays readable."""
    value = clean_header(value)
    if value.isascii() and all(len(w) <= _WORD_MAX for w in value.split(" ")):
        return value
    # one line of encoded words; _fold() breaks it at the spaces between them
    return Header(value, "utf-8").encode(linesep="\n").replace("\n ", " ").replace("\n", " ")


def _addr(pair: tuple[str, str]) -> str:
    return formataddr((cut(pair[0], NAME_MAX), pair[1]), charset="utf-8").replace("\n ", " ")


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
    # compat32 MIME classes: several times faster than EmailMessage's header registry,
    # and every header value below is already cleaned and encoded by us.
    text = MIMEText(rendered.text, "plain", "utf-8")
    body = text
    if rendered.html:
        body = MIMEMultipart("alternative")
        body.attach(text)
        body.attach(MIMEText(rendered.html, "html", "utf-8"))
    msg = body
    if attachments:
        msg = MIMEMultipart("mixed")
        msg.attach(body)
        for filename, ctype, data in attachments:
            maintype, _, subtype = ctype.partition("/")
            if maintype == "message":  # message/* may not be base64 (RFC 2046) and breaks the generator
                maintype, subtype = "application", "octet-stream"
            part = MIMEBase(maintype or "application", subtype or "octet-stream")
            part.set_payload(data)
            encoders.encode_base64(part)
            part.add_header("Content-Disposition", "attachment", filename=("utf-8", "", _file_name(filename)))
            msg.attach(part)
    headers: list[tuple[str, str]] = [("From", _addr(from_addr)),
                                      ("To", ", ".join(clean_header(a) for a in to))]
    if cc:
        headers.append(("Cc", ", ".join(clean_header(a) for a in cc)))
    if reply_to:
        headers.append(("Reply-To", clean_header(reply_to)))
    headers += [("Subject", _encode(short_subject(rendered.subject, SUBJECT_MAX))), ("Message-ID", f"<{message_id}>"),
                ("Date", format_datetime(date) if date is not None else formatdate(localtime=False))]
    if in_reply_to and len(in_reply_to) <= ID_MAX:
        headers.append(("In-Reply-To", f"<{in_reply_to}>"))
    refs = [r for r in (references or []) if r and len(r) <= ID_MAX][-MAX_REFERENCES:]
    if refs:
        headers.append(("References", " ".join(f"<{r}>" for r in refs)))
    if thread_topic:
        headers.append(("Thread-Topic", _encode(short_subject(thread_topic))))
    if thread_root:
        headers.append(("Thread-Index", thread_index(thread_root)))
    if automatic:
        # RFC 3834 plus the headers Exchange and list software honour.
        headers += [("Auto-Submitted", automatic), ("X-Auto-Response-Suppress", "All"),
                    ("Precedence", "auto_reply")]
    if loop_address:
        headers.append(("X-Loop", loop_address))
    for k, v in (extra_headers or {}).items():
        headers.append((k, _encode(v)))
    # Our values are already clean and RFC 2047-encoded: write them directly (the
    # generic folder costs more than the rest of the message), and let the MIME
    # generator write only the body part with its own Content-* headers.
    head = "".join(f"{k}: {_fold(v)}\r\n" for k, v in headers).encode("ascii", "replace")
    return head + msg.as_bytes(policy=_CRLF)


def _file_name(name: str) -> str:
    """A forwarded attachment's name, bounded (its extension kept): RFC 2231 parameters
    are not folded by the MIME generator, so a long one would make an over-long line."""
    name = clean_header(name)
    if len(name) <= NAME_MAX:
        return name
    stem, dot, ext = name.rpartition(".")
    ext = ext if dot and stem and len(ext) <= 10 else ""
    return cut(stem if ext else name, NAME_MAX - len(ext) - 1) + (f".{ext}" if ext else "")


def _fold(value: str, width: int = 76) -> str:
    """Fold at spaces so no header line is longer than RFC 5322 recommends; a word that
    still does not fit the hard limit (never ours: the values above are bounded) is split."""
    if len(value) <= width:
        return value
    lines, line = [], ""
    for word in value.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    hard = LINE_MAX - 40  # room for the longest header name before the first line
    return "\r\n ".join(piece for ln in lines for piece in (ln[i:i + hard] for i in range(0, len(ln), hard)))
