"""parse_email turns any raw message into a ParsedEmail downstream code can trust."""

from __future__ import annotations

import hashlib
import time
from datetime import timezone
from pathlib import Path

import pytest

from parsers.attachments import safe_filename
from parsers.htmltext import html_to_text, sanitise_html
from parsers.language import detect_language
from parsers.message import parse_email
from parsers.model import Address, ParsedEmail
from tests.conftest import CORPORA, needs_corpora


PLAIN = (
    b"From: =?utf-8?q?Zo=C3=AB_Customer?= <Zoe@Customer.Example>\r\n"
    b"To: Support <support@example.com>, other@Example.com\r\n"
    b"Cc: \"Boss, The\" <boss@customer.example>\r\n"
    b"Reply-To: replies@customer.example\r\n"
    b"Subject: =?utf-8?B?UHJpbnRlciBicm9rZW4g4oCTIHVyZ2VudA==?=\r\n"
    b"Message-ID: <abc.123@customer.example>\r\n"
    b"In-Reply-To: <ticket-1@example.com>\r\n"
    b"References: <root@example.com>\r\n <ticket-1@example.com>\r\n"
    b"Date: Tue, 02 Apr 2024 16:21:52 +0800\r\n"
    b"X-Custom: one\r\n"
    b"X-Custom: two\r\n"
    b"\r\n"
    b"Hello,\r\nthe printer is broken.\r\n"
)


def test_plain_message_fields():
    p = parse_email(PLAIN)
    assert isinstance(p, ParsedEmail)
    assert p.sender == Address("Zoë Customer", "zoe@customer.example")
    assert p.to == (Address("Support", "support@example.com"), Address("", "other@example.com"))
    assert p.cc == (Address("Boss, The", "boss@customer.example"),)
    assert p.reply_to == (Address("", "replies@customer.example"),)
    assert p.subject == "Printer broken – urgent"
    assert p.message_id == "abc.123@customer.example"
    assert p.in_reply_to == ("ticket-1@example.com",)
    assert p.references == ("root@example.com", "ticket-1@example.com")
    assert p.date is not None and p.date.tzinfo is not None
    assert p.date.astimezone(timezone.utc).hour == 8
    assert p.text == "Hello,\nthe printer is broken."
    assert p.html == "" and p.attachments == ()
    assert p.language == "en"
    assert p.header_all("X-Custom") == ["one", "two"]
    assert [name for name, _ in p.headers][:3] == ["From", "To", "Cc"]
    assert p.reply_text.startswith("Hello")
    assert (p.automatic, p.automatic_reason) == (False, "")
    assert p.defects == ()


def test_missing_message_id_is_synthesised_from_content():
    raw = PLAIN.replace(b"Message-ID: <abc.123@customer.example>\r\n", b"")
    p = parse_email(raw)
    assert p.message_id == hashlib.sha256(raw).hexdigest()[:32] + "@supportgw.invalid"
    assert "<" not in p.message_id
    assert "no-message-id" in p.defects
    assert parse_email(raw).message_id == p.message_id  # stable across re-parses


def test_own_address_makes_mail_automatic():
    p = parse_email(PLAIN, own_addresses=("ZOE@customer.example",))
    assert (p.automatic, p.automatic_reason) == (True, "sender:own-address")


HTML_ONLY = (
    b"From: a@customer.example\r\nSubject: html\r\nMessage-ID: <h@x>\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n\r\n"
    b"<html><head><style>p{color:red}</style><script>alert(1)</script></head><body>"
    b"<p>Dear support,</p><p>line one<br>line two &amp; more&nbsp;text</p>"
    b"<ul><li>first</li><li>second</li></ul>"
    b"<table><tr><td>cell a</td><td>cell b</td></tr><tr><td>cell c</td></tr></table>"
    b"<img src=\"https://tracker.example/p.gif\"><img src=\"//tracker.example/q.gif\">"
    b"<img src=\"cid:logo@x\"><a href=\"https://ok.example\" onclick=\"evil()\">link</a>"
    b"</body></html>"
)


def test_html_only_mail_becomes_readable_text():
    p = parse_email(HTML_ONLY)
    lines = p.text.splitlines()
    assert lines[0] == "Dear support,"
    assert "line one" in lines and "line two & more text" in lines
    assert "- first" in lines and "- second" in lines
    assert any("cell a" in line and "cell b" in line for line in lines)
    assert "alert" not in p.text and "color" not in p.text


def test_html_is_sanitised():
    html = parse_email(HTML_ONLY).html
    assert "<script" not in html and "alert" not in html and "onclick" not in html
    assert "tracker.example" not in html
    assert 'src="cid:logo@x"' in html
    assert 'href="https://ok.example"' in html


def test_html_converter_and_sanitiser_directly():
    assert html_to_text("a<br/>b<p>c</p>d &lt;e&gt;") == "a\nb\n\nc\n\nd <e>"
    assert html_to_text("<pre>  keep\n  spacing</pre>") == "keep\n  spacing"
    assert html_to_text("<script/>still here") == "still here"
    assert sanitise_html('<img src="data:image/png;base64,AAAA" alt="x>y">') == ""
    assert sanitise_html("<svg onload=alert(1)>") == ""


