"""Processing a message that was streamed to the spool blob store (a large one).

Its bytes are never read whole: parsers/skeleton.py streams the big parts
straight into the attachment store and hands the parser a small skeleton of
the message. Whoever needs "the raw message" of such a row to scan it (the
bounce handler) gets the skeleton, which keeps every header and small part.
"""

from __future__ import annotations

import dataclasses
import hashlib

from parsers.message import NESTED_NAME, parse_email, synthetic_id
from parsers.model import ParsedEmail
from parsers.skeleton import restore, split
from storage.models import SpoolEntry
from storage.spool import SpoolSink, open_raw, raw_bytes

PART_THRESHOLD = 256 * 1024  # a leaf part bigger than this goes to the attachment store as it is read


class _AttachmentSink:
    def __init__(self, store) -> None:
        self.store = store
        self._sink = SpoolSink(store, inline_max=PART_THRESHOLD)

    def write(self, chunk: bytes) -> None:
        self._sink.write(chunk)

    def finish(self) -> tuple[str, int]:
        got = self._sink.finish()
        if isinstance(got, bytes):  # decoded smaller than it looked (a part of mostly whitespace)
            sha = hashlib.sha256(got).hexdigest()
            self.store.put(sha, got)
            return sha, len(got)
        return got.sha256, got.size


def is_stored(entry: SpoolEntry) -> bool:
    return entry.raw is None


def skeleton(app, entry: SpoolEntry) -> tuple[bytes, dict]:
    cached = entry.__dict__.get("_skeleton")
    if cached is None:
        with open_raw(app.spool_blobs, entry) as fh:
            cached = split(fh, lambda: _AttachmentSink(app.attachments), PART_THRESHOLD)
        entry.__dict__["_skeleton"] = cached
    return cached


def parse_stored(app, entry: SpoolEntry) -> ParsedEmail:
    """The ParsedEmail of a file-backed spool row, its big parts already stored."""
    data, stored = skeleton(app, entry)
    parsed = restore(parse_email(data, own_addresses=app.own_addresses), stored, app.own_addresses)
    if "no-message-id" in parsed.defects:  # named after the whole message's hash, as the small path does
        parsed = dataclasses.replace(parsed, message_id=synthetic_id(entry.sha256))
    return _whole_if_nested(app, entry, parsed)


def _whole_if_nested(app, entry: SpoolEntry, parsed: ParsedEmail) -> ParsedEmail:
    """A message nested past the parser's limit is kept whole: for a large one that is the
    spooled file itself (streamed to the attachment store), not the skeleton the parser saw."""
    if "nesting-too-deep" not in parsed.defects:
        return parsed
    out = []
    for att in parsed.attachments:
        if att.filename == NESTED_NAME and att.content_type == "message/rfc822" and att.content:
            sink = _AttachmentSink(app.attachments)
            with open_raw(app.spool_blobs, entry) as fh:
                while chunk := fh.read(PART_THRESHOLD):
                    sink.write(chunk)
            sha, size = sink.finish()
            att = dataclasses.replace(att, sha256=sha, size=size, content=b"")
        out.append(att)
    return dataclasses.replace(parsed, attachments=tuple(out))


def scan_bytes(app, entry: SpoolEntry) -> bytes:
    """Bytes to search for headers and reports: the message, or for a large one its skeleton."""
    return entry.raw if entry.raw is not None else skeleton(app, entry)[0]


def parse_entry(app, entry: SpoolEntry) -> ParsedEmail:
    """The ParsedEmail of any spool row, small or file-backed (a held answer replayed, a split message)."""
    if is_stored(entry):
        return parse_stored(app, entry)
    return parse_email(raw_bytes(app.spool_blobs, entry), own_addresses=app.own_addresses)
