"""Chinese and Western mail decodes to the right text, whatever its charset label says."""

from __future__ import annotations

from pathlib import Path

import pytest

from parsers.charsets import codec_for, decode_bytes, decode_header
from parsers.message import parse_email
from tests.conftest import CORPORA, needs_corpora



@pytest.mark.parametrize(
    "label, codec",
    [
        ("gb2312", "gb18030"), ("GBK", "gb18030"), ("x-gbk", "gb18030"), ('"GB2312"', "gb18030"),
        ("big5", "big5hkscs"), ("Big5-HKSCS", "big5hkscs"), ("iso-8859-1", "cp1252"),
        ("windows-1251", "cp1251"), ("utf8", "utf-8"), ("ks_c_5601-1987", "cp949"),
        ("no-such-charset", None), ("base64", None), ("", None), (None, None),
    ],
)
def test_labels_map_to_honest_codecs(label, codec):
    assert codec_for(label) == codec


def test_gb2312_label_on_gbk_text_decodes_cleanly():
    text = "镕基和喆的邮件"  # 镕 and 喆 are outside GB2312
    data = text.encode("gbk")
    with pytest.raises(UnicodeDecodeError):
        data.decode("gb2312")
    assert decode_bytes(data, "gb2312") == (text, None)


def test_gb18030_four_byte_characters_under_gb2312_label():
    text = "𠀀 and €"
    assert decode_bytes(text.encode("gb18030"), "GB2312") == (text, None)


def test_big5_label_on_hkscs_text():
    text = "香港增補字符集 嘅"  # 嘅 is an HKSCS addition
    assert decode_bytes(text.encode("big5hkscs"), "big5")[0] == text


@pytest.mark.parametrize(
    "label, text",
    [("windows-1252", "Grüße, señor – “quoted”"), ("iso-8859-15", "Grüße € œuvre"),
     ("windows-1250", "Łódź – Žluťoučký"), ("iso-8859-2", "Łódź Žluťoučký")],
)
def test_western_and_central_european(label, text):
    assert decode_bytes(text.encode(label), label) == (text, None)


def test_unknown_label_tries_utf8_and_records_a_defect():
    text, defect = decode_bytes("naïve".encode("utf-8"), "x-klingon")
    assert text == "naïve" and defect == "unknown-charset:x-klingon"


def test_lying_utf8_label_falls_back_without_raising():
    data = "Grüße aus Köln, schöne Grüße".encode("cp1252")
    text, defect = decode_bytes(data, "utf-8")
    assert defect and defect.startswith("charset-")
    assert "K" in text and "ln" in text


def test_undetectable_bytes_still_decode():
    text, defect = decode_bytes(bytes(range(256)), "utf-8")
    assert isinstance(text, str) and defect


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("=?GB2312?B?suLK1A==?=", "测试"),
        ("=?gb2312?B?xOO6ww==?= world", "你好 world"),
        ("=?GBK?Q?=C4=E3=BA=C3?=", "你好"),
        ("=?GB18030?B?gTCBMJUygjY=?=", "\u0080\U00020000"),  # four-byte sequences
        ("=?big5?B?pKSk5Q==?=", "中文"),
        ("=?utf-8?B?5L2g?= =?utf-8?B?5aW9?=", "你好"),  # whitespace between words dropped
        ("=?utf-8?B?5L2g5Q==?= =?utf-8?B?pb0=?=", "你好"),  # a character split across words
        ("=?iso-8859-1?q?Gr=FC=DFe?=", "Grüße"),
        ("=?utf-8?q?hello_world?=", "hello world"),
        ("=?unknown-8bit?q?caf=C3=A9?=", "café"),
        ("plain\r\n subject", "plain subject"),
        ("=?utf-8?B?broken!!base64?=", None),  # must not raise
    ],
)
def test_rfc2047_words(raw, expected):
    decoded = decode_header(raw)
    if expected is not None:
        assert decoded == expected


def test_raw_8bit_header_uses_body_charset_hint():
    raw = "主题".encode("gbk").decode("ascii", "surrogateescape")
    assert decode_header(raw, "gb2312") == "主题"
    assert decode_header("主题".encode("utf-8").decode("ascii", "surrogateescape")) == "主题"


@pytest.mark.parametrize("text, codec", [
    ("测试", "gbk"), ("你好", "gbk"), ("退款", "gbk"), ("密码重置", "gbk"), ("服务器无法启动", "gbk"),
    ("Re: 账号被锁定 #42", "gbk"), ("打印机故障", "gbk"), ("你好", "big5"), ("退款", "big5"),
    ("印表機故障", "big5"), ("請協助處理帳單問題", "big5"),
])
def test_short_raw_chinese_header_without_any_charset_hint(text, codec):
    """A few raw 8-bit bytes are too little for statistical detection (it said Korean or Big5
    for most of these): everyday Chinese in GB18030 or Big5 is recognised by its own common
    characters."""
    assert decode_header(text.encode(codec).decode("ascii", "surrogateescape")) == text


