"""Parsing a very large message without holding it in memory.

The stdlib parser that mail-parser builds on keeps every line of a message as a
string and joins them, so a 50 MB mail costs several hundred MB to parse. Nearly
all of such a mail is one or two big leaf parts (a core dump, a video, a log).

`split()` reads the message as a stream, a line at a time. Every leaf part whose
body grows past `threshold` is decoded (base64, quoted-printable or as is) on the
fly into a sink, which stores it content-addressed, and is replaced in a small
"skeleton" copy of the message by a one-line marker naming the stored content.
The skeleton keeps every header, every small part and the MIME structure, so the
normal parser reads it as usual; `restore()` then swaps each marker attachment
for the stored file's hash and size. Memory stays near `threshold` plus one line.

`parsers/` knows no storage: the caller passes `open_sink()`, which returns an
object with `write(bytes)` and `finish() -> (sha256, size)`.
"""

from __future__ import annotations

import binascii
import dataclasses
import email.message
import email.parser
import email.policy
import re
from dataclasses import dataclass

from parsers.attachments import clean_content_type
from parsers.attachments import UU_ENCODINGS, UuDecoder, default_extension
from parsers.message import MAX_DEPTH as PARSER_MAX_DEPTH
from parsers.message import automatic_verdict
from parsers.model import ParsedEmail

MARKER = b"supportgw-stored-part:"
_HEADER_LINE = re.compile(rb"From |[\041-\071\073-\176]*:")  # the stdlib feedparser's test
LINE_LIMIT = 64 * 1024  # longer "lines" are read in pieces
MAX_DEPTH = PARSER_MAX_DEPTH + 1  # keep the structure as deep as the parser looks, so it sees a bomb too
BLOCK = 256 * 1024  # a stored part is decoded and written in blocks of about this size


@dataclass(frozen=True)
class StoredPart:
    sha256: str
    size: int
    content_type: str
    top: bool = False  # the message's own (top-level, single) part


class _Base64:
    def __init__(self) -> None:
        self._rest = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._rest + b"".join(chunk.split())
        cut = len(data) - len(data) % 4
        self._rest = data[cut:]
        try:
            return binascii.a2b_base64(data[:cut]) if cut else b""
        except binascii.Error:
            return b""  # a broken stretch is skipped, as the stdlib decoder would (a defect, not a failure)

    def close(self, at_boundary: bool = True) -> bytes:
        rest, self._rest = self._rest, b""
        if not rest.strip(b"="):
            return b""
        try:
            return binascii.a2b_base64(rest + b"=" * (-len(rest) % 4))
        except binascii.Error:
            return b""


class _Lines:
    """Quoted-printable or plain content. The line break before a boundary belongs to
    the boundary (RFC 2046 §5.1.1), so the last one is held back and dropped."""

    def __init__(self, qp: bool) -> None:
        self.qp = qp
        self._held = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._held + chunk
        eol = b"\r\n" if data.endswith(b"\r\n") else b"\n" if data.endswith(b"\n") else b""
        data, self._held = data[:len(data) - len(eol)], eol
        if not self.qp:
            return data
        if data.endswith(b"="):  # a soft line break: the next line continues this one
            data, self._held = data[:-1], b""
        return binascii.a2b_qp(data)

    def close(self, at_boundary: bool = True) -> bytes:
        held, self._held = self._held, b""
        return b"" if at_boundary else (b"\n" if self.qp and held else held)


def _decoder(cte: str):
    cte = cte.strip().lower()
    if cte == "base64":
        return _Base64()
    if cte in UU_ENCODINGS:
        return UuDecoder()
    return _Lines(qp=cte == "quoted-printable")


def _headers(lines: list[bytes]):
    return email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(b"".join(lines))


