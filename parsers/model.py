"""The plain data the parsers hand downstream.

Nothing outside `parsers/` ever touches an `email.message.Message`: it gets a
`ParsedEmail`, a frozen value with plain fields. Attachment *content* is kept
on the object (so storage can write it content-addressed) but never printed
by `to_json()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from parsers.commands import CommandBlock, parse_commands
from parsers.status_request import is_status_request


@dataclass(frozen=True)
class Address:
    name: str
    email: str  # lower-cased addr-spec, "" when the header had none

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email


@dataclass(frozen=True)
class Attachment:
    filename: str  # already made safe: no path separators, no control characters
    content_type: str
    size: int
    sha256: str
    content: bytes = field(repr=False, compare=False)
    content_id: str = ""
    inline: bool = False


@dataclass(frozen=True)
class ParsedEmail:
    sender: Address
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    subject: str
    message_id: str  # without angle brackets; synthesised from the content hash when absent
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    date: datetime | None
    text: str  # full readable text (HTML-only mail converted)
    html: str  # sanitised HTML ("" when none)
    attachments: tuple[Attachment, ...]
    language: str  # "zh-CN" or "en"
    headers: tuple[tuple[str, str], ...]  # every header, decoded, in order
    reply_text: str = ""  # the new text alone (quotes and signature stripped)
    signature: str = ""
    automatic: bool = False
    automatic_reason: str = ""
    defects: tuple[str, ...] = ()  # parser complaints worth keeping (broken MIME, bad charset)

    # What the handlers ask of every mail's own words, answered once per parsed mail. Each depends
    # on this mail's fields alone (a mail made again with another field, dataclasses.replace, asks
    # again), so the parse pool answers them where it parsed the mail (gateway/pipeline/parse_pool.py)
    # and the answers travel with it, in its pickled dict, to the one process that stores mail.
    @cached_property
    def commands(self) -> CommandBlock:
        """The `#` command lines of the new text (parsers.commands), valid or not."""
        return parse_commands(self.reply_text)

    @cached_property
    def asks_status(self) -> bool:
        """Whether the mail asks for the sender's open tickets (parsers.status_request); an
        HTML-only mail has its words in `text` (converted), where `reply_text` may be empty."""
        return is_status_request(self.subject, self.reply_text or self.text)

    def header(self, name: str, default: str = "") -> str:
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return default

    def header_all(self, name: str) -> list[str]:
        lname = name.lower()
        return [value for key, value in self.headers if key.lower() == lname]

    def to_json(self) -> dict:
        def addr(a: Address) -> dict:
            return {"name": a.name, "email": a.email}

        return {
            "from": addr(self.sender),
            "to": [addr(a) for a in self.to],
            "cc": [addr(a) for a in self.cc],
            "reply_to": [addr(a) for a in self.reply_to],
            "subject": self.subject,
            "message_id": self.message_id,
            "in_reply_to": list(self.in_reply_to),
            "references": list(self.references),
            "date": self.date.isoformat() if self.date else None,
            "text": self.text,
            "html": self.html,
            "language": self.language,
            "attachments": [
                {"filename": a.filename, "content_type": a.content_type, "size": a.size,
                 "sha256": a.sha256, "inline": a.inline}
                for a in self.attachments
            ],
            "reply_text": self.reply_text,
            "signature": self.signature,
            "automatic": self.automatic,
            "automatic_reason": self.automatic_reason,
            "defects": list(self.defects),
        }
