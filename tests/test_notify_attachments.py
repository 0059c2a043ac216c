"""What an engineer's notification carries of the files a customer sends: a winmail.dat
opened into its files, an attached message shown under its own heading with its own
attachments listed, and inline images named where they stood."""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP

import pytest

from tests.engineer_mail import ALICE, CUSTOMER, SUPPORT, Desk
from tests.mail import body_text
from tests.tnef_kit import winmail

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


@pytest.fixture
def desk(make_app, clock):
    return Desk(make_app(clock=clock))


def _customer_mail(opening: str = "Hello,\nour partner reports the problem below:") -> bytes:
    inner = EmailMessage()
    inner["From"] = "Zhang San <zhang.san@partner.example>"
    inner["To"] = "Li Wei <li.wei@mail.example.test>"
    inner["Subject"] = "Nightly sync stopped"
    inner["Date"] = "Sun, 01 Mar 2026 22:10:00 +0800"
    inner["Message-ID"] = "<inner@partner.example>"
    inner.set_content("The nightly sync stopped at 02:00 with code E17.\n")
    inner.add_attachment(b"E17 at 02:00:01\n", maintype="text", subtype="plain", filename="sync.log")

    m = EmailMessage()
    m["From"] = f"Li Wei <{CUSTOMER}>"
    m["To"] = SUPPORT
    m["Subject"] = "Sync problem, see the attached mail"
    m["Message-ID"] = "<outer@mail.example.test>"
    m["Date"] = "Mon, 02 Mar 2026 09:00:00 +0800"
    m.set_content(f"{opening}\n[cid:screen@mail]\nPlease help.\n")
    m.add_attachment(inner)
    m.add_attachment(winmail("rtf body", [("config.xml", b"<config/>")]), maintype="application",
                     subtype="ms-tnef", filename="winmail.dat")
    m.add_attachment(PNG, maintype="image", subtype="png", cid="<screen@mail>", filename="screen.png",
                     disposition="inline")
    return m.as_bytes(policy=SMTP)


def test_notification_shows_an_attached_message_and_the_files_of_a_winmail_dat(desk):
    desk.receive(_customer_mail())
    [note] = [m["msg"] for m in desk.new_mail() if m["to"] == [ALICE]]
    text = body_text(note)
    # the inline image is named where it stood in the customer's text
    assert "our partner reports the problem below:\n[image: screen.png]\nPlease help." in text
    # the attached message under a heading of its own, with its sender, date, subject, text, files
    block = text.split("===== Attached message: Nightly sync stopped.eml =====", 1)[1]
    block = block.split("===== end of the attached message =====", 1)[0]
    assert "From:    Zhang San <zhang.san@partner.example>" in block
    assert "Date:    Sun, 01 Mar 2026 22:10:00 +0800" in block
    assert "Subject: Nightly sync stopped" in block
    assert "The nightly sync stopped at 02:00 with code E17." in block
    assert "Its attachments:\n  - sync.log (16 bytes)" in block
    # every file the engineer can open is attached: the .eml, winmail.dat, what was inside it, the image
    files = {p.get_filename(): p.get_payload(decode=True) for p in note.iter_attachments()}
    assert files["config.xml"] == b"<config/>"
    assert files["winmail.dat"].startswith(b"\x78\x9f\x3e\x22")
    assert b"Subject: Nightly sync stopped" in files["Nightly sync stopped.eml"]
    assert files["screen.png"] == PNG
    for name in ("config.xml", "winmail.dat", "Nightly sync stopped.eml", "screen.png"):
        assert f"  - {name} (" in text


def test_a_chinese_notification_has_the_attached_message_under_a_chinese_heading(desk):
    desk.receive(_customer_mail("您好，\n合作方报告了下面的问题："))
    [note] = [m["msg"] for m in desk.new_mail() if m["to"] == [ALICE]]
    text = body_text(note)
    assert "合作方报告了下面的问题：\n[image: screen.png]" in text
    assert "===== 附带的邮件：Nightly sync stopped.eml =====" in text
    assert "其中的附件：\n  - sync.log（16 字节）" in text
