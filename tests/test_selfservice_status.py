"""Self-service by mail: "status", "What is the status of my tickets?", "进度查询", "我的工单" (subject or a
one-line body) lists the sender's own open tickets; a problem report that mentions a status never does."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from parsers.status_request import is_status_request
from parsers.message import parse_email
from tests.conftest import corpus
from storage.models import Ticket
from tests.closure_kit import (
    CUSTOMER, OTHER_CUSTOMER, deliver, flush, open_ticket, resolve, text_of, tickets, to_customer,
)
from tests.mail import build


@pytest.mark.parametrize("subject, wanted", [
    ("status", True), (" STATUS ", True), ("Status?", True), ("Re: status", True), ("RE: Re: Status", True),
    ("查询", True), ("回复：查询", True), ("ｓｔａｔｕｓ", True),
    ("status of my order 42", False), ("printer status light blinks", False), ("", False), ("[TS-000001] status", False),
])
def test_status_subjects(subject, wanted):
    assert is_status_request(subject) is wanted


# Issue 18 item 12: the usual phrasings, English and Chinese.
ASKING = [
    "What is the status of my tickets?", "what's the status of my ticket", "Status of my tickets, please",
    "Could you please check the status of my requests?", "Ticket status", "Check status", "Status update",
    "My tickets", "My open tickets", "List my tickets", "Any update on my tickets?", "Where are my tickets?",
    "进度查询", "查询进度", "我的工单", "我的工单状态", "工单状态", "工单查询", "状态查询", "查看我的工单",
    "请问我的工单进度如何？", "帮我查一下工单进度", "我的工单处理到哪一步了", "回复：我的工单",
]
# Real problem reports that mention a status, or start like a lookup: each is a ticket.
PROBLEMS = [
    "Status page shows 500 error", "订单状态无法更新", "status of my order 42", "VPN status unknown",
    "Server status: down", "Order status", "Status report", "status code 500", "系统状态异常", "状态栏不显示",
    "查询功能报错", "我的问题还没解决", "工单系统打不开", "My issue", "My ticket", "Delivery Status Notification (Failure)",
    "Re: Status page shows 500 error",
]


@pytest.mark.parametrize("subject", ASKING)
def test_usual_phrasings_ask_for_the_status(subject):
    assert is_status_request(subject)


@pytest.mark.parametrize("subject", PROBLEMS)
def test_a_problem_mentioning_status_is_not_a_lookup(subject):
    assert not is_status_request(subject)
    assert not is_status_request("", subject)  # nor as a one-line body


@pytest.mark.parametrize("subject, body, wanted", [
    ("", "What is the status of my tickets?\n", True),
    ("Hi", "Hello,\nwhat's the status of my tickets?\nThanks\nLi Wei\n", True),
    ("你好", "您好，\n请问我的工单进度如何？\n谢谢\n", True),
    ("status", "请告诉我工单状态。\n", True),
    ("Login broken", "status?\n", False),  # the subject is the problem
    ("Question", "What is the status of my tickets?\nAlso the VPN drops every hour.\n", False),
    ("status", "Our portal is down since 9am.\nAll users are affected, please help!\n", False),
    ("我的工单", "订单状态无法更新，客户无法付款。\n", False),
])
def test_body_and_subject_together(subject, body, wanted):
    assert is_status_request(subject, body) is wanted


def test_a_problem_report_mentioning_status_opens_a_ticket(app):
    for subject, body in (("Status page shows 500 error", "Since 10:00 our status page returns HTTP 500.\n"),
                          ("订单状态无法更新", "从昨天开始订单状态无法更新，请尽快处理。\n"),
                          ("", "Status page shows 500 error\n")):
        counts = deliver(app, build(frm=CUSTOMER, subject=subject, body=body, name="Wang Customer"))
        assert counts["created"] == 1 and counts["status_list"] == 0
    assert len(tickets(app)) == 3


@pytest.mark.parametrize("subject, body", [
    ("What is the status of my tickets?", "\n"), ("进度查询", "\n"), ("我的工单", "谢谢\n"),
    ("Hello", "What is the status of my tickets?\n"),
])
def test_a_phrased_lookup_gets_the_list_and_no_ticket(app, subject, body):
    open_ticket(app, subject="Batch job fails")
    flush(app)
    counts = deliver(app, build(frm=CUSTOMER, subject=subject, body=body, name="Wang Customer"))
    assert counts["status_list"] == 1
    assert len(tickets(app)) == 1
    [mail] = to_customer(flush(app))
    assert "Batch job fails" in text_of(mail["msg"])


def test_no_real_mail_in_the_corpora_is_taken_for_a_lookup():
    """Every corpus mail whose subject or text mentions a status or 查询/状态/进度/工单 stays what it was."""
    root = corpus()
    checked, taken = 0, []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.stat().st_size < 200_000):
        raw = path.read_bytes()
        if not any(w in raw.lower() for w in (b"status", "查询".encode(), "状态".encode(), "进度".encode(),
                                              "工单".encode())):
            continue
        email = parse_email(raw)
        if not email.subject and not email.reply_text:
            continue
        checked += 1
        if is_status_request(email.subject, email.reply_text or email.text):
            taken.append((path.relative_to(root).as_posix(), email.subject))
    assert checked > 200
    assert taken == []


def test_status_lists_only_the_senders_open_tickets(app):
    mine_open = open_ticket(app, subject="Batch job fails")
    mine_done = open_ticket(app, subject="Old login question")
    theirs = open_ticket(app, frm=OTHER_CUSTOMER, subject="ACME secret plant outage", name="Li")
    resolve(app, mine_done)
    flush(app)

    counts = deliver(app, build(frm=CUSTOMER, subject="status", body="\n", name="Wang Customer"))
    assert counts["status_list"] == 1
    assert len(tickets(app)) == 3  # no ticket for the question
    [mail] = to_customer(flush(app))
    assert mail["to"] == [CUSTOMER]
    body = text_of(mail["msg"])
    with app.db.session() as s:
        refs = {t.id: t.ref for t in s.execute(select(Ticket)).scalars()}
    assert refs[mine_open] in body and "Batch job fails" in body
    assert refs[mine_done] not in body  # resolved: not open
    assert refs[theirs] not in body and "ACME" not in body
    assert "Alice Wang" in body  # the owner's name ...
    assert "alice@support.example.com" not in body  # ... never an engineer's address
    assert mail["msg"]["Auto-Submitted"] == "auto-replied"


def test_chinese_status_request_gets_chinese_list(app):
    open_ticket(app, subject="核心系统批处理失败", body="您好，昨晚的批处理作业失败了。\n")
    flush(app)
    deliver(app, build(frm=CUSTOMER, subject="查询", body="请告诉我工单状态。\n", name="王先生"))
    [mail] = to_customer(flush(app))
    body = text_of(mail["msg"])
    assert "未关闭的工单" in body and "核心系统批处理失败" in body


def test_status_with_no_tickets_says_so(app):
    deliver(app, build(frm="new@nowhere.example", subject="status", body="\n", name="New"))
    [mail] = flush(app)
    assert mail["to"] == ["new@nowhere.example"]
    assert "no open tickets" in text_of(mail["msg"])
    assert tickets(app) == []


def test_automatic_mail_gets_no_status_list(app):
    open_ticket(app)
    flush(app)
    raw = build(frm=CUSTOMER, subject="status", body="\n", headers={"Auto-Submitted": "auto-generated"})
    counts = deliver(app, raw)
    assert counts["status_list"] == 0
    assert to_customer(flush(app)) == []


def test_status_list_is_rate_limited(make_app):
    app = make_app(outbound={"rate_limit_per_hour": 2})
    for _ in range(3):
        deliver(app, build(frm=CUSTOMER, subject="status", body="\n"))
    assert len(to_customer(flush(app))) == 2
