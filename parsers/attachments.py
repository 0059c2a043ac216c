"""Attachments: safe file names and `Attachment` values from MIME leaf parts.

Owns filename recovery (RFC 2231 continuations and charsets, RFC 2047 words that mailers
put in names anyway, raw 8-bit names) and filename safety (basename only, no "..", no
control or bidi characters, length-capped, a non-empty default). Content is kept as the
decoded bytes; archives are never unpacked. Outlook's `winmail.dat` (TNEF) is the one
container opened (`tnef_contents`, with tnefparse): it is Outlook's wrapping of ordinary files
and the body, which no other mail client can read; the original is kept beside them. It does
not decide which part is the body.
"""

from __future__ import annotations

import binascii
import hashlib
import logging
import mimetypes
import re
import unicodedata
from email.message import Message

import tnefparse

# tnefparse logs every attribute it does not know; our defects say what matters
logging.getLogger("tnefparse").setLevel(logging.CRITICAL)

from parsers.charsets import decode_8bit, decode_bytes, decode_header
from parsers.model import Attachment

MAX_FILENAME_CHARS = 150
MAX_FILENAME_BYTES = 240  # common filesystems cap a name at 255 bytes

_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f<>:"|?*\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]')
_SPACES = re.compile(r"\s+")
# RFC 2045 5.1: type "/" subtype, both tokens (no controls, spaces or tspecials).
_CONTENT_TYPE = re.compile(r"[a-z0-9!#$%&'*+\-.^_`{|}~]+/[a-z0-9!#$%&'*+\-.^_`{|}~]+\Z")
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_EXTENSIONS = {
    "message/rfc822": ".eml",
    "text/plain": ".txt",
    "text/html": ".html",
    "message/delivery-status": ".txt",
    "text/rfc822-headers": ".txt",
    "application/ms-tnef": ".dat",
    "application/octet-stream": ".bin",
    "image/jpeg": ".jpg",
}


def clean_content_type(value: str, default: str = "application/octet-stream") -> str:
    """A MIME type as we store it: lower-case `type/subtype` of RFC 2045 tokens, else
    `default`. A NUL or other control character in it is refused here, at the edge,
    so that SQLite and PostgreSQL (which refuses NUL in text) store the same thing."""
    value = (value or "").strip().lower()
    return value if len(value) <= 255 and _CONTENT_TYPE.match(value) else default


def one_line(value: str) -> str:
    """Header-derived text (a name, a Content-ID) without control characters."""
    return " ".join(_CONTROLS.sub(" ", value).split()) if _CONTROLS.search(value) else value


def default_extension(content_type: str) -> str:
    ext = _EXTENSIONS.get(content_type)
    if ext is None:
        ext = mimetypes.guess_extension(content_type, strict=False) or ".bin"
    return ext


def safe_filename(name: str, index: int, content_type: str = "application/octet-stream") -> str:
    """A name that is safe to show and to write anywhere: never a path, never empty."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("", name)
    name = _SPACES.sub(" ", name).strip()
    while ".." in name:
        name = name.replace("..", ".")
    name = name.strip(" .")  # no hidden files, no trailing dot (Windows drops it)
    if len(name) > MAX_FILENAME_CHARS or len(name.encode("utf-8")) > MAX_FILENAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        ext = "." + ext if dot and 0 < len(ext) <= 16 else ""
        stem = stem if ext else name
        budget = MAX_FILENAME_CHARS - len(ext)
        stem = stem[:budget]
        while len((stem + ext).encode("utf-8")) > MAX_FILENAME_BYTES:
            stem = stem[:-1]
        name = stem.rstrip(" .") + ext
    if not name or name.startswith("."):
        name = f"attachment-{index}{default_extension(content_type)}"
    return name


def raw_filename(part: Message, hint: str | None = None) -> str:
    """The sender's file name for `part`, decoded to text ("" when none)."""
    declared = f"{part.get('content-disposition', '')}{part.get('content-type', '')}"
    if "name" not in declared.lower():  # cheap pre-check: get_param re-parses every call
        return ""
    for param, header in (("filename", "content-disposition"), ("name", "content-type")):
        try:
            value = _params_view(part, header, hint).get_param(param, None, header)
        except Exception:
            continue
        if value is None:
            continue
        if isinstance(value, tuple):  # RFC 2231: (charset, language, %-decoded latin-1 text)
            charset, _, text = value
            try:
                data = str(text).encode("latin-1", "surrogateescape")
            except UnicodeEncodeError:
                return decode_header(str(text), hint)
            return decode_bytes(data, charset or "utf-8")[0]
        return decode_header(str(value), hint)
    return ""


def _params_view(part: Message, header: str, hint: str | None) -> Message:
    """`part`, or a stand-in whose `header` holds raw 8-bit bytes decoded to text.

    compat32 turns raw 8-bit parameter bytes into U+FFFD before get_param sees them.
    """
    for name, value in part.raw_items():
        if name.lower() == header:
            if isinstance(value, str) and _RAW_8BIT.search(value):
                view = Message()
                view[header] = decode_8bit(value, hint)
                return view
            break
    return part


