"""Raw bytes in, `ParsedEmail` out: the one entry point of the parsers.

Owns the MIME walk (which part is the body, which are attachments), header, address and
identifier extraction, and the promise that *no input raises*: anything odd becomes a
short string in `ParsedEmail.defects`. mail-parser (`mailparser.parse_from_bytes`) does
the MIME parsing; its `email.message.Message` is walked here with our own charset rules,
because its body decoding trusts charset labels that mail in the wild gets wrong.
Charsets, HTML, attachments, loops and language live in their own modules.
"""

from __future__ import annotations

import email
import email.parser
import email.policy
import email.utils
import hashlib
import io
import logging
import re
from datetime import datetime, timezone
from email.generator import BytesGenerator
from email.message import Message
from functools import lru_cache

import mailparser
from mailparser.exceptions import MailParserRecursionError

from parsers import feed, quotes
from parsers import attachments as files
from parsers.addresses import getaddresses, is_valid_address
from parsers.attachments import (UU_ENCODINGS, UuDecoder, clean_content_type, is_tnef, make_attachment, one_line,
                                 raw_filename)
from parsers.charsets import decode_bytes, decode_header
from parsers.htmltext import MAX_HTML_FOR_TEXT, html_to_text, sanitise_html
from parsers.language import detect_language
from parsers.loops import detect_automatic
from parsers.model import Address, Attachment, ParsedEmail
from parsers.quick import strip_id

# mail-parser logs a warning for every part type it does not render ("'jpeg' not
# handled") and an error for every undecodable header word; per-mail noise that our
# `defects` already carry. Callers may lower the level again after import.
logging.getLogger("mailparser").setLevel(logging.CRITICAL)

MAX_PARTS = 500  # a nesting/part bomb is cut here; real mail has a few dozen at most
MAX_DEPTH = 40
NESTED_NAME = "nested-message.eml"
# The ticket text of a message nested past MAX_DEPTH (a MIME bomb, or a mailer gone wrong):
# its body is not read, and the raw MIME never becomes text; the whole message is kept.
NESTED_NOTICE = (f"[This message is nested more than {MAX_DEPTH} MIME levels deep; what lies deeper was not "
                 f"read. The whole message is kept as the attachment {NESTED_NAME}.]")
MAX_IDS = 200  # References can be abused to be enormous; threading needs the ends
MAX_DEFECTS = 50
SYNTHETIC_DOMAIN = "supportgw.invalid"

_ID_IN_BRACKETS = re.compile(r"<([^<>\s]+)>")
_NEWLINES = re.compile(r"\r\n?")
_ADDR_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # not folding whitespace
_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")  # NUL and lone surrogates break storage


def parse_email(raw: bytes, *, own_addresses: tuple[str, ...] = ()) -> ParsedEmail:
    """Parse one raw RFC 5322 message. Never raises; problems land in `.defects`."""
    try:
        raw = bytes(raw)
    except Exception:
        raw = b""
    if raw.startswith(b"\xef\xbb\xbf"):  # a BOM before the headers hides them all
        raw = raw[3:]
    try:
        return _parse(raw, tuple(own_addresses or ()))
    except RecursionError:
        try:
            return _parse(raw, tuple(own_addresses or ()), too_deep=True)
        except Exception:
            return _unparseable(raw, "nesting-too-deep")
    except Exception as exc:  # last resort: the contract is "never raises"
        return _unparseable(raw, f"parse-failed:{type(exc).__name__}")


def parse_history(raw: bytes, *, own_addresses: tuple[str, ...] = ()) -> ParsedEmail:
    """parse_email for a history import (gateway/edges/importer.py): the same walk, charset
    rules, text, HTML, attachments, addresses and automatic verdict, over the stdlib's
    compat32 parse alone (parsers.feed: the same tree, faster). mail-parser's own pass over every part (a third of parse_email's
    time) is left out: all it adds is its MIME defect categories and its reading of Date,
    and an import stores neither (a message's date is the head scan's, parse_head).
    tests/test_import_parse.py holds the two to the same results on the corpora. Never raises."""
    try:
        raw = bytes(raw)
    except Exception:
        raw = b""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    own = tuple(own_addresses or ())
    try:
        return _parse(raw, own, build=_stdlib_message)
    except RecursionError:
        try:
            return _parse(raw, own, too_deep=True)
        except Exception:
            return _unparseable(raw, "nesting-too-deep")
    except Exception as exc:
        return _unparseable(raw, f"parse-failed:{type(exc).__name__}")