def test_alternative_prefers_plain_text_and_keeps_html():
    raw = (
        b"From: a@customer.example\r\nSubject: alt\r\nMessage-ID: <a@x>\r\n"
        b"Content-Type: multipart/alternative; boundary=XX\r\n\r\n"
        b"--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain version\r\n"
        b"--XX\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<b>html version</b>\r\n"
        b"--XX--\r\n"
    )
    p = parse_email(raw)
    assert p.text == "plain version"
    assert p.html == "<b>html version</b>"


def attachment_mail(filename_header: bytes, payload: bytes = b"aGVsbG8=") -> bytes:
    return (
        b"From: a@customer.example\r\nSubject: files\r\nMessage-ID: <f@x>\r\n"
        b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n"
        b"--XX\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        b"--XX\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Disposition: attachment; " + filename_header + b"\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + payload + b"\r\n--XX--\r\n"
    )


@pytest.mark.parametrize(
    "header, expected",
    [
        (b'filename="../../etc/passwd"', "passwd"),
        (b'filename="..\\\\..\\\\windows\\\\system32\\\\evil.dll"', "evil.dll"),
        (b'filename="report.pdf"', "report.pdf"),
        (b'filename=".."', "attachment-1.bin"),
        (b'filename="...hidden"', "hidden"),
        (b'filename="a\x00b.txt"', "ab.txt"),
        (b'filename="evil\xe2\x80\xaetxt.exe"', "eviltxt.exe"),  # right-to-left override
        (b"filename*=UTF-8''%E6%8A%A5%E5%91%8A.pdf", "报告.pdf"),
        (b"filename*0*=UTF-8''%E6%8A%A5; filename*1*=%E5%91%8A; filename*2=.pdf", "报告.pdf"),
        (b'filename="=?utf-8?B?5oql5ZGKLnBkZg==?="', "报告.pdf"),
        (b"filename*=gb2312''%B1%A8%B8%E6.doc", "报告.doc"),
    ],
)
def test_attachment_filenames_are_made_safe(header, expected):
    p = parse_email(attachment_mail(header))
    (att,) = p.attachments
    assert att.filename == expected
    assert att.content == b"hello" and att.size == 5
    assert att.sha256 == hashlib.sha256(b"hello").hexdigest()
    assert p.text == "see attached"


def test_filename_with_crlf_injection():
    raw = attachment_mail(b'filename="inv\r\n oice.pdf"')
    (att,) = parse_email(raw).attachments
    assert "\r" not in att.filename and "\n" not in att.filename
    assert att.filename.endswith(".pdf")


@pytest.mark.parametrize(
    "name, expected",
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\x\\a.txt", "a.txt"),
        ("\x00\x01\x1f", "attachment-3.bin"),
        ("", "attachment-3.bin"),
        ("a:b*c?.txt", "abc.txt"),
        ("x" * 500 + ".pdf", "x" * 146 + ".pdf"),
        ("中" * 200 + ".txt", "中" * 78 + ".txt"),  # byte cap: 240 bytes of UTF-8
    ],
)
def test_safe_filename(name, expected):
    assert safe_filename(name, 3) == expected


def test_missing_filename_gets_default_with_type_extension():
    assert safe_filename("", 2, "message/rfc822") == "attachment-2.eml"
    assert safe_filename("", 1, "image/png") == "attachment-1.png"


def test_inline_cid_image_and_nested_message_and_tnef():
    raw = (
        b"From: a@customer.example\r\nSubject: mixed\r\nMessage-ID: <m@x>\r\n"
        b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n"
        b"--XX\r\nContent-Type: text/plain\r\n\r\nbody\r\n"
        b"--XX\r\nContent-Type: image/png\r\nContent-ID: <logo@x>\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n"
        b"--XX\r\nContent-Type: message/rfc822\r\n\r\n"
        b"From: b@elsewhere.example\r\nSubject: forwarded one\r\n\r\ninner body\r\n"
        b"--XX\r\nContent-Type: application/ms-tnef; name=winmail.dat\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\neJ8+IgAA\r\n"
        b"--XX\r\nContent-Type: application/zip; name=\"files.zip\"\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nUEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==\r\n"
        b"--XX--\r\n"
    )
    p = parse_email(raw)
    # the nested message's text is not the customer's words; the image stands where it was
    assert p.text == "body\n\n[image: attachment-1.png]"
    png, eml, tnef, zipped = p.attachments
    assert (png.content_id, png.inline, png.content[:4]) == ("logo@x", True, b"\x89PNG")
    assert (eml.filename, eml.content_type) == ("forwarded one.eml", "message/rfc822")
    assert b"inner body" in eml.content and b"Subject: forwarded one" in eml.content
    assert tnef.filename == "winmail.dat" and "tnef" in p.defects
    assert zipped.filename == "files.zip" and zipped.content.startswith(b"PK")  # not unpacked


