"""Quote and signature stripping: find the new text of a reply.

`split_reply(text)` cuts a plain-text mail body into the text the sender
wrote now (`reply_text`), the history they quoted (`quoted`) and their
signature (`signature`). The ticket keeps the full original elsewhere; this
module only decides what is *new*, so that a ticket's history shows each
message's text once.

How it works: the body is read line by line (never with one regex over the
whole text, so a 750 KB quote cannot make it backtrack) and each line is
classed: blank, new text, `>`-quoted, a reply header ("On ... wrote:",
"在 ... 写道：", an Outlook/Foxmail "From:/Sent:" block, "-----Original
Message-----", "原始邮件", forwarded-message banners) or a signature start
("-- ", "Sent from my iPhone", "发自我的iPhone"). Localised header and
"sent from" phrases for other languages come from mail-parser-reply's
tables, applied one bounded line window at a time.

Rules, in order:
- a header on an unquoted line that is *not* followed by `>` lines (Outlook,
  Gmail forwards, Chinese clients) starts the history: all of it is quoted;
- a signature start cuts the reply; the signature runs to the next quote or
  header, and whatever follows is quoted;
- `>` blocks introduced by "On ... wrote:" are quoted, but unquoted text after
  them is an inline answer and stays in the reply (with the quotes it answers);
- trailing quotes are cut; a body that is *only* a bare quote is kept.

Nothing is ever dropped: reply_text, quoted and signature together hold every
non-blank character of the input. This module must not parse MIME or HTML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from mailparser_reply.constants import MAIL_LANGUAGES


@dataclass(frozen=True)
class Reply:
    reply_text: str  # the new text alone
    quoted: str  # the quoted history that was cut
    signature: str  # the signature that was cut


# Lines longer than this are never headers or signatures; skipping them keeps
# every regex below bounded no matter how the input is shaped.
_MAX_HEADER_LINE = 400
_MAX_LIBRARY_HEADER = 250
_WROTE_WINDOW = 5  # a wrapped "On ... wrote:" spans at most this many lines

_QUOTE_PREFIX = re.compile(r"[ \t]*(?:>[ \t]?)+")
_WROTE_END = re.compile(r"[:：]\s*$")
_WROTE_WORD = re.compile(
    r"\b(?:wrote|writes|schrieb|a\s+écrit|escribió|escribio|ha\s+scritto|schreef|skrev|"
    r"kirjoitti|napisał|pisze|написал|написала|написав|пише|escreveu|yazdı|napsal)(?!\w)|写\s*道|寫\s*道|書きました",
    re.IGNORECASE,
)
_WROTE_OPENER = re.compile(
    r"^(?:On|Am|Le|El|Il|Op|Den|Dne|W\s+dniu|Em|På|Pe|Il\s+giorno|在|于|\d)", re.IGNORECASE
)
_WROTE_OPENER_WORD = re.compile(r"^(?:On|Am|Le|El|Il|Op|Den|Dne|W\s+dniu|Em|På|在)\s", re.IGNORECASE)
_HAS_DATE_OR_ADDRESS = re.compile(r"\d|@")
# Gmail's older headers carry no "wrote": "2016-10-24 15:36 GMT+02:00 Name <a@b.c>:"
_DATE_LED_HEADER = re.compile(
    r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\s+(?:\d{1,2}:\d{2}\s+GMT[+-]\d{2}:?\d{2}\b|.*<[^<>\s]+@[^<>\s]+>\s*:?\s*$)"
)
# Yandex, Mail.ru and other webmail put no "wrote" in the line above a quote:
# '26.06.2014, 14:41, "Name" <a@b.c>:'. Such a line only counts when a quote follows it.
_ADDRESS_ATTRIBUTION = re.compile(r"^(?=[^<]*\d)[^<>]{0,200}<[^<>\s]+@[^<>\s]+>\s*[:：]$")
# Zoho: "---- On Tue, 22 Dec 2015 14:17:36 +0530 Name <a@b.c> wrote ----"
_DASHED_WROTE = re.compile(r"^-{2,}\s*\S.{0,300}?(?:wrote|写道)\s*-{2,}$", re.IGNORECASE)

_FROM_KEYS = (
    r"From|Von|De|Van|Od|Fra|Från|Da|От|Lähettäjä|Feladó|Kimden|差出人|보낸\s*사람|"
    r"发件人|發件人|寄件人|寄件者"
)
_OTHER_KEYS = (
    r"Risposta|Rispondi\s+a|Antwort\s+an|Répondre\s+à|Responder\s+a|Sent|Date|To|Subject|Cc|Reply-To|Gesendet|Datum|An|Betreff|Envoyé|À|Objet|Enviado|"
    r"Para|Asunto|Fecha|Assunto|Inviato|Oggetto|A|Verzonden|Aan|Onderwerp|Skickat|Till|"
    r"Ämne|Sendt|Til|Emne|Dato|Wysłano|Do|Temat|Data|Отправлено|Кому|Тема|Дата|件名|"
    r"送信日時|宛先|날짜|받는\s*사람|제목|发送时间|發送時間|日期|时间|時間|收件人|收件者|"
    r"抄送|副本|主题|主題|主旨|寄件日期|傳送時間"
)
_HEADER_KEY = re.compile(rf"^[*\s]*(?:({_FROM_KEYS})|(?:{_OTHER_KEYS}))[*\s]*[:：]", re.IGNORECASE)

_BANNER = re.compile(
    r"^[-=_*\s]*(?:original\s+message|forwarded\s+message|message\s+d'origine|"
    r"ursprüngliche\s+nachricht|weitergeleitete\s+nachricht|mensaje\s+original|"
    r"messaggio\s+originale|oorspronkelijk\s+bericht|originalmeddelande|"
    r"oprindelig\s+meddelelse|opprinnelig\s+melding|original\s+e-?mail|"
    r"原始邮件|原始郵件|转发邮件信息|转发的邮件|轉寄郵件|邮件原文)[-=_*\s]*$"
    r"|^(?:begin\s+forwarded\s+message|anfang\s+der\s+weitergeleiteten\s+nachricht|"
    r"début\s+du\s+message\s+réexpédié)\s*:",
    re.IGNORECASE,
)
_RULE_LINE = re.compile(r"^[_\-=]{20,}$")

_SIG_DASHES = re.compile(r"^(?:--|__)\s*$")
_SIG_DASH_NAME = re.compile(r"^-[^\W\d_]")  # "-Abhishek Kona", not "- a bullet"
_DECORATION = re.compile(r"^[-_=~*#+ᐧ•]+$")
_DEVICE = (
    r"iphone|ipad|ipod|android|blackberry|mobile|phone|cell|device|galaxy|samsung|htc|"
    r"nokia|windows|huawei|xiaomi|pixel|tablet|smartphone|outlook|mail|mailbox|airmail|"
    r"yahoo|sparrow|k-9|ti-\d+|alcatel|motorola|oneplus"
)
_MOBILE_SIG = re.compile(
    rf"^[(<\[]*\s*(?:"
    rf"sent\s+(?:from|with|via|by|using)\s+(?:my\s+|the\s+|a\s+)?(?:\S+\s+){{0,3}}?\[?(?:{_DEVICE})\b"
    rf"|sent\s+from\s+my\s+\S+(?:\s+\S+)?\s*$"
    rf"|get\s+\[?outlook\s+for|from\s+my\s+(?:{_DEVICE})\b|sent\s+from\s+\[?mail\]?"
    rf"|envoyé\s+(?:de|depuis)\s+mon|von\s+meinem\s+\S+\s+gesendet|gesendet\s+von\s+meinem"
    rf"|diese\s+nachricht\s+wurde\s+von\s+meinem|verzonden\s+(?:met|vanaf|van\s+mijn)"
    rf"|enviado\s+desde\s+mi|inviato\s+da(?:l)?\s+(?:mio|il\s+mio|iphone|android)"
    rf"|skickat\s+från\s+min|sendt\s+fra\s+min|wysłano\s+z"
    rf"|发自我的|发自\s*(?:网易|QQ|Foxmail|腾讯|iPhone|iPad|Android)|来自我的|从我的.{{0,20}}发送"
    rf"|發自我的|從我的.{{0,20}}傳送|iPhoneから送信"
    rf")",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _Line:
    start: int  # offsets into the original text
    end: int
    depth: int  # how many ">" levels
    bare: str  # the content without quote markers or surrounding whitespace


def _lines(text: str) -> list[_Line]:
    out: list[_Line] = []
    pos = 0
    for raw in text.splitlines(keepends=True):
        start, pos = pos, pos + len(raw)
        content = raw.rstrip("\r\n")
        # Outlook can glue its "____" rule to the last line of the reply.
        rule_at = _trailing_rule_at(content)
        if rule_at > 0 and content[:rule_at].strip():
            cut = start + rule_at
            out.append(_make_line(text, start, cut))
            start = cut
        out.append(_make_line(text, start, pos))
    return out


def _trailing_rule_at(content: str) -> int:
    """Where a run of 20+ underscores ending the line starts, or -1 (no regex: no backtracking)."""
    stripped = content.rstrip()
    run = len(stripped) - len(stripped.rstrip("_"))
    return len(stripped) - run if run >= 20 else -1


def _make_line(text: str, start: int, end: int) -> _Line:
    content = text[start:end].rstrip("\r\n")
    prefix = _QUOTE_PREFIX.match(content)
    depth = prefix.group().count(">") if prefix else 0
    bare = content[prefix.end():] if prefix else content
    return _Line(start, end, depth, bare.strip())


@lru_cache(maxsize=1)
def _library_wrote_headers() -> tuple[re.Pattern, ...]:
    """mail-parser-reply's localised "... wrote:" patterns, one per language."""
    patterns = []
    for table in MAIL_LANGUAGES.values():
        source = table.get("wrote_header")
        if source:
            patterns.append(re.compile(source, re.IGNORECASE))
    return tuple(patterns)


