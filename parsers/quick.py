"""Cheap header peeks used before a message is fully parsed (spool time)."""

from __future__ import annotations

import re

_MID = re.compile(rb"^message-id:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)
_ANGLE = re.compile(rb"<([^<>\s]+)>")
_NOT_IN_ID = re.compile(r"[\x00-\x20\x7f-\x9f<>\ud800-\udfff]")


def strip_id(value: str) -> str:
    """A Message-ID as we store and match it, here at spool time and in parsers.message alike:
    ids become database keys (PostgreSQL refuses NUL in text) and References headers of our
    replies, so no brackets, whitespace or control characters, whatever the sender wrote."""
    return _NOT_IN_ID.sub("", value)


def header_block(raw: bytes, limit: int = 256 * 1024) -> bytes:
    head = raw[:limit]
    for sep in (b"\r\n\r\n", b"\n\n", b"\r\r"):
        i = head.find(sep)
        if i >= 0:
            return head[:i]
    return head


def message_id(raw: bytes) -> str:
    """The Message-ID without brackets, '' when absent; never raises."""
    m = _MID.search(header_block(raw))
    if not m:
        return ""
    value = m.group(1)
    a = _ANGLE.search(value)
    token = a.group(1) if a else (value.split() or [b""])[0]
    return strip_id(token.decode("utf-8", "replace"))[:998]
