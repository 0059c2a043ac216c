"""A forwarded mail inside a mail: who wrote it, when, about what, and what they said.

Owns reading the header block that mail clients put above a forwarded message in the
text ("---------- Forwarded message ---------" and "From: … Date: … Subject: …" of Gmail,
"Begin forwarded message:" of Apple Mail, Outlook's "From: … Sent: …", Thunderbird's
"-------- Forwarded Message --------", Foxmail/QQ's "------------------ 原始邮件 ------------------"
and NetEase's "-------- 转发邮件信息 --------", with their labels in English, Chinese and the
other languages the clients ship), and taking a forward "as attachment" (`message/rfc822`)
as the original itself. Text in, plain data out: it decides nothing about tickets and does
not know who may forward (gateway/handlers/forwards.py does).
"""

from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo

from parsers.model import Address, ParsedEmail

# Labels of a forwarded header block, per field, as clients write them (case-insensitive).
_LABELS = {
    "from": "From|De|De la|Von|Van|Fra|Från|Od|Lähettäjä|Feladó|Kimden|Gönderen|От|Від|Від кого|Отправитель|"
            "Mittente|Da|Nadawca|Šalje|Saatja|Expeditorul|Remitente|送信元|差出人|发件人|發件人|寄件人|寄件者",
    "date": "Date|Sent|Datum|Data|Dátum|Дата|Dato|Fecha|Päivämäärä|Päiväys|Tarih|Dată|Envoyé|Enviado|Enviada|"
            "Gesendet|Verzonden|Skickat|Sendt|Wysłano|Odesláno|Elküldve|Inviato|Отправлено|Надіслано|Kuupäev|"
            "日付|送信日時|日期|发送时间|發送時間|发送日期|发件时间|时间|時間|寄件日期|傳送時間",
    "subject": "Subject|Betreff|Onderwerp|Emne|Ämne|Temat|Predmet|Předmět|Oggetto|Asunto|Assunto|Aihe|Tárgy|"
               "Konu|Тема|Objet|Sujet|Subiect|Subiectul|Naslov|Teema|件名|主题|主題|主旨",
    "to": "To|An|Aan|Til|Till|Para|À|A|Kime|Komu|Do|Címzett|Vastaanottaja|Кому|Pour|Către|Destinatarul|"
          "Adresat|Prima|Pre|Kellele|送信先|宛先|收件人|收件者",
    "cc": "Cc|Kopie|Kopie \\(CC\\)|Kopia|Kopio|Kopi|Копия|Копія|Bilgi|DW|Másolat|Másolatot kap|Kópia|Copie à|"
          "Koopia|抄送|副本|抄送人",
}
_FIELD_OF = {}
for _field, _alts in _LABELS.items():
    for _label in _alts.replace("\\(", "(").replace("\\)", ")").split("|"):
        _FIELD_OF.setdefault(_label.lower(), _field)

_ALL_LABELS = "|".join(sorted({a for alts in _LABELS.values() for a in alts.split("|")}, key=len, reverse=True))
_HEADER = re.compile(rf"^\s*\*?({_ALL_LABELS})\*?\s*[:：]\s*\*?(.*)$", re.IGNORECASE)
# Yahoo writes the whole block on one line: "Von: … <a@b>An: …CC: …Gesendet: …Betreff: …"
_GLUED = re.compile(rf"(?<=[>\w\".;)\]])\s*({_ALL_LABELS})\s*[:：]")  # as written: "Data:" is not "a:"
_LEADING_SEPARATOR = re.compile(r"^\s*-{3,}[^-]{0,60}-{3,}\s*")
_ADDRESS = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
_QUOTE = re.compile(r"^[ \t]*>[ \t]?")
# "On Wed, Oct 27, 2021 at 9:31 AM John Doe <john@x> wrote:" and its kin in other languages
# ("Am …, 12:46 schrieb "John Doe" <john@x>:", "在 …，张三 <z@x> 写道："): a quoted reply, which an
# engineer's "Forward" sometimes is (Outlook 2019 forwards inline this way).
_VERB = (r"wrote|a écrit|schrieb|escribió|ha scritto|schreef|escreveu|skrev|napisał|napsal\(a\)|napsal|"
         r"kirjoitti|написал\(а\)|написал|пише|írta|yazdı|napísal\(a\)|napísal|a scris|je napisao|"
         r"geschreven|写道|寫道|写到")
