"""An engineer forwards a customer's mail into support: the ticket is the customer's, the
engineer brought it in and owns it (unless the rules say otherwise), and the customer hears
from us only when `workflow.ack_forwarded` says so. Nobody else's forward is treated so."""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP
from email.utils import make_msgid

import pytest

from gateway.outbox import intake_address
from tests.dates import sent_now
from tests.engineer_mail import (
    ALICE, BOB, CUSTOMER, SUPPORT, Desk, all_text, events, latest_ticket_id, reply_to, ticket,
)
from tests.mail import body_text

WANG = "wang.fang@newcustomer.example"  # in no customer directory: the rules name no owner
GMAIL_BLOCK = ("---------- 转发的邮件 ---------\n发件人： 王芳 <wang.fang@newcustomer.example>\n"
               "日期：2026年3月1日周日 下午4:20\n主题：数据库备份失败\n收件人：Bob <bob@support.example.com>\n\n"
               "您好，昨晚的数据库备份失败了，错误码 ORA-19502。\n日志见附件。\n")


def messages(app, tid):
    """The ticket's messages as plain dicts, with their attachment names."""
    from sqlalchemy import select

    from storage.models import Message

    with app.db.session() as s:
        return [dict(sender_email=m.sender_email, internal=m.internal, kind=m.kind, text=m.text,
                     message_id=m.message_id, attachments=[a.filename for a in m.attachments])
                for m in s.execute(select(Message).where(Message.ticket_id == tid).order_by(Message.id)).scalars()]


@pytest.fixture
def desk(make_app, clock):
    return Desk(make_app(clock=clock))


def forward(desk, *, frm=BOB, to=None, text="Wang Fang wrote to me directly, please track it.\n\n" + GMAIL_BLOCK,
            subject="Fwd: 数据库备份失败", attach=True, headers=None, inner=None) -> bytes:
    m = EmailMessage()
    m["From"] = f"Bob Li <{frm}>"
    m["To"] = to or intake_address(desk.app, BOB)
    m["Subject"] = subject
    m["Message-ID"] = make_msgid(domain="support.example.com")
    m["Date"] = sent_now()
    for k, v in (headers or {}).items():
        m[k] = v
    m.set_content(text)
    if attach:
        m.add_attachment(b"ORA-19502: write error on file\n", maintype="text", subtype="plain",
                         filename="backup.log")
    if inner is not None:
        m.add_attachment(inner)
    return m.as_bytes(policy=SMTP)


def test_an_engineers_inline_forward_opens_the_customers_ticket_owned_by_the_engineer(desk):
    desk.receive(forward(desk))
    mails = desk.new_mail()
    tid = latest_ticket_id(desk.app)
    t = ticket(desk.app, tid)
    assert (t.requester_email, t.requester_name, t.subject) == (WANG, "王芳", "数据库备份失败")
    assert (t.owner, t.handler, t.language) == (BOB, BOB, "zh-CN")
    customer_msg, forward_msg = messages(desk.app, tid)
    assert (customer_msg["sender_email"], customer_msg["internal"]) == (WANG, False)
    assert customer_msg["text"].startswith("您好，昨晚的数据库备份失败了")
    assert customer_msg["attachments"] == ["backup.log"]  # the original's files kept
    assert (forward_msg["sender_email"], forward_msg["internal"], forward_msg["kind"]) == (BOB, True, "forward")
    assert forward_msg["text"] == "Wang Fang wrote to me directly, please track it."
    [ev] = events(desk.app, tid, "forwarded_in")
    assert ev.actor == BOB and ev.data["customer"] == WANG and ev.data["date"] == "2026-03-01T16:20:00+08:00"
    # nothing to the customer (workflow.ack_forwarded is off); bob is told, with a reply address of his own
    assert not [m for m in mails if WANG in m["to"]]
    [note] = [m["msg"] for m in mails if m["to"] == [BOB]]
    text = body_text(note)
    assert "由 Bob" in text and "转发客户邮件建立" in text and "王芳 <wang.fang@newcustomer.example>" in text
    assert desk.app.signer.check_reply_token(note["Reply-To"].split("+", 1)[1].split("@")[0], BOB) == tid
    # bob's answer reaches the customer from the support address, his own address unseen
    desk.receive(reply_to(note, "您好，请检查备份目录的磁盘空间。", frm=BOB, name="Bob Li"))
    [answer] = [m for m in desk.new_mail() if WANG in m["to"]]
    assert "请检查备份目录的磁盘空间" in body_text(answer["msg"])
    assert BOB not in all_text(answer["raw"])


def test_with_ack_forwarded_the_customer_is_acknowledged_without_any_internal_detail(make_app, clock):
    desk = Desk(make_app(clock=clock, workflow={"ack_forwarded": True}))
    desk.receive(forward(desk))
    [ack] = [m for m in desk.new_mail() if WANG in m["to"]]
    raw = all_text(ack["raw"])
    assert "ts-000001" in raw
    for secret in (BOB, "wang fang wrote to me directly", "support+f"):
        assert secret not in raw


