"""Attachments an engineer can open: winmail.dat decoded, inline images placed in the text."""

from __future__ import annotations

import base64
from email.message import EmailMessage
from email.policy import SMTP

from parsers.message import parse_email
from tests.tnef_kit import winmail

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 16


def _b64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def _outlook_rich_text(text_part: bool) -> bytes:
    dat = winmail("The export fails with error 42.\r\nLog and report attached.",
                  [("report.pdf", b"%PDF-1.4 report"), ("export.log", b"error 42 at line 7")])
    plain = (b"--B\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
             b"The export fails with error 42.\r\n") if text_part else b""
    return (b"From: Chen <chen@customer.example>\r\nTo: support@support.example.test\r\n"
            b"Subject: export fails\r\nMessage-ID: <tnef@customer.example>\r\n"
            b"Content-Type: multipart/mixed; boundary=B\r\n\r\n" + plain
            + b"--B\r\nContent-Type: application/ms-tnef; name=\"winmail.dat\"\r\n"
            b"Content-Disposition: attachment; filename=\"winmail.dat\"\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + _b64(dat) + b"--B--\r\n")


def test_winmail_dat_is_decoded_into_its_files_and_the_original_is_kept():
    p = parse_email(_outlook_rich_text(text_part=True))
    names = [(a.filename, a.content_type) for a in p.attachments]
    assert names == [("winmail.dat", "application/ms-tnef"), ("report.pdf", "application/pdf"),
                     ("export.log", "application/octet-stream")]
    assert p.attachments[1].content == b"%PDF-1.4 report"
    assert p.attachments[2].content == b"error 42 at line 7"
    assert p.text == "The export fails with error 42."  # the mail's own text part wins


def test_winmail_dat_body_is_the_text_when_the_mail_has_no_other():
    p = parse_email(_outlook_rich_text(text_part=False))
    assert p.text == "The export fails with error 42.\nLog and report attached."
    assert p.reply_text.startswith("The export fails")
    assert [a.filename for a in p.attachments] == ["winmail.dat", "report.pdf", "export.log"]


def test_a_damaged_winmail_dat_is_kept_as_it_came():
    raw = (b"From: c@customer.example\r\nSubject: x\r\nMessage-ID: <bad-tnef@x>\r\n"
           b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
           b"--B\r\nContent-Type: application/ms-tnef; name=winmail.dat\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           + _b64(winmail("body", [("a.txt", b"abc")])[:40]) + b"--B--\r\n")
    p = parse_email(raw)
    assert p.attachments[0].filename == "winmail.dat" and p.text == "hi"


def test_html_cid_image_is_named_where_it_stood_in_the_text():
    m = EmailMessage()
    m["From"], m["Subject"], m["Message-ID"] = "c@customer.example", "screen", "<cid@x>"
    m.set_content("Look at this:\n[cid:shot@x]\nand then it crashes.\n")  # Outlook's plain text
    m.add_alternative('<p>Look at this:</p><p><img src="cid:shot@x" width="400"></p><p>and then it crashes.</p>',
                      subtype="html")
    m.get_payload()[1].add_related(PNG, "image", "png", cid="<shot@x>", filename="error-dialog.png",
                                      disposition="inline")
    p = parse_email(m.as_bytes(policy=SMTP))
    assert p.text == "Look at this:\n[image: error-dialog.png]\nand then it crashes."
    [img] = p.attachments
    assert (img.filename, img.inline, img.content_id, img.content) == ("error-dialog.png", True, "shot@x", PNG)


def test_html_only_cid_image_without_content_disposition():
    raw = (b"From: c@customer.example\r\nSubject: s\r\nMessage-ID: <rel@x>\r\n"
           b"Content-Type: multipart/related; boundary=R\r\n\r\n"
           b"--R\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
           b"<div>Before</div><div><img src=\"cid:ii_k1\" alt=\"image.png\"></div><div>After</div>\r\n"
           b"--R\r\nContent-Type: image/png; name=\"image.png\"\r\nContent-ID: <ii_k1>\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\n" + _b64(PNG) + b"--R--\r\n")
    p = parse_email(raw)
    assert p.text == "Before\n[image: image.png]\nAfter"
    assert p.attachments[0].inline and p.attachments[0].content == PNG


def test_apple_mail_image_between_two_text_parts_stands_between_them():
    raw = (b"From: c@customer.example\r\nSubject: s\r\nMessage-ID: <apple@x>\r\n"
           b"Content-Type: multipart/mixed; boundary=\"Apple-Mail=_1\"\r\n\r\n"
           b"--Apple-Mail=_1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nThe printer shows this:\r\n\r\n"
           b"--Apple-Mail=_1\r\nContent-Disposition: inline; filename=IMG_0042.jpeg\r\n"
           b"Content-Type: image/jpeg; x-unix-mode=0644; name=\"IMG_0042.jpeg\"\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\n" + _b64(JPEG)
           + b"--Apple-Mail=_1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\r\nand then stops.\r\n"
           b"--Apple-Mail=_1--\r\n")
    p = parse_email(raw)
    assert p.text == "The printer shows this:\n\n[image: IMG_0042.jpeg]\n\nand then stops."
    assert p.attachments[0].filename == "IMG_0042.jpeg" and p.attachments[0].inline


def test_a_cid_reference_to_no_part_stays_as_written():
    raw = (b"From: c@customer.example\r\nSubject: s\r\nMessage-ID: <nocid@x>\r\n\r\n"
           b"see [cid:gone@x] above\r\n")
    assert parse_email(raw).text == "see [cid:gone@x] above"