_WROTE = re.compile(rf"^(?P<line>.{{4,300}}?(?:{_VERB}).{{0,300}})$", re.IGNORECASE)
_WROTE_END = re.compile(r"[:：]\s*$")
_WROTE_ADDR = re.compile(r"[<(]\s*(?:mailto:)?([^<>()\s]+@[^<>()\s]+)\s*[>)]")
_WROTE_NAME = re.compile(r"^(?:On|Le|Am|El|Il giorno|Op|Em|Den|Dne|Dnia|在)\s+.{4,80}?,\s*"
                         rf"(?P<name>[^,<>@\d]{{2,80}}?)\s+(?:{_VERB})\s*[:：]\s*$", re.IGNORECASE)
_NAME_JUNK = re.compile(r"^(?:.*\d\S*\s+|(?:AM|PM|at|um|à|kl\.|klo|o|heeft|időpontban|používateľ|пользователь|"
                        r"użytkownik|user)\s+)+", re.IGNORECASE)
_NAME_QUOTES = " \"'«»„“”‘’‚(<"
_SEPARATOR = re.compile(r"^\s*[-_=*~]{2,}.*$|^\s*.{0,60}[:：]\s*$")

MAX_SCAN_LINES = 4000


@dataclass(frozen=True)
class Forwarded:
    sender: Address
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    subject: str
    date: datetime | None
    date_text: str  # the date as the header block wrote it
    text: str  # what the original's author wrote
    intro: str  # what the forwarder wrote above it
    original: ParsedEmail | None = None  # the whole original, when it came as message/rfc822


def find_forwarded(text: str, assume: tzinfo = timezone.utc) -> Forwarded | None:
    """The first forwarded header block in `text` and what follows it, or None (zone-less
    dates read in `assume`)."""
    lines = (text or "").replace("\r\n", "\n").replace("\ufeff", "").split("\n")[:MAX_SCAN_LINES]
    for i, line in enumerate(lines):
        found = _block_at(lines, i, assume)
        if found is not None:
            return found
        wrote = _wrote_at(lines, i)
        if wrote is not None:
            return wrote
    return None


def forwarded_in(email: ParsedEmail, parse, assume: tzinfo = timezone.utc) -> Forwarded | None:
    """The mail a forward carries: an inline block in its text, else its one attached message.

    `parse` turns the attached message's bytes into a ParsedEmail (parsers.message.parse_email;
    passed in because message.py imports this module's neighbours, not the other way round).
    """
    inline = find_forwarded(email.text, assume)
    if inline is not None and inline.sender.email:
        return inline
    attached = [a for a in email.attachments if a.content_type == "message/rfc822" and a.content]
    if len(attached) != 1:
        return None
    original = parse(attached[0].content)
    if not original.sender.email:
        return None
    intro = email.reply_text.strip()
    return Forwarded(sender=original.sender, to=original.to, cc=original.cc, subject=original.subject,
                     date=original.date, date_text=original.header("date").strip(), text=original.text,
                     intro=intro, original=original)


def _unquote(lines: list[str], lenient: bool = False) -> tuple[list[str], bool]:
    """One quote level off the lines: all of them quoted, or (`lenient`, the header block was
    quoted) whichever are, since clients rewrap long quoted lines without their ">"."""
    quoted = [ln for ln in lines if ln.strip()]
    if quoted and (lenient or all(_QUOTE.match(ln) for ln in quoted)):
        return [_QUOTE.sub("", ln, count=1) for ln in lines], True
    return lines, False