def parse_head(raw: bytes) -> ParsedEmail:
    """The headers alone, read exactly as parse_email reads them (sender, To, Cc, subject,
    Message-ID, In-Reply-To, References, Date), with no body and no Reply-To: a cheap first look
    at a whole history before its conversations are rebuilt (gateway/edges/importer.py). Never raises."""
    try:
        raw = bytes(raw)
        if raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        defects: list[str] = []
        # only the header block goes through the parser: split into lines, the body cost as
        # much as the headers themselves
        head = raw[:_head_end(raw)]
        msg = _headers_only(head)
        # the charset hint only ever reads raw 8-bit header bytes (charsets.decode_8bit)
        hint = None if head.isascii() else _charset_hint(msg)
        raw_headers = _index(msg)

        def addresses(name: str) -> tuple[Address, ...]:
            return _addresses(raw_headers.get(name, []), hint)

        sender_list = addresses("from") or addresses("sender") or addresses("return-path")
        return ParsedEmail(
            sender=sender_list[0] if sender_list else Address("", ""), to=addresses("to"), cc=addresses("cc"),
            reply_to=(),
            subject=one_line(_clean(decode_header(_first(raw_headers, "subject"), hint))).strip(),
            message_id=_message_id(_first(raw_headers, "message-id"), raw, defects),
            in_reply_to=_ids(raw_headers.get("in-reply-to", [])), references=_ids(raw_headers.get("references", [])),
            date=_date(_first(raw_headers, "date")), text="", html="", attachments=(), language="en",
            headers=(), defects=tuple(defects))
    except Exception as exc:
        return _unparseable(b"", f"parse-failed:{type(exc).__name__}")


# --- building the Message ----------------------------------------------------------------


class _LeanMailParser(mailparser.MailParser):
    """mail-parser without its two result dictionaries, which we never read.

    `_make_mail()` re-decodes every header twice to build `mail`/`mail_partial`; we take
    the parsed Message, the defects and the date, and decode headers our own way.
    """

    def _make_mail(self, complete=True):
        return {}


def _message(raw: bytes, defects: list[str]) -> tuple[Message, datetime | None]:
    try:
        parsed = _LeanMailParser.from_bytes(raw)
        defects.extend(f"mime:{name}" for name in sorted(parsed.defects_categories))
        return parsed.message, parsed.date
    except MailParserRecursionError:
        defects.append("nesting-too-deep")
        return _headers_only(raw), None
    except Exception as exc:  # mail-parser's own bugs must not lose the mail
        defects.append(f"mail-parser-failed:{type(exc).__name__}")
    try:
        return email.message_from_bytes(raw), None
    except RecursionError:
        defects.append("nesting-too-deep")
    except Exception as exc:
        defects.append(f"stdlib-parse-failed:{type(exc).__name__}")
    return _headers_only(raw), None


def _stdlib_message(raw: bytes, defects: list[str]) -> tuple[Message, datetime | None]:
    """The Message as mail-parser builds it (email.message_from_bytes, compat32, here without
    its boundary compiles: parsers.feed), without its walk; the date is read from the header by
    the caller."""
    try:
        return feed.message_from_bytes(raw), None
    except RecursionError:
        raise  # parse_history parses again, headers only, as parse_email does
    except Exception as exc:
        defects.append(f"stdlib-parse-failed:{type(exc).__name__}")
    return _headers_only(raw), None


_EMPTY_LINE = re.compile(rb"\n\n|\n\r|\r\r")