class _Splitter:
    def __init__(self, fh, open_sink, threshold: int, text_threshold: int) -> None:
        self.fh = fh
        self.open_sink = open_sink
        self.threshold = threshold
        self.text_threshold = text_threshold
        self.out = bytearray()
        self.stored: dict[str, StoredPart] = {}
        self.pending: bytes | None = None  # a line read ahead, not yet consumed

    def readline(self) -> bytes:
        if self.pending is not None:
            line, self.pending = self.pending, None
            return line
        return self.fh.readline(LINE_LIMIT)

    def unread(self, line: bytes) -> None:
        self.pending = line

    @staticmethod
    def _closes(line: bytes, bounds: list[bytes]) -> bool:
        if not line.startswith(b"--"):
            return False
        text = line.rstrip(b"\r\n \t")
        for b in bounds:
            if text == b or text == b + b"--":
                return True
        return False

    def header_block(self) -> tuple[list[bytes], bytes]:
        """A part's header lines and the blank line after them (b"" when there is none).

        Like the stdlib parser, the block also ends at the first line that is not a
        header (a missing blank line): that line is left to be read as body."""
        lines = []
        while True:
            line = self.readline()
            if not line:
                return lines, b""
            if line in (b"\r\n", b"\n"):
                return lines, line
            if not _HEADER_LINE.match(line) and not (lines and line[:1] in (b" ", b"\t")):
                self.unread(line)
                return lines, b""
            lines.append(line)

    def _copy_line(self, bounds: list[bytes]) -> bytes | None:
        """Copy the next line to the skeleton and return it; None (nothing copied) at the end
        of the input or at a delimiter of an enclosing boundary, which is left to be read."""
        line = self.readline()
        if not line:
            return None
        if self._closes(line, bounds):
            self.unread(line)
            return None
        self.out += line
        return line

    def part(self, bounds: list[bytes], depth: int) -> None:
        """Copy or store one part, up to (not including) a delimiter of an enclosing boundary."""
        lines, blank = self.header_block()
        hdr = _headers(lines)
        ctype = clean_content_type(hdr.get_content_type(), "text/plain")  # as parsers.message reads it
        boundary = hdr.get_param("boundary") if ctype.startswith("multipart/") else None
        if boundary and depth < MAX_DEPTH and blank:
            delim = b"--" + str(boundary).encode("utf-8", "surrogateescape")
            self.out += b"".join(lines) + blank
            inner = [delim] + bounds
            while (line := self._copy_line(bounds)) is not None:  # preamble, then the parts
                if self._closes(line, [delim]):
                    if line.rstrip(b"\r\n \t").endswith(delim + b"--"):
                        break  # the closing delimiter: the epilogue follows
                    self.part(inner, depth + 1)
            else:
                return
            while self._copy_line(bounds) is not None:  # epilogue
                pass
            return
        self.leaf(lines, blank, hdr, ctype, bounds)

    def leaf(self, lines, blank, hdr, ctype, bounds) -> None:
        body = bytearray()
        sink = decoder = None
        at_boundary = False
        named = ""
        # the message's own text; a multipart without a usable boundary is read as text too
        is_text_body = (ctype in ("text/plain", "text/html") or ctype.startswith("multipart/")) \
            and not hdr.get_filename() and hdr.get_content_disposition() != "attachment"
        limit = self.text_threshold if is_text_body else self.threshold
        while True:
            line = self.readline()
            if not line or self._closes(line, bounds):
                if line:
                    self.unread(line)
                    at_boundary = True
                break
            if sink is None:
                body += line
                if len(body) > limit:
                    if ctype == "message/rfc822" and not hdr.get_filename():
                        named = _name_after_subject(bytes(body))
                    sink, decoder = self.open_sink(), _decoder(str(hdr.get("content-transfer-encoding", "")))
                    sink.write(decoder.feed(bytes(body)))
                    body = bytearray()
            else:
                body += line  # decoded and written a block at a time, not a line at a time
                if len(body) >= BLOCK:
                    sink.write(decoder.feed(bytes(body)))
                    body = bytearray()
        if sink is None:
            self.out += b"".join(lines) + blank + body
            return
        if body:
            sink.write(decoder.feed(bytes(body)))
        sink.write(decoder.close(at_boundary))
        sha, size = sink.finish()
        self.stored[sha] = StoredPart(sha, size, ctype, top=not bounds)
        self.out += self._marker_headers(lines, hdr, ctype, named) + b"\r\n" + MARKER + sha.encode() + b"\r\n"

    @staticmethod
    def _marker_headers(lines: list[bytes], hdr, ctype: str, named: str = "") -> bytes:
        """The part's own header lines, byte for byte, but for the few fields the marker
        changes. Not re-serialised from the parsed headers: a header the parser reads
        oddly (a control character in it) would make every later header vanish."""
        drop = {b"content-transfer-encoding", b"content-length"}
        added = [b"Content-Transfer-Encoding: 7bit\r\n"]
        if ctype.startswith(("multipart/", "message/")):  # the marker is not a message to parse
            drop.add(b"content-type")
            added.append(b"Content-Type: application/octet-stream\r\n")
        if named:
            drop.add(b"content-disposition")
            disposition = email.message.Message()
            disposition.add_header("Content-Disposition", "attachment", filename=("utf-8", "", named))
            added.append(b"Content-Disposition: " + str(disposition["Content-Disposition"]).encode() + b"\r\n")
        elif not hdr.get_filename():  # unnamed: the parser names it (attachment-N.ext), text as message.txt
            drop.add(b"content-disposition")
            added.append(b'Content-Disposition: attachment; filename="message.txt"\r\n' if ctype.startswith("text/")
                         else b"Content-Disposition: attachment\r\n")
        kept, skipping = [], False
        for line in lines:
            if line[:1] in (b" ", b"\t") and kept is not None:  # a folded continuation of the field before
                if not skipping:
                    kept.append(line)
                continue
            skipping = line.split(b":", 1)[0].strip().lower() in drop
            if not skipping:
                kept.append(line)
        if kept and not kept[-1].endswith(b"\n"):
            kept[-1] += b"\r\n"
        return b"".join(kept + added)