def _block_at(lines: list[str], i: int, assume: tzinfo) -> Forwarded | None:
    first = _QUOTE.sub("", lines[i]).strip()
    if not _HEADER.match(first):
        return _glued_at(lines, i, assume)
    fields: list[str] = []
    j = i
    while j < len(lines) and len(fields) < 12:
        candidate = _QUOTE.sub("", lines[j]).strip()
        if _HEADER.match(candidate):
            fields.append(candidate)
        elif candidate and fields and not _SEPARATOR.match(candidate) and _ADDRESS.search(candidate) \
                and _field(fields[-1]) in ("to", "cc"):
            fields[-1] += " " + candidate  # a long To: wrapped onto the next line
        else:
            break
        j += 1
    names = [_field(f) for f in fields]
    if "from" not in names or len(set(names)) < 2:
        return _glued_at(lines, i, assume)  # one "From:" line in a sentence is not a header block
    return _build(lines[:i], fields, lines[j:], assume, quoted=bool(_QUOTE.match(lines[i])))


def _glued_at(lines: list[str], i: int, assume: tzinfo) -> Forwarded | None:
    """Yahoo's block: "----- Forwarded Message ----- From: … <a@b>To: …Sent: …Subject: …" on one line."""
    line = _QUOTE.sub("", lines[i]).strip()
    separated = _LEADING_SEPARATOR.match(line)
    rest = line[separated.end():] if separated else line
    if not _HEADER.match(rest):
        return None
    fields = _GLUED.sub(lambda m: "\n" + m.group(1) + ":", rest).split("\n")
    names = {_field(f) for f in fields}
    if "from" not in names or len(names) < 3:
        return None
    return _build(lines[:i], fields, lines[i + 1:], assume)


def _field(line: str) -> str:
    m = _HEADER.match(line)
    return _FIELD_OF.get(m.group(1).lower(), "") if m else ""


def _build(before: list[str], fields: list[str], after: list[str], assume: tzinfo,
           quoted: bool = False) -> Forwarded:
    values: dict[str, str] = {}
    for line in fields:
        m = _HEADER.match(line)
        if m:
            values.setdefault(_FIELD_OF.get(m.group(1).lower(), ""), m.group(2).strip().rstrip(";").strip())
    intro = list(before)
    while intro and not _QUOTE.sub("", intro[-1]).strip():
        intro.pop()
    if intro and _SEPARATOR.match(_QUOTE.sub("", intro[-1]).strip() or "x"):
        intro = intro[:-1]  # the "---- Forwarded message ----" line itself
    body, _ = _unquote(after, lenient=quoted)
    return Forwarded(sender=_one_address(values.get("from", "")), to=_addresses(values.get("to", "")),
                     cc=_addresses(values.get("cc", "")), subject=values.get("subject", ""),
                     date=parse_date(values.get("date", ""), assume), date_text=values.get("date", ""),
                     text="\n".join(body).strip("\n").strip(), intro=_intro_text(intro))


def _wrote_at(lines: list[str], i: int) -> Forwarded | None:
    # the attribution may be wrapped over two lines ("… <john@x>\nwrote:")
    for span in (1, 2):
        chunk = " ".join(_QUOTE.sub("", ln).strip() for ln in lines[i:i + span]).strip()
        if not chunk or not _WROTE.match(chunk) or not _WROTE_END.search(chunk):
            continue
        found = _WROTE_ADDR.search(chunk)
        if found:
            addr = found.group(1).lower()
            before = chunk[:found.start()]
            verb = re.search(rf"(?:{_VERB})", before, re.IGNORECASE)
            if verb:  # "Am …, 12:46 schrieb "John Doe" <…>:"
                before = before[verb.end():]
            before = re.split(r"[,，]", before)[-1]
            name = _NAME_JUNK.sub("", before.strip()).strip(_NAME_QUOTES)
        else:
            m = _WROTE_NAME.match(chunk)
            if not m:
                continue
            addr, name = "", m.group("name").strip(_NAME_QUOTES)
        return Forwarded(sender=Address(name=name, email=addr), to=(), cc=(), subject="", date=None,
                         date_text="", text=_dedent("\n".join(_unquote(lines[i + span:], lenient=True)[0])),
                         intro=_intro_text(lines[:i]))
    return None


