"""Closure: resolve() marks the ticket, stores the solution, mails the customer the
solution and a survey, calls the handback hook and, with #kb, saves an article."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gateway.desk import closure
from storage.models import KbArticle, Ticket
from tests.closure_kit import (
    ALICE, CUSTOMER, events, flush, html_of, open_ticket, outbox_rows, resolve, text_of, ticket, to_customer,
)


def test_resolve_sends_solution_and_survey_to_requester(app):
    tid = open_ticket(app)
    flush(app)  # the acknowledgement
    resolve(app, tid, solution="Restart the batch scheduler, then rerun job 42.")

    t = ticket(app, tid)
    assert t.status == "resolved"
    assert t.resolved_at is not None
    assert t.solution == "Restart the batch scheduler, then rerun job 42."
    status = events(app, tid, "status")[-1]
    assert (status.data["old"], status.data["new"], status.actor) == ("new", "resolved", ALICE)

    [mail] = to_customer(flush(app))
    msg = mail["msg"]
    assert mail["to"] == [CUSTOMER]
    assert t.ref in msg["Subject"] and "Resolved" in msg["Subject"]
    body = text_of(msg)
    assert "Restart the batch scheduler, then rerun job 42." in body
    assert "from\n1 (very dissatisfied) to 5 (very satisfied)" in body
    assert "within 14 days" in body
    assert "Restart the batch scheduler" in html_of(msg)
    # the answer must come back to the ticket for this customer, and it is not an auto-reply
    assert msg["Reply-To"].startswith("support+t")
    assert msg["Auto-Submitted"] is None
    assert "/survey/" not in body  # no web endpoint configured: no links


def test_close_status_sets_closed_at_and_chinese_ticket_gets_chinese_mail(app):
    tid = open_ticket(app, subject="核心系统批处理失败", body="您好，昨晚的批处理作业失败了，请帮忙查看。\n")
    assert ticket(app, tid).language == "zh-CN"
    flush(app)
    resolve(app, tid, solution="请重启调度服务。", status="closed")
    t = ticket(app, tid)
    assert t.status == "closed" and t.closed_at is not None and t.resolved_at is not None
    [mail] = to_customer(flush(app))
    assert "已解决" in mail["msg"]["Subject"]
    body = text_of(mail["msg"])
    assert "请重启调度服务。" in body and "1（非常不满意）" in body


def test_resolve_refuses_other_statuses(app):
    tid = open_ticket(app)
    with pytest.raises(ValueError, match="resolved' or 'closed"):
        resolve(app, tid, status="pending")
    assert ticket(app, tid).status == "new"


def test_empty_solution_keeps_earlier_solution(app):
    tid = open_ticket(app)
    with app.db.session() as s:
        s.get(Ticket, tid).solution = "Earlier #solution text."
    resolve(app, tid, solution="  ")
    assert ticket(app, tid).solution == "Earlier #solution text."
    closure_mail = [m for m in flush(app) if "Resolved" in m["msg"]["Subject"]][0]
    assert "Earlier #solution text." in text_of(closure_mail["msg"])


def test_customer_ccs_get_the_closure_but_watchers_do_not(app):
    tid = open_ticket(app, cc="boss@bigbank.example")
    flush(app)
    resolve(app, tid)
    [mail] = to_customer(flush(app))
    assert sorted(mail["to"]) == sorted([CUSTOMER, "boss@bigbank.example"])
    assert "boss@bigbank.example" in mail["msg"]["Cc"]


def test_kb_tags_save_article_with_first_customer_message_as_problem(app):
    tid = open_ticket(app, subject="VPN drops every hour", body="Our VPN tunnel drops every hour since Monday.\n")
    resolve(app, tid, solution="Raise the IKE lifetime to 28800 s.", kb_tags=("vpn", "#network"))
    with app.db.session() as s:
        [article] = s.execute(select(KbArticle)).scalars().all()
        assert article.title == "VPN drops every hour"
        assert article.tags == ["vpn", "network"]
        assert "drops every hour since Monday" in article.problem
        assert article.solution == "Raise the IKE lifetime to 28800 s."
        assert article.ticket_id == tid
    assert events(app, tid, "kb_saved")


def test_without_kb_tags_no_article(app):
    tid = open_ticket(app)
    resolve(app, tid)
    with app.db.session() as s:
        assert s.execute(select(KbArticle)).first() is None


def test_resolve_calls_handover_on_resolved(app, monkeypatch):
    calls = []
    monkeypatch.setattr("gateway.desk.handover.on_resolved",
                        lambda app_, s, t, *, actor: calls.append((t.id, t.status, actor)))
    tid = open_ticket(app)
    resolve(app, tid)
    assert calls == [(tid, "resolved", ALICE)]


def test_survey_links_when_web_endpoint_enabled(make_app):
    app = make_app(workflow={"survey_url": "https://support.example.test/s"})
    tid = open_ticket(app)
    flush(app)
    resolve(app, tid)
    [mail] = to_customer(flush(app))
    body = text_of(mail["msg"])
    links = [line.split(": ", 1)[1] for line in body.splitlines() if "/survey/" in line]
    assert len(links) == 5
    token = links[0].rsplit("/", 1)[1]
    ticket_id, _stamp, score = app.signer.check_link_token(closure.SURVEY_PURPOSE, token)
    assert (int(ticket_id), int(score)) == (tid, 5)
    assert 'href="https://support.example.test/s/survey/' in html_of(mail["msg"])
    assert outbox_rows(app, "closure")[0].automatic is False
