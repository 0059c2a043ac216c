"""Self-service by mail: subject "status" / "查询" lists the sender's own open tickets."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gateway.selfservice import is_status_request
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