def _dedent(text: str) -> str:
    import textwrap

    return textwrap.dedent(text).strip()


def _intro_text(lines: list[str]) -> str:
    return "\n".join(lines).strip()


def _one_address(value: str) -> Address:
    found = _addresses(value)
    if found:
        return found[0]
    # Outlook without an address: "From: John Doe" (the name alone is still worth keeping)
    return Address(name=value.strip().strip('"').strip(), email="")


def _addresses(value: str) -> tuple[Address, ...]:
    if not value:
        return ()
    value = re.sub(r"<mailto:[^<>]*>", "", value)  # Outlook's "John Doe<mailto:j@x> <j@x<mailto:j@x>>"
    value = re.sub(r"\s*\[mailto:([^\]]*)\]", r" <\1>", value)  # Outlook 2013's "John Doe [mailto:j@x]"
    value = re.split(r"\s+on behalf of\s+", value, flags=re.IGNORECASE)[0]
    value = value.replace("；", ";").replace("，", ",").replace(";", ",")
    out = []
    for name, addr in email.utils.getaddresses([value]):
        addr = addr.strip().strip("<>").lower()
        if not _ADDRESS.fullmatch(addr or ""):
            found = _ADDRESS.search(f"{name} {addr}")
            if not found:
                continue
            addr = found.group(0).lower()
        name = name.strip().strip(_NAME_QUOTES).strip()
        if name.lower() == addr:
            name = ""
        out.append(Address(name=name, email=addr))
    return tuple(out)


_EN_FORMATS = ("%a, %b %d, %Y %I:%M %p", "%a, %b %d, %Y %H:%M", "%A, %B %d, %Y %I:%M %p", "%A, %B %d, %Y %H:%M",
               "%A, %d %B %Y %H:%M", "%A, %d %B %Y %I:%M %p", "%d %B %Y %H:%M:%S", "%d %B %Y %H:%M",
               "%B %d, %Y %I:%M:%S %p", "%B %d, %Y %I:%M %p", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M",
               "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%m/%d/%Y %I:%M %p", "%d/%m/%Y %H:%M")
_CN_DATE = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日.*?(上午|下午|晚上|中午|凌晨)?\s*(\d{1,2})[:：](\d{2})"
                      r"(?:[:：](\d{2}))?")
_ZONE = re.compile(r"\s*(?:GMT|UTC)?\s*([+-])(\d{1,2}):?(\d{2})?\s*$|\s+([A-Z]{2,5})\s*$")


def parse_date(value: str, assume: tzinfo = timezone.utc) -> datetime | None:
    """The date of a header block, in the forms clients write (best effort; None if unreadable).

    Most clients write the forwarder's local time without a zone; it is read in `assume`
    (the caller knows where its team works)."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
        if parsed is not None:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=assume)
    except (TypeError, ValueError, IndexError):
        pass
    m = _CN_DATE.search(value)
    if m:
        year, month, day, half, hour, minute, second = m.groups()
        hour = int(hour)
        if half in ("下午", "晚上") and hour < 12:
            hour += 12
        try:
            local = datetime(int(year), int(month), int(day), hour, int(minute), int(second or 0))
        except ValueError:
            return None
        return local.replace(tzinfo=assume)
    text = value.replace(" at ", " ").replace("\u202f", " ")
    tz = assume
    zm = _ZONE.search(text)
    if zm and zm.group(1):
        sign = -1 if zm.group(1) == "-" else 1
        tz = timezone(sign * timedelta(hours=int(zm.group(2)), minutes=int(zm.group(3) or 0)))
        text = text[:zm.start()]
    elif zm and zm.group(4):
        text = text[:zm.start()]  # "EEST": a name, not an offset we can trust
    text = " ".join(text.split())
    for fmt in _EN_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=tz)
        except ValueError:
            continue
    return None