def _name_after_subject(head: bytes) -> str:
    """A stored forwarded message is named after its subject, as the parser names small ones."""
    from parsers.charsets import decode_header

    inner = _headers([head.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]])
    subject = decode_header(str(inner.get("subject", "") or ""), None).strip()
    return f"{subject[:80]}.eml" if subject else ""


def split(fh, open_sink, threshold: int = 256 * 1024,
          text_threshold: int = 8 * 1024 * 1024) -> tuple[bytes, dict[str, StoredPart]]:
    """The skeleton of the message read from binary stream `fh`, and what was stored.

    Attachments and other non-text parts are stored past `threshold` bytes; a
    message's own text (text/plain or text/html, no file name) only past
    `text_threshold`, since the ticket shows it: it then becomes "message.txt".
    """
    s = _Splitter(fh, open_sink, threshold, text_threshold)
    s.part([], 0)
    while True:  # anything after the top-level part (a broken structure) is kept as is
        line = s.readline()
        if not line:
            break
        s.out += line
    return bytes(s.out), s.stored


def restore(parsed: ParsedEmail, stored: dict[str, StoredPart], own_addresses: tuple[str, ...] = ()) -> ParsedEmail:
    """Point the skeleton's marker attachments at the stored parts they stand for.

    When the message's own single part was stored, the parser saw the marker's type,
    not the message's: the loop verdict is made again with the real one (a top-level
    message/delivery-status is a robot's report whatever its size)."""
    if not stored:
        return parsed
    out = []
    for att in parsed.attachments:
        content = att.content.strip()
        if content.startswith(MARKER) and content[len(MARKER):].decode("ascii", "replace") in stored:
            part = stored[content[len(MARKER):].decode("ascii")]
            ctype = clean_content_type(part.content_type) if part.content_type.startswith(("multipart/", "message/")) \
                else att.content_type
            name = att.filename
            if name.startswith("attachment-") and name.endswith(".bin"):
                name = name[:-4] + default_extension(ctype)  # what the parser calls an unnamed part of that type
            att = dataclasses.replace(att, sha256=part.sha256, size=part.size, content=b"", content_type=ctype,
                                      filename=name)
        out.append(att)
    verdict = {}
    top = next((p for p in stored.values() if p.top), None)
    if top is not None:
        automatic, reason = automatic_verdict(parsed.headers, clean_content_type(top.content_type, "text/plain"),
                                              parsed.sender.email, own_addresses)
        verdict = {"automatic": automatic, "automatic_reason": reason}
    return dataclasses.replace(parsed, attachments=tuple(out), **verdict,
                               defects=tuple(parsed.defects) + ("large-parts-streamed",))