def _wrote_header_span(lines: list[_Line], i: int) -> int:
    """How many lines the "On ... wrote:" header starting at line i spans (0: none)."""
    first = lines[i].bare
    if not first or len(first) > _MAX_HEADER_LINE:
        return 0
    window = range(i, min(i + _WROTE_WINDOW + 1, len(lines)))
    if not any(lines[k].bare.endswith((":", "：")) for k in window):
        return 0  # cheap test first: every "wrote:" header ends in a colon
    joined, blanks = "", 0
    for k in window:
        part = lines[k].bare
        # Wrapping can push "> wrote:" onto a line that looks quoted, and HTML-converted
        # headers can hold one blank line, but only after an opener like "On".
        if not part:
            blanks += 1
            if blanks > 1 or not _WROTE_OPENER_WORD.match(first):
                return 0
            continue
        if k > i and _WROTE_OPENER_WORD.match(part):
            return 0  # another header starts here; this line is not part of it
        if len(part) > _MAX_HEADER_LINE:
            return 0
        joined = f"{joined} {part}" if joined else part
        if _WROTE_END.search(joined) and _is_wrote_header(joined, first, single=k == i):
            return k - i + 1
    return 0


def _is_wrote_header(joined: str, first: str, single: bool) -> bool:
    if _WROTE_WORD.search(joined) and _HAS_DATE_OR_ADDRESS.search(joined):
        # A wrapped header must also open like one, or prose ending in "wrote:" would match.
        if single or _WROTE_OPENER.match(first) or _WROTE_WORD.search(first):
            return True
    # The library's patterns nest lazy quantifiers: only short candidates go to them.
    return len(joined) <= _MAX_LIBRARY_HEADER and any(p.fullmatch(joined) for p in _library_wrote_headers())