def test_a_forward_as_attachment_takes_the_originals_own_id_date_and_files(desk):
    inner = EmailMessage()
    inner["From"] = "王芳 <wang.fang@newcustomer.example>"
    inner["To"] = BOB
    inner["Subject"] = "VPN 无法连接"
    inner["Date"] = "Sun, 01 Mar 2026 16:20:00 +0800"
    inner["Message-ID"] = "<orig-1@newcustomer.example>"
    inner.set_content("VPN 从今天早上开始无法连接。\n")
    inner.add_attachment(b"\x89PNG\r\n\x1a\n", maintype="image", subtype="png", filename="vpn.png")
    desk.receive(forward(desk, text="FYI, see attached.\n", subject="Fwd: VPN 无法连接", attach=False, inner=inner))
    tid = latest_ticket_id(desk.app)
    t = ticket(desk.app, tid)
    assert (t.requester_email, t.subject, t.owner) == (WANG, "VPN 无法连接", BOB)
    customer_msg, forward_msg = messages(desk.app, tid)
    assert customer_msg["message_id"] == "orig-1@newcustomer.example"
    assert customer_msg["text"].strip() == "VPN 从今天早上开始无法连接。"
    assert customer_msg["attachments"] == ["vpn.png"]
    assert forward_msg["attachments"] == ["VPN 无法连接.eml"]  # the original kept whole
    assert forward_msg["text"] == "FYI, see attached."


def test_the_rules_owner_stays_the_owner_and_the_engineer_is_recorded(desk):
    block = GMAIL_BLOCK.replace("王芳 <wang.fang@newcustomer.example>", f"Li Wei <{CUSTOMER}>")
    desk.receive(forward(desk, text=block))
    tid = latest_ticket_id(desk.app)
    t = ticket(desk.app, tid)
    assert (t.requester_email, t.owner) == (CUSTOMER, ALICE)  # the project's primary, by the rules
    assert events(desk.app, tid, "forwarded_in")[0].actor == BOB
    [note] = [m["msg"] for m in desk.new_mail() if m["to"] == [ALICE]]
    assert "由 Bob" in body_text(note)


def test_an_unproven_forward_is_an_ordinary_ticket_from_its_sender(desk):
    desk.receive(forward(desk, to=SUPPORT))  # the plain support address: nothing proves it is bob
    t = ticket(desk.app, latest_ticket_id(desk.app))
    assert t.requester_email == BOB and not events(desk.app, t.id, "forwarded_in")


def test_someone_else_using_an_engineers_intake_address_gets_an_ordinary_ticket(desk):
    desk.receive(forward(desk, frm="mallory@evil.example"))  # bob's intake address, not signed for mallory
    t = ticket(desk.app, latest_ticket_id(desk.app))
    assert t.requester_email == "mallory@evil.example" and not events(desk.app, t.id, "forwarded_in")


def test_with_trust_dmarc_an_authenticated_forward_to_the_support_address_is_brought_in(make_app, clock):
    desk = Desk(make_app(clock=clock, workflow={"trust_dmarc": True},
                         spam={"authserv_id": "mx.support.example.test"}))
    auth = {"Authentication-Results": "mx.support.example.test; dmarc=pass header.from=support.example.com"}
    desk.receive(forward(desk, to=SUPPORT, headers=auth))
    t = ticket(desk.app, latest_ticket_id(desk.app))
    assert (t.requester_email, t.owner) == (WANG, BOB)
    assert events(desk.app, t.id, "forwarded_in")[0].data["how"] == "dmarc"


def test_the_same_forward_twice_opens_one_ticket(desk):
    raw = forward(desk)
    desk.receive(raw)
    desk.receive(raw.replace(b"please track it", b"please track it!"))  # same Message-ID, other bytes
    assert latest_ticket_id(desk.app) == 1


def test_help_tells_an_engineer_their_intake_address(desk):
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = f"Bob <{BOB}>", SUPPORT, "#help"
    m["Message-ID"] = make_msgid(domain="support.example.com")
    m.set_content("#help\n")
    desk.receive(m.as_bytes(policy=SMTP))
    [help_mail] = [x["msg"] for x in desk.new_mail() if x["to"] == [BOB]]
    assert intake_address(desk.app, BOB) in body_text(help_mail)
    assert intake_address(desk.app, BOB) != intake_address(desk.app, ALICE)


def test_a_forward_over_smtp_to_the_intake_address_reaches_the_engineer_as_the_customers_ticket(running, relay):
    """Over real sockets: the listener accepts the engineer's intake address, the ticket is
    the customer's, and the only mail out is bob's notification (no acknowledgement)."""
    from tests.conftest import wait_for
    from tests.mail import parse, send

    gw = running()
    intake = intake_address(gw.app, BOB)
    send(gw.smtp_port, forward(Desk(gw.app), to=intake), BOB, [intake])
    note = wait_for(lambda: [m for m in list(relay.messages) if BOB in m["to"]], what="bob's notification")[0]
    assert "王芳 <wang.fang@newcustomer.example>" in body_text(parse(note["raw"]))
    t = ticket(gw.app, latest_ticket_id(gw.app))
    assert (t.requester_email, t.owner) == (WANG, BOB)
    assert not [m for m in list(relay.messages) if WANG in m["to"]]
