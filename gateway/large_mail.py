"""Processing a message that was streamed to the spool blob store (a large one).

Its bytes are never read whole: parsers/skeleton.py streams the big parts
straight into the attachment store and hands the parser a small skeleton of
the message. Whoever needs "the raw message" of such a row to scan it (the
bounce handler) gets the skeleton, which keeps every header and small part.
"""

from __future__ import annotations

import hashlib

from parsers.message import parse_email
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
    return restore(parse_email(data, own_addresses=app.own_addresses), stored)


def scan_bytes(app, entry: SpoolEntry) -> bytes:
    """Bytes to search for headers and reports: the message, or for a large one its skeleton."""
    return entry.raw if entry.raw is not None else skeleton(app, entry)[0]


def parse_entry(app, entry: SpoolEntry) -> ParsedEmail:
    """The ParsedEmail of any spool row, small or file-backed (a held answer replayed, a split message)."""
    if is_stored(entry):
        return parse_stored(app, entry)
    return parse_email(raw_bytes(app.spool_blobs, entry), own_addresses=app.own_addresses)