def _header_block_span(lines: list[_Line], i: int) -> int:
    """Lines spanned by an Outlook/Foxmail-style "From:/Sent:/To:" block at line i."""
    if lines[i].depth or len(lines[i].bare) > _MAX_HEADER_LINE:
        return 0
    first = _HEADER_KEY.match(lines[i].bare)
    if not first:
        return 0
    keys, has_from, last, k, blanks = 1, bool(first.group(1)), i, i + 1, 0
    while k < len(lines) and k <= i + 8 and blanks <= 1:
        line = lines[k]
        if not line.bare:
            blanks += 1
        elif line.depth or len(line.bare) > _MAX_HEADER_LINE:
            break
        else:
            match = _HEADER_KEY.match(line.bare)
            if not match:
                # A wrapped "Subject:" continues on a line of its own.
                following = lines[k + 1] if k + 1 < len(lines) else None
                if following is None or not _HEADER_KEY.match(following.bare):
                    break
                k += 1
                continue
            keys, has_from, last, blanks = keys + 1, has_from or bool(match.group(1)), k, 0
        k += 1
    return last - i + 1 if keys >= 2 and has_from else 0


def _hard_header_at(lines: list[_Line], i: int) -> int:
    """Line index where the history starts if line i opens it, else -1."""
    line = lines[i]
    if line.depth or len(line.bare) > _MAX_HEADER_LINE:
        return -1
    if _BANNER.match(line.bare) or _DASHED_WROTE.match(line.bare):
        return i
    if _DATE_LED_HEADER.match(line.bare):
        return i
    if _RULE_LINE.match(line.bare) and i + 1 < len(lines) and _next_is_header(lines, i + 1):
        return i
    if _header_block_span(lines, i):
        return _include_rule_above(lines, i)
    span = _wrote_header_span(lines, i)
    if span and not _followed_by_quote(lines, i + span):
        return i
    return -1