def test_date_missing_or_garbage_is_none():
    assert parse_email(PLAIN.replace(b"Date: Tue, 02 Apr 2024 16:21:52 +0800\r\n", b"")).date is None
    assert parse_email(PLAIN.replace(b"Tue, 02 Apr 2024 16:21:52 +0800", b"yesterday")).date is None


def test_cr_only_line_endings():
    p = parse_email(PLAIN.replace(b"\r\n", b"\r"))
    assert p.subject == "Printer broken – urgent"
    assert p.sender.email == "zoe@customer.example"
    assert p.text == "Hello,\nthe printer is broken."


def test_nul_bytes_never_reach_text():
    p = parse_email(PLAIN.replace(b"Hello,", b"Hel\x00lo,").replace(b"X-Custom: one",
                                                                       b"X-Custom: o\x00ne"))
    assert "\x00" not in p.text and p.header("X-Custom") == "one"


@pytest.mark.parametrize(
    "subject, text, language",
    [
        ("打印机坏了", "", "zh-CN"),
        ("", "Hello, the printer is broken", "en"),
        ("Re: printer", "我的打印机坏了，请帮忙" + " word" * 20, "zh-CN"),
        ("Re: 报价", "English text " * 100, "en"),
    ],
)
def test_language(subject, text, language):
    assert detect_language(subject, text) == language


def test_split_reply_result_is_copied(monkeypatch):
    from parsers import message, quotes

    monkeypatch.setattr(message.quotes, "split_reply",
                        lambda text: quotes.Reply(reply_text="NEW", quoted="Q", signature="SIG"))
    p = parse_email(PLAIN)
    assert (p.reply_text, p.signature) == ("NEW", "SIG")


def test_split_reply_failure_does_not_lose_the_mail(monkeypatch):
    from parsers import message

    def broken(text):
        raise ValueError("bug elsewhere")

    monkeypatch.setattr(message.quotes, "split_reply", broken)
    p = parse_email(PLAIN)
    assert p.reply_text == p.text and "split-reply-failed:ValueError" in p.defects


def test_mail_parser_crash_falls_back_to_stdlib(monkeypatch):
    from parsers import message

    def crash(raw):
        raise AttributeError("'NoneType' object has no attribute 'index'")

    monkeypatch.setattr(message._LeanMailParser, "from_bytes", staticmethod(crash))
    p = parse_email(PLAIN)
    assert p.subject == "Printer broken – urgent"
    assert "mail-parser-failed:AttributeError" in p.defects


def test_nesting_bomb_is_cut_not_crashing():
    depth = 3000
    raw = b"From: a@x\r\nSubject: bomb\r\n"
    for i in range(depth):
        raw += b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
    raw += b"Content-Type: text/plain\r\n\r\ndeep\r\n"
    start = time.perf_counter()
    p = parse_email(raw)
    assert isinstance(p, ParsedEmail) and p.subject == "bomb"
    assert {"nesting-too-deep", "too-many-parts"} & set(p.defects)
    assert time.perf_counter() - start < 10


@needs_corpora
def test_rfc2231_filename_continuations_from_rt():
    p = parse_email((Path(CORPORA) / "rt-request-tracker/rfc2231-attachment-filename-continuations")
                    .read_bytes())
    assert [a.filename for a in p.attachments] == ["新しいテキスト ドキュメント.txt"]


@needs_corpora
def test_webklex_html_only_and_missing_headers():
    root = Path(CORPORA) / "webklex-php-imap"
    html_only = parse_email((root / "html_only.eml").read_bytes())
    assert html_only.text == "Hi" and html_only.html
    no_from = parse_email((root / "missing_from.eml").read_bytes())
    assert no_from.sender.email == ""
    no_date = parse_email((root / "missing_date.eml").read_bytes())
    assert no_date.date is None


@needs_corpora
def test_every_corpus_file_parses_without_raising():
    root = Path(CORPORA)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    assert len(files) > 2000
    start = time.perf_counter()
    failures = []
    for path in files:
        try:
            parsed = parse_email(path.read_bytes())
        except Exception as exc:  # the test exists to catch exactly this
            failures.append((path, repr(exc)))
            continue
        if not isinstance(parsed, ParsedEmail) or not parsed.message_id:
            failures.append((path, "bad result"))
        elif any(d.startswith("parse-failed") for d in parsed.defects):
            failures.append((path, parsed.defects))
    elapsed = time.perf_counter() - start
    print(f"\nparsed {len(files)} corpus files in {elapsed:.1f}s")
    assert failures == []
    assert elapsed < 60


def test_html_link_addresses_stay_in_the_text():
    """An engineer reading the text must still get "the log is here" with its address."""
    from parsers.htmltext import html_to_text

    assert (html_to_text('The log is <a href="https://files.example.com/log.txt">here</a>.')
            == "The log is here <https://files.example.com/log.txt>.")
    # the text already is the address, or the link is not a web address: nothing added
    assert html_to_text('<a href="https://www.example.com/">example.com</a>') == "example.com"
    assert html_to_text('<a href="mailto:a@customer.example.com">write to us</a>') == "write to us"
    assert html_to_text('<a href="javascript:alert(1)">click</a>') == "click"