def _head_end(raw: bytes) -> int:
    """Where the header block surely ends: past the first empty line, whichever of the line ends
    the parser knows (CRLF, LF, CR) it uses. Every match is an empty line (a line end right after
    another), and the parser's headers stop at the first empty line if not before; the few bytes
    past it cover the LF of a CRLF. The whole message when it has no empty line."""
    found = _EMPTY_LINE.search(raw)
    return found.end() + 1 if found else len(raw)


def _headers_only(raw: bytes) -> Message:
    """Headers parsed, the whole body kept as one opaque payload."""
    parser = email.parser.BytesParser(policy=email.policy.compat32)
    try:
        return parser.parsebytes(raw, headersonly=True)
    except Exception:
        msg = Message()
        msg.set_payload(raw.decode("ascii", "surrogateescape"))
        return msg


# --- the parse ----------------------------------------------------------------------------


def _parse(raw: bytes, own_addresses: tuple[str, ...], *, too_deep: bool = False, build=None) -> ParsedEmail:
    defects: list[str] = []
    if too_deep:
        msg, date = _headers_only(raw), None
        defects.append("nesting-too-deep")
    else:
        msg, date = (build or _message)(raw, defects)
    hint = _charset_hint(msg)

    headers = tuple((_clean(str(name)), _clean(decode_header(value, hint)))
                    for name, value in _raw_items(msg))
    raw_headers = _index(msg)

    def addresses(name: str) -> tuple[Address, ...]:
        return _addresses(raw_headers.get(name, []), hint, defects, name)

    sender_list = addresses("from") or addresses("sender") or addresses("return-path")
    sender = sender_list[0] if sender_list else Address("", "")
    subject = one_line(_clean(decode_header(_first(raw_headers, "subject"), hint))).strip()

    body = _Body(defects, hint)
    if "nesting-too-deep" not in defects:  # else the body is one opaque string: raw MIME, not text
        body.walk(msg)
    if "nesting-too-deep" in defects:
        body.keep_whole(raw)
    text = _clean(body.text())
    if not body.plains and sum(map(len, body.htmls)) > MAX_HTML_FOR_TEXT:
        defects.append("html-text-truncated")
    html = _clean(sanitise_html("\n".join(body.htmls))) if body.htmls else ""

    reply_text, signature = _split_reply(text, defects)
    content_type = _content_type(msg)
    # A robot's unusable From ("MAILER-DAEMON", no domain) still says it is a robot: the
    # loose reading may only ever make us answer less, so it is good enough for that.
    automatic, reason = automatic_verdict(headers, content_type, sender.email, own_addresses)

    return ParsedEmail(
        sender=sender,
        to=addresses("to"),
        cc=addresses("cc"),
        reply_to=addresses("reply-to"),
        subject=subject,
        message_id=_message_id(_first(raw_headers, "message-id"), raw, defects),
        in_reply_to=_ids(raw_headers.get("in-reply-to", [])),
        references=_ids(raw_headers.get("references", [])),
        date=date if date is not None else _date(_first(raw_headers, "date")),
        text=text,
        html=html,
        attachments=tuple(body.attachments),
        language=detect_language(subject, text),
        headers=headers,
        reply_text=reply_text,
        signature=signature,
        automatic=automatic,
        automatic_reason=reason,
        defects=tuple(_dedupe(defects)[:MAX_DEFECTS]),
    )


def _unparseable(raw: bytes, defect: str) -> ParsedEmail:
    text, _ = decode_bytes(raw[: 1024 * 1024], None)
    text = _clean(text)
    return ParsedEmail(
        sender=Address("", ""), to=(), cc=(), reply_to=(), subject="",
        message_id=_synthetic_id(raw), in_reply_to=(), references=(), date=None,
        text=text, html="", attachments=(), language=detect_language("", text),
        headers=(), reply_text=text.strip(), defects=(defect,),
    )


