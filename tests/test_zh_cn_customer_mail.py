"""A customer who writes Chinese reads Chinese: every customer-facing template of
templates/zh-CN/, reached by a real mail flow (mail in through the pipeline, the outbox
dispatched), its wording asserted: subject and body, and no English template text.

Customer-facing: acknowledgement, relay, customer_takeover (colleague and specialist),
closure (with the survey), survey_thanks (and the reopened wording), survey_page (the
one-click web page), status_list, pending_reminder, auto_resolved, stranger_rejected, merged.
The others (notification, note, handover, handback, escalation_tier2, tier2_report,
manager_alert, sla_warning, low_score_alert, command_error, command_refused, bounce_notice,
delivery_failed, weekly_report) go to engineers or managers only.
"""

from __future__ import annotations

import urllib.request

import pytest

from gateway.runtime.dispatch import dispatch_due
from gateway.jobs.pending import run_pending_reminders
from gateway.edges.web import WebServer
from tests.engineer_mail import (
    ALICE, BOB, CAROL, CUSTOMER, Desk, customer_mail, latest_ticket_id, reply_to, ticket,
)
from tests.mail import body_text, build

ZH = dict(subject="网站打不开", body="您好，我们的网站从早上九点开始一直返回 502 错误，客户无法下单。\n", name="李伟")
# Sentences of the English templates: a Chinese customer must never get them instead.
ENGLISH = ("Hello", "Thank you", "Your request", "has been resolved", "Reply to this email", "We are sorry",
           "Solution:", "reply within")


@pytest.fixture
def desk(make_app, clock):
    return Desk(make_app(clock=clock))


def _one_to_customer(desk, who: str = CUSTOMER):
    mails = [m["msg"] for m in desk.new_mail() if who in m["to"]]
    assert len(mails) == 1, [m["Subject"] for m in mails]
    return mails[0]


def _all_to_customer(desk):
    return [m["msg"] for m in customer_mail(desk.new_mail())]


def _chinese(msg, *phrases: str, subject: tuple[str, ...] = ()) -> str:
    text = body_text(msg)
    for p in phrases:
        assert p in text, (p, text)
    for p in subject:
        assert p in msg["Subject"], (p, msg["Subject"])
    for p in ENGLISH:
        assert p not in text, (p, text)
    return text


def _opened(desk):
    """Li Wei writes Chinese; returns (ticket, acknowledgement, alice's notification)."""
    desk.customer_writes(**ZH)
    sent = desk.new_mail()
    t = ticket(desk.app, latest_ticket_id(desk.app))
    assert t.language == "zh-CN"
    [ack] = [m["msg"] for m in sent if CUSTOMER in m["to"]]
    [note] = [m["msg"] for m in sent if ALICE in m["to"]]
    return t, ack, note


def test_acknowledgement_is_chinese(desk):
    t, ack, _ = _opened(desk)
    _chinese(ack, "李伟，您好：", f"您的问题已登记，工单号 {t.ref}，优先级 {t.priority}。",
             "如需补充信息，请直接回复本邮件", subject=(f"[{t.ref}] 我们已收到您的问题：网站打不开",))


def test_relayed_answer_is_framed_in_chinese(desk):
    t, _, note = _opened(desk)
    desk.receive(reply_to(note, "李先生您好，请清除代理缓存后再试。\n", style="foxmail"))
    msg = _one_to_customer(desk)
    _chinese(msg, "李先生您好，请清除代理缓存后再试。", f"工单 {t.ref}：直接回复本邮件即可。",
             subject=(f"回复：[{t.ref}]",))
    assert msg["From"].addresses[0].display_name == "Alice（技术支持）"


def test_takeover_notices_are_chinese(desk):
    t, _, note = _opened(desk)
    desk.receive(reply_to(note, "#handover\n"))
    colleague = _one_to_customer(desk)
    _chinese(colleague, f"您的问题 {t.ref}（优先级 {t.priority}）已由我们团队的同事", "您无需做任何操作",
             subject=("同事已接手您的问题",))
    handover = next(m["msg"] for m in desk.transport.sent if BOB in m["to"])
    desk.receive(reply_to(handover, "#escalate\n", frm=BOB, name="Bob Zhang"))  # to the manager (第五条)
    alert = next(m["msg"] for m in desk.transport.sent if m["to"] == [CAROL] and "升级至经理" in m["msg"]["Subject"])
    desk.receive(reply_to(alert, "#escalate\n", frm=CAROL, name="Carol Li"))  # who brings in tier 2
    specialist = _one_to_customer(desk)
    _chinese(specialist, "已转交我们的专家团队处理", subject=("专家团队已接手您的问题",))


def test_closure_with_survey_and_the_thanks_are_chinese(desk):
    t, _, note = _opened(desk)
    desk.receive(reply_to(note, "#solution\n已扩大上游连接池，网站恢复正常。\n", style="foxmail"))
    closure = _one_to_customer(desk)
    _chinese(closure, "李伟，您好！", f"您的问题 {t.ref} 已解决。", "解决方案：\n已扩大上游连接池，网站恢复正常。",
             "请直接回复本邮件，在第一行写一个 1（非常不满意）到", "天内回复本邮件，工单将重新打开",
             subject=(f"[{t.ref}] 已解决：网站打不开",))
    desk.receive(build(frm=CUSTOMER, name="李伟", to=closure["Reply-To"], subject="回复：" + closure["Subject"],
                       body="5 非常满意，处理得很快\n", in_reply_to=closure["Message-ID"]))
    thanks = _one_to_customer(desk)
    text = _chinese(thanks, f"感谢您对工单 {t.ref} 的评价：5 分（满分 5 分）。", subject=(f"[{t.ref}] 感谢您的评价",))
    assert "重新打开" not in text