_RAW_8BIT = re.compile("[\udc80-\udcff]")


def make_attachment(
    content: bytes,
    *,
    filename: str,
    index: int,
    content_type: str,
    content_id: str = "",
    inline: bool = False,
) -> Attachment:
    content_type = clean_content_type(content_type)
    return Attachment(
        filename=safe_filename(filename, index, content_type),
        content_type=content_type,
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        content=content,
        content_id=one_line(content_id).replace(" ", ""),
        inline=inline,
    )


UU_ENCODINGS = ("x-uuencode", "uuencode", "x-uue", "uue")


class UuDecoder:
    """uuencode (x-uuencode): the lines between "begin" and "end", decoded as they come.

    Used by both parse paths (parsers.message for a whole part, parsers.skeleton as a
    stream), so a large mail's attachment is the same bytes as a small one's. A broken
    line is skipped; the stdlib instead gives up on the whole part and returns it
    undecoded, which a stream cannot do once it has written the lines before."""

    def __init__(self) -> None:
        self._state = "before"

    def feed(self, chunk: bytes) -> bytes:
        out = bytearray()
        for line in chunk.splitlines():
            if self._state == "before":
                if line.startswith(b"begin"):
                    self._state = "in"
            elif self._state == "in":
                if line.strip() == b"end":
                    self._state = "after"
                elif line.strip():
                    try:
                        out += binascii.a2b_uu(line)
                    except binascii.Error:  # some encoders pad short lines badly: length from the first byte
                        n = (line[0] - 32) & 63
                        try:
                            out += binascii.a2b_uu(line[:((n + 2) // 3) * 4 + 1])[:n]
                        except binascii.Error:
                            pass  # a broken line is skipped, as the stdlib's decoder does: a defect, not a failure
        return bytes(out)

    def close(self, at_boundary: bool = True) -> bytes:
        return b""


def is_tnef(content_type: str, filename: str) -> bool:
    return content_type in ("application/ms-tnef", "application/vnd.ms-tnef") or (
        filename.strip().lower() == "winmail.dat"
    )


MAX_TNEF_FILES = 100  # a crafted winmail.dat must not turn into thousands of attachments


def tnef_contents(data: bytes) -> tuple[list[tuple[str, bytes]], str, str]:
    """(files [(name, bytes)], plain body, html body) inside a winmail.dat; never raises.

    A damaged file gives what could be read before the damage (nothing at worst); the
    caller keeps the original either way.
    """
    try:
        tnef = tnefparse.TNEF(data, do_checksum=False)
    except Exception:
        return [], "", ""
    files = []
    for item in tnef.attachments[:MAX_TNEF_FILES]:
        content = item.data if isinstance(item.data, bytes) else b""
        if not content:
            continue  # a rendering stub or an embedded object without bytes
        files.append((_tnef_text(_safe_tnef_name(item)), content))
    return files, _tnef_text(tnef.body), _tnef_text(tnef.htmlbody)


def _safe_tnef_name(item) -> str:
    try:
        return item.long_filename() or item.name
    except Exception:
        return ""


def _tnef_text(value) -> str:
    if not value:
        return ""
    if isinstance(value, bytes):
        return decode_bytes(value.rstrip(b"\x00"), None)[0]
    return str(value).rstrip("\x00")


def guess_type(filename: str) -> str:
    return mimetypes.guess_type(filename, strict=False)[0] or "application/octet-stream"


def is_image(content_type: str) -> bool:
    return content_type.startswith("image/")


def image_marker(filename: str) -> str:
    """How an inline image reads in the text, where it stood: `[image: screenshot.png]`."""
    return f"[image: {filename}]"


# Where an image part stood among the text parts, until the text is put together.
_MARK = re.compile("\ue000(\\d+)\ue001")
# Outlook's plain text says "[cid:image001.png@01DA…]" where the image was; our HTML
# converter says the same for <img src="cid:…">.
_CID_REF = re.compile(r"\[cid:([^\]\s]{1,300})\]", re.I)


def position_mark(index: int) -> str:
    return f"\ue000{index}\ue001"


def is_position_mark(text: str) -> bool:
    return bool(_MARK.fullmatch(text.strip()))


def place_images(text: str, attachments: list[Attachment]) -> str:
    """`text` with each image reference and position mark turned into `[image: name]`.

    A cid: reference to no part of this mail is left as it was (it is what the sender
    wrote); an image already placed by its cid: reference is not placed twice.
    """
    if "[cid:" not in text.lower() and "\ue000" not in text:
        return text
    by_cid = {a.content_id.lower(): a for a in attachments if a.content_id}
    placed: set[int] = set()

    def cid(match: re.Match) -> str:
        found = by_cid.get(match.group(1).strip("<>").lower())
        if found is None:
            return match.group(0)
        placed.add(id(found))
        return image_marker(found.filename)

    text = _CID_REF.sub(cid, text)

    def mark(match: re.Match) -> str:
        index = int(match.group(1))
        if index >= len(attachments) or id(attachments[index]) in placed:
            return ""
        return image_marker(attachments[index].filename)

    text = _MARK.sub(mark, text)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")