class _Body:
    """Walks the MIME tree in document order, sorting leaves into text, html, files."""

    def __init__(self, defects: list[str], hint: str | None) -> None:
        self.defects = defects
        self.hint = hint
        self.plains: list[str] = []
        self.htmls: list[str] = []
        self.attachments: list[Attachment] = []
        self.tnef_texts: list[str] = []  # winmail.dat bodies: the text when the mail has no other
        self.seen = 0
        self.notice = ""

    def keep_whole(self, raw: bytes) -> None:
        """Nested too deep: the whole message becomes one attachment, and the text says so."""
        self.notice = NESTED_NOTICE
        self.attachments.append(make_attachment(raw, filename=NESTED_NAME, index=len(self.attachments) + 1,
                                                content_type="message/rfc822"))

    def text(self) -> str:
        if any(p.strip() and not files.is_position_mark(p) for p in self.plains):
            found = "\n\n".join(p.strip("\n") for p in self.plains if p.strip()).strip("\n")
        elif self.htmls:
            found = html_to_text("\n".join(self.htmls))
        else:
            found = "\n\n".join(t.strip() for t in self.tnef_texts if t.strip())
        found = files.place_images(found, self.attachments)
        return f"{found}\n\n{self.notice}".strip("\n") if self.notice else found

    def walk(self, root: Message) -> None:
        stack: list[tuple[Message, int, str]] = [(root, 0, "")]
        while stack:
            part, depth, parent = stack.pop()
            self.seen += 1
            if self.seen > MAX_PARTS:
                self.defects.append("too-many-parts")
                return
            ctype = _content_type(part)
            if ctype.startswith("message/") and part.is_multipart():
                self._attach_message(part, ctype)
            elif part.is_multipart():
                if depth >= MAX_DEPTH:
                    self.defects.append("nesting-too-deep")
                    continue
                children = part.get_payload()
                stack.extend((child, depth + 1, ctype) for child in reversed(children)
                             if isinstance(child, Message))
            else:
                self._leaf(part, ctype, parent)

    def _leaf(self, part: Message, ctype: str, parent: str = "") -> None:
        filename = _safe_call(lambda: raw_filename(part, self.hint), "")
        disposition = _safe_call(part.get_content_disposition, None)
        if ctype.startswith("multipart/"):  # no usable boundary: read it as text
            self.defects.append("multipart-without-parts")
            ctype = "text/plain"
        data = _payload_bytes(part, self.defects)
        if ctype in ("text/plain", "text/html") and not filename and disposition != "attachment":
            charset = _safe_call(lambda: part.get_param("charset"), None)
            if isinstance(charset, tuple):  # RFC 2231-encoded charset parameter
                charset = charset[2]
            text, defect = decode_bytes(data, str(charset) if charset else None)
            if defect:
                self.defects.append(defect)
            text = _NEWLINES.sub("\n", text)
            (self.htmls if ctype == "text/html" else self.plains).append(text)
            return
        content_id = _clean(str(part.get("content-id", "") or "")).strip().strip("<>").strip()
        self.attachments.append(make_attachment(
            data,
            filename=filename,
            index=len(self.attachments) + 1,
            content_type=ctype,
            content_id=content_id,
            inline=disposition == "inline" or (disposition is None and bool(content_id)),
        ))
        if is_tnef(ctype, filename):
            self.defects.append("tnef")
            self._open_tnef(data)
        elif self.attachments[-1].inline and files.is_image(ctype) and parent != "multipart/related":
            # Apple Mail's form: an image between two text parts of a multipart/mixed stands
            # there in the text (in multipart/related the HTML's cid: reference places it)
            if self.plains or not self.htmls:
                self.plains.append(files.position_mark(len(self.attachments) - 1))

    def _open_tnef(self, data: bytes) -> None:
        found, plain, html = files.tnef_contents(data)
        for name, content in found:
            self.attachments.append(make_attachment(
                content, filename=name, index=len(self.attachments) + 1,
                content_type=files.guess_type(name)))
        body = plain or (html_to_text(html) if html else "")
        if body:
            self.tnef_texts.append(_NEWLINES.sub("\n", body))

    def _attach_message(self, part: Message, ctype: str) -> None:
        """Nested messages (and DSN blocks) are kept whole as files, never as body."""
        chunks = []
        for inner in part.get_payload():
            if isinstance(inner, Message):
                flat = _as_bytes(inner)
                if flat is None:
                    self.defects.append("nested-message-unflattenable")
                    flat = b""
                chunks.append(flat)
        filename = _safe_call(lambda: raw_filename(part, self.hint), "")
        if not filename and ctype == "message/rfc822" and chunks:
            inner = part.get_payload()[0]
            inner_subject = decode_header(inner.get("subject", ""), self.hint).strip()
            filename = f"{inner_subject[:80]}.eml" if inner_subject else ""
        self.attachments.append(make_attachment(
            b"".join(chunks),
            filename=filename,
            index=len(self.attachments) + 1,
            content_type=ctype,
            inline=False,
        ))