def _next_is_header(lines: list[_Line], i: int) -> bool:
    for k in range(i, min(i + 3, len(lines))):
        if lines[k].bare:
            return bool(_header_block_span(lines, k) or _wrote_header_span(lines, k))
    return False


def _include_rule_above(lines: list[_Line], i: int) -> int:
    """Start the history at a "-----"/"_____" rule just above a header block."""
    k = i - 1
    while k >= 0 and not lines[k].bare:
        k -= 1
    if k >= 0 and not lines[k].depth and _DECORATION.match(lines[k].bare):
        return k
    return i


def _followed_by_quote(lines: list[_Line], i: int) -> bool:
    for k in range(i, min(i + 50, len(lines))):
        if lines[k].bare or lines[k].depth:
            return lines[k].depth > 0
    return False


def _signature_starts(lines: list[_Line], i: int) -> bool:
    line = lines[i]
    if line.depth or not line.bare or len(line.bare) > _MAX_HEADER_LINE:
        return False
    if _SIG_DASHES.match(line.bare):
        return True
    if _MOBILE_SIG.match(line.bare) and len(line.bare.split()) <= 14:
        return True
    if _RULE_LINE.match(line.bare) or (len(line.bare) >= 10 and _DECORATION.match(line.bare)):
        # A long rule near the end opens a footer ("riak-users mailing list ...").
        return _only_text_to_end(lines, i + 1, 6)
    if _SIG_DASH_NAME.match(line.bare) and len(line.bare.split()) <= 4:
        # "-Name" signs off only when little unquoted text follows it.
        rest = [ln for ln in lines[i + 1: i + 5] if ln.bare and not ln.depth]
        return len(rest) <= 2
    return False


def split_reply(text: str) -> Reply:
    """Split a plain-text body into (new text, quoted history, signature). Never raises."""
    lines = _lines(text or "")
    n = len(lines)
    headed: set[int] = set()  # "On ... wrote:" headers and the quote block under each
    stop, sig_start, sig_end = _scan(lines, 0, headed)
    new = [k for k in range(stop) if k not in headed and _is_new_text(lines[k])]
    if not new and stop < n and sig_start < 0:
        # The history starts at the top (a forward, or a pasted mail): its body is
        # the only text there is, so read on after its header instead of keeping "".
        top_end = _hard_header_end(lines, stop)
        headed.update(range(0, top_end))
        stop, sig_start, sig_end = _scan(lines, top_end, headed)
        new = [k for k in range(stop) if k not in headed and _is_new_text(lines[k])]
    if new:
        reply_end = new[-1] + 1
    elif headed or stop < n:
        reply_end = 0  # nothing new: a forward, or a reply that only quotes
    else:
        reply_end = stop  # a body that is only a bare quote: keep it, it is all we have

    label = ["quoted"] * n
    for k in range(reply_end):
        if k not in headed:
            label[k] = "reply"
    if _only_decoration(lines, reply_end, stop):
        for k in range(reply_end, stop):
            label[k] = "signature"
    for k in range(max(sig_start, 0), sig_end if sig_start >= 0 else 0):
        label[k] = "signature"
    return Reply(
        reply_text=_collect(text, lines, label, "reply"),
        quoted=_collect(text, lines, label, "quoted"),
        signature=_collect(text, lines, label, "signature"),
    )


