"""Turning mail bytes into text: charset labels, body decoding, header decoding.

Owns the rules for which codec a charset label really means (mail in the wild lies:
"gb2312" is usually GBK or GB18030, "big5" is often Big5-HKSCS, "iso-8859-1" is usually
windows-1252), the fallback chain for unknown or wrong labels, and RFC 2047 / raw 8-bit
header decoding. Never raises on any input; a problem comes back as a short defect string.
It knows nothing about MIME structure (that is parsers/message.py).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from functools import lru_cache

# Labels whose honest meaning is a superset codec. Decoding with the superset is always
# safe (every valid byte sequence of the subset decodes the same way).
_SUPERSETS = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "gb18030": "gb18030",
    "cp936": "gb18030",
    "ms936": "gb18030",
    "euc-cn": "gb18030",
    "euccn": "gb18030",
    "x-euc-cn": "gb18030",
    "x-gbk": "gb18030",
    "csgb2312": "gb18030",
    "gb_2312-80": "gb18030",
    "gb_2312": "gb18030",
    "chinese": "gb18030",
    "big5": "big5hkscs",
    "big-5": "big5hkscs",
    "x-big5": "big5hkscs",
    "cn-big5": "big5hkscs",
    "csbig5": "big5hkscs",
    "big5-hkscs": "big5hkscs",
    "cp950": "big5hkscs",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "euc-kr": "cp949",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "x-sjis": "cp932",
    "sjis": "cp932",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "iso8859-1": "cp1252",
    "us-ascii": "ascii",
    "ascii": "ascii",
    "ansi_x3.4-1968": "ascii",
    "utf8": "utf-8",
    "unicode-1-1-utf-8": "utf-8",
    "x-unicode20utf8": "utf-8",
    "iso-8859-8-i": "iso-8859-8",
}

# What to try when the labelled codec fails strictly (besides utf-8 and detection).
_FALLBACK = {"big5hkscs": "cp950", "cp1252": "latin-1", "ascii": "cp1252"}

# Codecs that are not text encodings at all (a label like "base64" or "rot13" must not
# reach bytes.decode).
_NOT_TEXT = {"base64_codec", "bz2_codec", "hex_codec", "quopri_codec", "uu_codec",
             "zlib_codec", "rot_13", "idna", "punycode", "unicode_escape",
             "raw_unicode_escape", "mbcs", "oem", "undefined"}

_DETECT_LIMIT = 16 * 1024  # charset-normalizer is slow on big inputs; a sample is plenty


@lru_cache(maxsize=256)
def codec_for(label: str | None) -> str | None:
    """The Python codec to decode `label` with, or None when the label is unusable."""
    if not label:
        return None
    name = label.strip().strip("\"'").strip().lower()
    if "*" in name:  # RFC 2231 language suffix: "utf-8*en"
        name = name.split("*", 1)[0]
    name = _SUPERSETS.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError, TypeError):
        return None
    if info.name in _NOT_TEXT or not getattr(info, "_is_text_encoding", True):
        return None
    return _SUPERSETS.get(info.name, info.name)


# Below this many non-ASCII bytes (a raw 8-bit subject, a one-line body) statistical
# detection has too little to go on: GBK "服务器无法启动" comes back as Korean, "测试" as Big5.
_SHORT_CJK = 48


def _common_share(text: str, codec: str) -> float:
    """How much of `text`'s non-ASCII reads as everyday Chinese in `codec`'s own repertoire:
    GB2312's first level (3,755 commonest hanzi, lead bytes B0-D7) or Big5's common hanzi
    (lead bytes A4-C6), full-width punctuation included; 0.5 for a rarer character of the set."""
    chars = [c for c in text if ord(c) > 0x7F]
    if not chars:
        return 0.0
    table, common = ("gb2312", range(0xA1, 0xD8)) if codec == "gb18030" else ("big5", range(0xA1, 0xC7))
    score = 0.0
    for c in chars:
        try:
            lead = c.encode(table)[0]
        except UnicodeEncodeError:
            continue
        score += 1.0 if lead in common else 0.5
    return score / len(chars)


def _short_cjk(data: bytes) -> str | None:
    """GB18030 or Big5 for a short non-UTF-8 sample that reads as everyday Chinese in one of them.

    Both score on their own common characters; a tie goes to GB18030 (the mainland mail this
    gateway mostly sees). Korean EUC-KR shares GB2312's byte ranges and is indistinguishable
    at this length; a declared charset (the body's, for headers) still decides it first."""
    best, best_score = None, 0.0
    for codec in ("gb18030", "big5hkscs"):
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        score = _common_share(text, codec)
        if score > best_score:
            best, best_score = codec, score
    return best if best_score >= 0.75 else None


def _detect(data: bytes) -> str | None:
    if sum(b > 0x7F for b in data[:_SHORT_CJK * 4]) < _SHORT_CJK:
        guess = _short_cjk(data)
        if guess:
            return guess
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(data[:_DETECT_LIMIT]).best()
    except Exception:  # detection is a best effort, never a reason to fail
        return None
    if best is None:
        return None
    return codec_for(best.encoding)


def decode_bytes(data: bytes, label: str | None = None) -> tuple[str, str | None]:
    """Decode `data` declared as `label`; return (text, defect or None)."""
    if not data:
        return "", None
    if data.isascii():
        # Pure ASCII decodes identically in every charset we accept (bar UTF-7/16, which
        # never arrive unlabelled and stay correct via the labelled path below).
        codec = codec_for(label)
        if codec is None or codec in ("ascii", "utf-8", "cp1252", "gb18030", "big5hkscs"):
            return data.decode("ascii"), (None if codec or not label else _defect("unknown-charset", label))
    codec = codec_for(label)
    defect = None
    if codec:
        try:
            return data.decode(codec), None
        except (UnicodeDecodeError, LookupError):
            defect = _defect("charset-mismatch", label)
        fallback = _FALLBACK.get(codec)
        if fallback and codec != "ascii":
            try:
                return data.decode(fallback), None
            except UnicodeDecodeError:
                pass
    elif label:
        defect = _defect("unknown-charset", label)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return undo_double_encoding(text, codec), defect
    if codec and codec != "ascii":
        # A few bad bytes in otherwise good text: trust the label over guessing.
        text = data.decode(codec, "replace")
        if text.count("\ufffd") * 100 <= max(len(text), 1):
            return text, defect or _defect("charset-mismatch", label)
    guessed = _detect(data)
    if guessed:
        try:
            return data.decode(guessed), defect or "charset-guessed:" + guessed
        except (UnicodeDecodeError, LookupError):
            pass
    return data.decode("latin-1", "replace"), defect or "charset-unknown-8bit"


def _defect(kind: str, label: str | None) -> str:
    clean = "".join(c for c in (label or "") if c.isprintable())[:40]
    return f"{kind}:{clean}"


# --- headers ---------------------------------------------------------------------------

_LINEBREAK = re.compile(r"\r\n|\r|\n")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_Q_HEX = re.compile(rb"=([0-9A-Fa-f]{2})")
_SURROGATE = re.compile("[\udc80-\udcff]")


def unfold(value: str) -> str:
    return _LINEBREAK.sub("", value)


def _decode_q(text: str) -> bytes:
    raw = text.replace("_", " ").encode("utf-8", "surrogateescape")
    return _Q_HEX.sub(lambda m: bytes([int(m.group(1), 16)]), raw)


def _decode_b(text: str) -> bytes:
    raw = text.encode("utf-8", "surrogateescape").rstrip(b"=")
    raw = re.sub(rb"[^A-Za-z0-9+/]", b"", raw)
    raw = raw[: len(raw) - (len(raw) % 4 == 1)]  # one stray char can never be data
    try:
        return base64.b64decode(raw + b"=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        return b""


_CJK_CODECS = {"gb18030", "big5hkscs", "cp950", "cp949", "cp932", "euc_jp", "iso2022_jp"}
_LATIN1_ONLY = re.compile(r"[^\x00-\xff]")
_CJK_CHAR = re.compile(r"[\u3000-\u9fff\uac00-\ud7af\uff00-\uffef]")


def undo_double_encoding(text: str, codec: str | None) -> str:
    """Repair CJK bytes that a relay read as latin-1 and re-encoded as UTF-8.

    Only when the mail declares a CJK charset, every character fits latin-1, and the
    bytes then decode strictly as that charset into actual CJK text.
    """
    if codec not in _CJK_CODECS or text.isascii() or _LATIN1_ONLY.search(text):
        return text
    try:
        repaired = text.encode("latin-1").decode(codec)
    except (UnicodeError, LookupError):
        return text
    return repaired if _CJK_CHAR.search(repaired) else text


def decode_8bit(value: str, hint: str | None = None) -> str:
    """Recover raw 8-bit header bytes (carried as surrogate escapes) into text."""
    if not _SURROGATE.search(value):
        return value
    data = value.encode("ascii", "surrogateescape")
    hinted = codec_for(hint)
    try:
        return undo_double_encoding(data.decode("utf-8"), hinted)
    except UnicodeDecodeError:
        pass
    if hinted:
        try:
            return data.decode(hinted)
        except (UnicodeDecodeError, LookupError):
            pass
    text, _ = decode_bytes(data, None)
    return text


def decode_header(value: object, hint: str | None = None) -> str:
    """Decode one header value: unfold, raw 8-bit bytes, RFC 2047 encoded-words.

    Adjacent encoded-words in the same charset are joined before decoding, because
    mailers split multi-byte characters across words.
    """
    if value is None:
        return ""
    if not isinstance(value, str):
        value = str(value)
    value = decode_8bit(unfold(value), hint)
    if "=?" not in value:
        return value
    out: list[str] = []
    run: bytearray = bytearray()
    run_charset: str | None = None
    pos = 0

    def flush() -> None:
        nonlocal run, run_charset
        if run:
            out.append(decode_bytes(bytes(run), run_charset)[0])
        run = bytearray()
        run_charset = None

    for match in _ENCODED_WORD.finditer(value):
        between = value[pos:match.start()]
        if between and not (between.isspace() and run_charset is not None):
            flush()
            out.append(between)
        charset, kind, payload = match.groups()
        charset = charset.split("*", 1)[0].lower()
        data = _decode_b(payload) if kind in "bB" else _decode_q(payload)
        if run_charset is not None and charset != run_charset:
            flush()
        run_charset = charset
        run.extend(data)
        pos = match.end()
    flush()
    out.append(value[pos:])
    return "".join(out)