# --- small helpers -------------------------------------------------------------------------


def _safe_call(fn, default):
    try:
        return fn()
    except Exception:
        return default


def _raw_items(msg: Message) -> list[tuple[str, str]]:
    # raw_items(): compat32 would wrap 8-bit values in Header objects; we decode ourselves.
    return list(msg.raw_items())


def _index(msg: Message) -> dict[str, list[str]]:
    index: dict[str, list[str]] = {}
    for name, value in msg.raw_items():
        index.setdefault(str(name).lower(), []).append(str(value))
    return index


def _first(index: dict[str, list[str]], name: str) -> str:
    values = index.get(name)
    return values[0] if values else ""


def _content_type(part: Message) -> str:
    try:  # RFC 2045 5.2: a malformed type (a control character in it, say) reads as text/plain
        return clean_content_type(part.get_content_type(), "text/plain")
    except Exception:
        return "text/plain"


def _charset_hint(msg: Message) -> str | None:
    """The first declared body charset: the best guess for raw 8-bit header bytes.

    Only the message's own parts count, not those of a message forwarded inside it:
    its charset says nothing of our headers, and the large-mail path, which stores a
    big forwarded message unread, must guess the same."""
    try:
        stack, seen = [msg], 0
        while stack and seen <= 20:
            part = stack.pop()
            seen += 1
            charset = part.get_content_charset()
            if charset:
                return charset
            if part.is_multipart() and not part.get_content_type().startswith("message/"):
                stack.extend(reversed([p for p in part.get_payload() if isinstance(p, Message)]))
    except Exception:
        pass
    return None


def _payload_bytes(part: Message, defects: list[str]) -> bytes:
    if str(part.get("content-transfer-encoding", "")).strip().lower() in UU_ENCODINGS:
        payload = part.get_payload()  # the same lenient decoder as the large-mail path
        if isinstance(payload, str):
            return UuDecoder().feed(payload.encode("utf-8", "surrogateescape"))
    try:
        data = part.get_payload(decode=True)
    except Exception as exc:
        defects.append(f"payload-decode-failed:{type(exc).__name__}")
        return b""
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode("utf-8", "surrogateescape")
    return b""


class _RawHeaderGenerator(BytesGenerator):
    """Flattens with the headers exactly as received.

    The stock generator re-folds every header through email.header.Header, which made
    flattening nested messages cost more than parsing them, and changes the bytes.
    """

    def _write_headers(self, msg: Message) -> None:
        for name, value in msg.raw_items():
            self._fp.write(f"{name}: {value}".encode("utf-8", "surrogateescape"))
            self._fp.write(self._encode(self._NL))
        self._fp.write(self._encode(self._NL))


def _as_bytes(msg: Message) -> bytes | None:
    out = io.BytesIO()
    try:
        _RawHeaderGenerator(out, mangle_from_=False, policy=email.policy.compat32).flatten(msg)
        return out.getvalue()
    except Exception:  # RecursionError on nesting bombs, odd payload types
        pass
    try:
        return msg.as_string(policy=email.policy.compat32).encode("utf-8", "surrogateescape")
    except Exception:
        return None