def _scan(lines: list[_Line], i: int, headed: set[int]) -> tuple[int, int, int]:
    """Read from line i to the history or signature: (stop, signature start, signature end)."""
    n = len(lines)
    while i < n:
        hard = _hard_header_at(lines, i)
        if hard >= 0:
            return hard, -1, n
        if _signature_starts(lines, i):
            return i, i, _signature_end(lines, i)
        span = _wrote_header_span(lines, i) or _attribution_span(lines, i)
        i = _mark_headed_quote(lines, i, span, headed) if span else i + 1
    return n, -1, n


def _attribution_span(lines: list[_Line], i: int) -> int:
    """1 when line i is a date-and-address line that introduces the quote under it."""
    line = lines[i]
    if line.depth or not line.bare.endswith((":", "：")) or len(line.bare) > _MAX_HEADER_LINE:
        return 0
    return 1 if _ADDRESS_ATTRIBUTION.match(line.bare) and _followed_by_quote(lines, i + 1) else 0


def _hard_header_end(lines: list[_Line], h: int) -> int:
    """The line after the header (banner, rule, key block, "wrote:" line) opening at h."""
    k = h
    for _ in range(4):
        while k < len(lines) and not lines[k].bare:
            k += 1
        if k >= len(lines) or lines[k].depth:
            break
        bare = lines[k].bare
        if _BANNER.match(bare) or _DASHED_WROTE.match(bare) or _DATE_LED_HEADER.match(bare) \
                or _DECORATION.match(bare):
            k += 1
        elif span := (_header_block_span(lines, k) or _wrote_header_span(lines, k)):
            k += span
        else:
            break
    return k


def _mark_headed_quote(lines: list[_Line], i: int, span: int, headed: set[int]) -> int:
    """Mark an "On ... wrote:" header and the quote under it; return the next line to read."""
    depth = lines[i].depth
    k = i + span
    headed.update(range(i, k))
    while k < len(lines) and (lines[k].depth > depth or not lines[k].bare):
        headed.add(k)
        k += 1
    return k


def _only_text_to_end(lines: list[_Line], start: int, limit: int) -> bool:
    """True when at most `limit` unquoted non-blank lines remain and no quote follows."""
    count = 0
    for line in lines[start:]:
        if line.depth:
            return False
        count += bool(line.bare)
        if count > limit:
            return False
    return True


def _signature_end(lines: list[_Line], start: int) -> int:
    for k in range(start + 1, len(lines)):
        if lines[k].depth or _hard_header_at(lines, k) >= 0 or _wrote_header_span(lines, k):
            return k
    return len(lines)


def _is_new_text(line: _Line) -> bool:
    return bool(line.bare) and not line.depth and not _DECORATION.match(line.bare)


def _only_decoration(lines: list[_Line], start: int, end: int) -> bool:
    return all(not ln.depth and (not ln.bare or _DECORATION.match(ln.bare)) for ln in lines[start:end])


def _collect(text: str, lines: list[_Line], label: list[str], wanted: str) -> str:
    """Join the runs of lines carrying one label, each run kept verbatim."""
    runs, k = [], 0
    while k < len(lines):
        if label[k] != wanted:
            k += 1
            continue
        first = k
        while k < len(lines) and label[k] == wanted:
            k += 1
        runs.append(text[lines[first].start: lines[k - 1].end].strip("\r\n"))
    return _trim_blank_lines("\n".join(run for run in runs if run.strip()))


def _trim_blank_lines(text: str) -> str:
    """Strip blank lines around text, but keep the indentation of its first line (code)."""
    text = text.rstrip()
    first = len(text) - len(text.lstrip())
    cut = text.rfind("\n", 0, first)
    return text[cut + 1:] if first else text