def test_a_low_score_is_answered_in_chinese_with_the_reopening(desk):
    t, _, note = _opened(desk)
    desk.receive(reply_to(note, "#status resolved\n已处理。\n", style="foxmail"))
    closure = [m for m in _all_to_customer(desk) if "已解决" in m["Subject"]][0]
    desk.receive(build(frm=CUSTOMER, name="李伟", to=closure["Reply-To"], subject="回复：" + closure["Subject"],
                       body="2 不满意，问题还在\n", in_reply_to=closure["Message-ID"]))
    thanks = _one_to_customer(desk)
    _chinese(thanks, "2 分（满分 5 分）", "很抱歉没有让您满意。该工单已重新打开")
    assert ticket(desk.app, t.id).status == "open"


def test_status_list_is_chinese(desk):
    t, _, _ = _opened(desk)
    desk.receive(build(frm=CUSTOMER, name="李伟", subject="查询", body="请告诉我工单的状态。\n"))
    msg = _one_to_customer(desk)
    _chinese(msg, "李伟，您好！", "有 1 个未关闭的工单", t.ref, "状态：已受理", "工程师：",
             subject=("您未关闭的技术支持工单",))


def test_waiting_reminder_and_automatic_resolution_are_chinese(desk, clock):
    t, _, note = _opened(desk)
    desk.receive(reply_to(note, "请把 nginx 的错误日志发给我们。\n", style="foxmail"))
    desk.new_mail()
    assert ticket(desk.app, t.id).status == "pending"
    clock.advance(hours=desk.app.config.workflow.pending_reminder_hours + 1)
    assert run_pending_reminders(desk.app)["reminded"] == 1
    dispatch_due(desk.app, desk.transport)
    reminder = _one_to_customer(desk)
    _chinese(reminder, f"工单 {t.ref}（“网站打不开”）正在等待您的回复", "该工单将在约",
             subject=(f"[{t.ref}] 等待您的回复：网站打不开",))
    clock.advance(hours=desk.app.config.workflow.pending_autoresolve_hours)
    assert run_pending_reminders(desk.app)["auto_resolved"] == 1
    dispatch_due(desk.app, desk.transport)
    closed = _one_to_customer(desk)
    _chinese(closed, f"我们一直没有收到您关于工单 {t.ref}（“网站打不开”）的回复，因此已将其标记为已解决。",
             subject=(f"[{t.ref}] 因未收到回复已关闭：网站打不开",))


def test_a_stranger_writing_chinese_is_refused_in_chinese(make_app, clock):
    desk = Desk(make_app(clock=clock, workflow={"stranger_policy": "reject"}))
    t, ack, _ = _opened(desk)
    stranger = "zhang.san@other.example.test"
    desk.receive(build(frm=stranger, name="张三", subject="回复：" + ack["Subject"], body="我也遇到了同样的问题。\n",
                       in_reply_to=ack["Message-ID"], references=ack["Message-ID"]))
    msg = _one_to_customer(desk, stranger)
    text = _chinese(msg, "您的邮件涉及的工单不属于您的邮箱地址", subject=("您的邮件未被受理",))
    assert t.ref not in text and t.ref not in msg["Subject"]  # nothing of the ticket it named


def test_one_click_survey_page_is_chinese(make_app, clock):
    app = make_app(clock=clock, workflow={"survey_url": "http://127.0.0.1:0"})
    server = WebServer(app, "127.0.0.1", 0).start()
    try:
        desk = Desk(app)
        t, _, note = _opened(desk)
        desk.receive(reply_to(note, "#status resolved\n已处理。\n", style="foxmail"))
        closure = [m for m in _all_to_customer(desk) if "已解决" in m["Subject"]][0]
        [link] = [ln.split("：", 1)[1].strip() for ln in body_text(closure).splitlines() if ln.strip().startswith("4 分：")]
        url = f"{server.base_url}/survey/" + link.rsplit("/survey/", 1)[1]
        with urllib.request.urlopen(url, timeout=10) as r:
            page = r.read().decode()
        assert f"为工单 {t.ref} 评分：4 分（满分 5 分）" in page and "提交评分" in page
        with urllib.request.urlopen(urllib.request.Request(url, data=b"comment=", method="POST"), timeout=10) as r:
            page = r.read().decode()
        assert "谢谢！" in page and f"您对 {t.ref} 的评分 4/5 已记录。" in page
        assert "Thank you" not in page
    finally:
        server.stop()


def test_merge_notice_is_chinese(desk, clock):
    first, _, _ = _opened(desk)
    clock.advance(minutes=30)
    desk.customer_writes(subject="登录页面也报错", body="登录页面也显示错误。\n", name="李伟")
    sent = desk.new_mail()
    second = ticket(desk.app, latest_ticket_id(desk.app))
    [note2] = [m["msg"] for m in sent if ALICE in m["to"]]
    desk.receive(reply_to(note2, f"#merge {first.ref}"))
    msg = _one_to_customer(desk)
    _chinese(msg, "李伟，您好：", f"您的问题 {second.ref}（“登录页面也报错”）与我们正在处理的另一个问题属于同一事项",
             f"现已合并在 {first.ref} 下一并处理", "您无需做任何操作",
             subject=(f"[{first.ref}] 您的问题 {second.ref} 已并入 {first.ref} 继续处理：登录页面也报错",))