def _addresses(values: list[str], hint: str | None, defects: list[str] | None = None,
               header: str = "") -> tuple[Address, ...]:
    """The valid addresses of one header, strictly parsed (parsers.addresses); an address
    that is not a usable local@domain is left out and named in `defects`."""
    if not values:
        return ()
    key = tuple(values)
    # only short headers are remembered: a hostile mail's 95,000-address Cc must not stay in memory
    read = _read_addresses if sum(map(len, key)) <= _REMEMBERED_HEADER_CHARS else _read_addresses.__wrapped__
    found, dropped = read(key, hint)
    if dropped and defects is not None:
        defects.append(f"invalid-address:{header}")
    return found


_REMEMBERED_HEADER_CHARS = 2000


@lru_cache(maxsize=4096)
def _read_addresses(values: tuple[str, ...], hint: str | None) -> tuple[tuple[Address, ...], bool]:
    """(the valid addresses, whether any was left out) of one header's values. Remembered: a
    pure function of its text, and a mailbox's To and Cc, and its regular correspondents'
    From, come back mail after mail (half the cost of reading a history's headers)."""
    try:
        pairs = getaddresses(list(values))
    except Exception:
        pairs = []
    found = []
    dropped = not pairs and any(v.strip() for v in values)
    for name, addr in pairs:
        addr = decode_header(addr, hint)
        if _ADDR_CONTROLS.search(addr):  # refused, not repaired: "a\0b@x" is not ab@x's mail
            dropped = True
            continue
        addr = "".join(_clean(addr).strip().strip("<>").lower().split())
        name = one_line(_clean(decode_header(name, hint))).strip().strip('"').strip()
        if is_valid_address(addr):
            found.append(Address(name=name, email=addr))
        elif addr or name:
            dropped = True
    return tuple(found), dropped


def clear_caches() -> None:
    """Forget what the parse remembers between mails (the addresses read): a benchmark's
    measured pass starts as cold as a new process's."""
    _read_addresses.cache_clear()


def automatic_verdict(headers: tuple[tuple[str, str], ...], content_type: str, sender: str,
                      own_addresses: tuple[str, ...]) -> tuple[bool, str]:
    """parsers.loops' verdict, the From read loosely when it held no valid address."""
    if not sender:
        try:
            pairs = email.utils.getaddresses([v for k, v in headers if k.lower() == "from"])
        except Exception:
            pairs = []
        sender = pairs[0][1].strip().lower() if pairs else ""
    return detect_automatic(headers, content_type, sender, own_addresses)


def _message_id(value: str, raw: bytes, defects: list[str]) -> str:
    value = decode_header(value)
    match = _ID_IN_BRACKETS.search(value)
    found = match.group(1) if match else (value.split() or [""])[0]
    found = strip_id(found)[:998]
    if found:
        return found
    defects.append("no-message-id")
    return _synthetic_id(raw)


def _synthetic_id(raw: bytes) -> str:
    return synthetic_id(hashlib.sha256(raw).hexdigest())


def synthetic_id(sha256_hex: str) -> str:
    """The Message-ID given to a message without one: named after its content's hash."""
    return f"{sha256_hex[:32]}@{SYNTHETIC_DOMAIN}"


def _ids(values: list[str]) -> tuple[str, ...]:
    found: list[str] = []
    for value in values:
        value = decode_header(value)
        ids = _ID_IN_BRACKETS.findall(value) or [t for t in value.split() if "@" in t]
        found.extend(i for i in (strip_id(x) for x in ids) if i)
    unique = _dedupe(found)
    if len(unique) > MAX_IDS:  # keep the root and the most recent ancestors
        unique = unique[:1] + unique[-(MAX_IDS - 1):]
    return tuple(unique)


def _date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(decode_header(value).strip())
    except Exception:
        return None
    if parsed is None:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _split_reply(text: str, defects: list[str]) -> tuple[str, str]:
    try:
        reply = quotes.split_reply(text)
        return reply.reply_text, reply.signature
    except Exception as exc:  # another module's bug must not lose the mail
        defects.append(f"split-reply-failed:{type(exc).__name__}")
        return text.strip(), ""


def _clean(value: str) -> str:
    if _BAD_CHARS.search(value):
        value = value.replace("\x00", "")
        value = value.encode("utf-8", "replace").decode("utf-8", "replace")
    return value


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