@pytest.mark.parametrize("text, codec", [
    ("Müller Grüße", "cp1252"), ("Ça coûte très cher", "cp1252"), ("こんにちは", "shift_jis"),
])
def test_short_raw_non_chinese_bytes_are_not_taken_for_chinese(text, codec):
    from parsers.charsets import _short_cjk

    assert _short_cjk(text.encode(codec)) is None


def build(body: bytes, charset: str, subject: bytes = b"hello") -> bytes:
    return (b"From: a@customer.example\r\nTo: support@example.com\r\nSubject: " + subject
            + b"\r\nMessage-ID: <x@y>\r\nContent-Type: text/plain; charset=" + charset.encode()
            + b"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + body)


@pytest.mark.parametrize(
    "text, charset, label",
    [
        ("您好，我的打印机坏了。镕", "gbk", "gb2312"),
        ("您好，我的打印機壞了。", "big5", "big5"),
        ("Привет, принтер сломан", "koi8-r", "koi8-r"),
        ("Привет, принтер сломан", "cp1251", "windows-1251"),
        ("Żółta łódź", "iso-8859-2", "iso-8859-2"),
        ("Ärger mit dem Drucker €", "cp1252", "windows-1252"),
        ("שלום", "iso-8859-8", "iso-8859-8"),
    ],
)
def test_message_bodies_in_many_charsets(text, charset, label):
    parsed = parse_email(build(text.encode(charset), label))
    assert parsed.text == text
    assert not [d for d in parsed.defects if d.startswith("charset")]


def test_raw_gbk_subject_over_an_ascii_body_is_chinese():
    raw = (b"From: a@customer.example\r\nTo: support@example.com\r\nSubject: " + "服务器无法启动".encode("gbk")
           + b"\r\nMessage-ID: <x@y>\r\n\r\nserver down since 9am\r\n")
    assert parse_email(raw).subject == "服务器无法启动"


def test_raw_gbk_subject_and_body():
    parsed = parse_email(build("打印机坏了".encode("gbk"), "gbk", subject="紧急".encode("gbk")))
    assert parsed.subject == "紧急"
    assert parsed.text == "打印机坏了"
    assert parsed.language == "zh-CN"


# --- real Chinese mail from the corpora --------------------------------------------------

CORPUS_CASES = [
    # file, text in the subject, text in the body
    ("rt-request-tracker/new-ticket-from-gb18030", "测试", "测试"),
    ("webklex-php-imap/gbk_charset.eml", "Nuu", "Hi"),
    ("spamscope-mail-parser/mail_test_9", "我把镜头拉近些", "我把镜头拉近些"),
    ("spamscope-mail-parser/mail_test_12", "代开各地增值税发票", "我公司可代开各类增值税发票"),
    ("flufl-bounce/sina_01.txt", "邮件传输失败", "邮件无法发送到您指定的地址中"),
    ("mikel-mail/error_emails/content_transfer_encoding_empty.eml", "大家說英語", "工具列"),
    ("php-mime-mail-parser/failure.eml", "", "配信に失敗しました"),  # GBK under a gb2312 label
]


@needs_corpora
@pytest.mark.parametrize("rel, subject_part, text_part", CORPUS_CASES)
def test_corpus_chinese_mail(rel, subject_part, text_part):
    parsed = parse_email((Path(CORPORA) / rel).read_bytes())
    assert subject_part in parsed.subject
    assert text_part in parsed.text
    assert "\ufffd" not in parsed.subject + parsed.text[:2000]
    if any("\u4e00" <= c <= "\u9fff" for c in subject_part + text_part):
        assert parsed.language == "zh-CN"


@needs_corpora
def test_corpus_charset_labels_never_leave_replacement_noise():
    """Every GB/Big5-labelled corpus part decodes with hardly any U+FFFD."""
    root = Path(CORPORA)
    checked = 0
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        head = path.read_bytes()[:200_000].lower()
        if not any(label in head for label in (b"charset=gb", b'charset="gb', b"charset=big5",
                                               b'charset="big5')):
            continue
        parsed = parse_email(path.read_bytes())
        checked += 1
        assert parsed.text.count("\ufffd") <= max(3, len(parsed.text) // 100), path
    print(f"\nGB/Big5-labelled corpus files checked: {checked}")
    assert checked >= 5
