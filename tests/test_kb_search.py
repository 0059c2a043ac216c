"""Knowledge articles: search in Chinese and English, and suggestions in the acknowledgement."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from gateway.desk import kb
from tests.closure_kit import deliver, flush, text_of, to_customer
from tests.mail import build

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)

ARTICLES = [
    ("VPN tunnel drops every hour", ["vpn", "network"], "The IPsec VPN tunnel disconnects hourly.",
     "Raise the IKE SA lifetime to 28800 seconds on both peers."),
    ("打印机无法打印", ["打印机"], "网络打印机显示脱机，无法打印文件。", "重新安装打印机驱动并重启打印服务。"),
    ("Database backup fails with ORA-19502", ["oracle", "backup"], "RMAN backup stops with ORA-19502 write error.",
     "Free space on the backup volume; ORA-19502 means the disk is full."),
    ("数据库连接超时", ["数据库"], "应用连接数据库时经常超时。", "调大连接池并检查防火墙空闲超时设置。"),
]


@pytest.fixture
def kb_app(app):
    with app.db.session() as s:
        for title, tags, problem, solution in ARTICLES:
            kb.save_article(s, title=title, tags=tags, problem=problem, solution=solution, now=NOW)
    return app


def _search(app, words, limit=10):
    with app.db.session() as s:
        return [h.title for h in kb.search(s, words, limit)]


def test_terms_cut_cjk_into_bigrams_and_drop_english_stop_words():
    assert kb.terms("The printer 打印机 is down") == ["printer", "down", "打印", "印机"]
    assert kb.terms("ORA-19502 error") == ["ora-19502", "error"]
    assert kb.terms("Ｖｐｎ 网") == ["vpn", "网"]  # full-width folded; a lone CJK character kept


def test_english_search(kb_app):
    assert _search(kb_app, "vpn drops")[0] == "VPN tunnel drops every hour"
    assert _search(kb_app, "ORA-19502") == ["Database backup fails with ORA-19502"]
    assert _search(kb_app, "the of and") == []
    assert _search(kb_app, "kubernetes") == []


def test_chinese_search_without_spaces(kb_app):
    assert _search(kb_app, "打印机脱机了怎么办")[0] == "打印机无法打印"
    assert _search(kb_app, "数据库超时")[0] == "数据库连接超时"
    # mixed query: each language finds its own article
    assert set(_search(kb_app, "数据库 backup")) == {"Database backup fails with ORA-19502", "数据库连接超时"}


def test_title_outweighs_body_and_limit_applies(kb_app):
    with kb_app.db.session() as s:
        kb.save_article(s, title="Disk full on app server", tags=[], problem="backup volume", solution="clean up",
                        now=NOW)
    hits = _search(kb_app, "backup")
    assert hits[0] == "Database backup fails with ORA-19502"  # title + tag + body beats body alone
    assert _search(kb_app, "backup", limit=1) == hits[:1]


def test_suggest_needs_two_terms_and_one_in_title(kb_app):
    with kb_app.db.session() as s:
        assert [h.title for h in kb.suggest(s, "Our VPN drops since Monday", 3)] == ["VPN tunnel drops every hour"]
        assert kb.suggest(s, "hello, one question about invoices", 3) == []
        assert kb.suggest(s, "VPN drops", 0) == []


def test_acknowledgement_suggests_articles_when_enabled(make_app):
    app = make_app(workflow={"kb_suggestions": 3})
    with app.db.session() as s:
        for title, tags, problem, solution in ARTICLES:
            kb.save_article(s, title=title, tags=tags, problem=problem, solution=solution, now=NOW)
    deliver(app, build(frm="x@bigbank.example", subject="打印机又脱机了", body="打印机显示脱机，无法打印。\n"))
    [ack] = to_customer(flush(app), "x@bigbank.example")
    assert "打印机无法打印" in text_of(ack["msg"])
    assert "VPN" not in text_of(ack["msg"])


def test_acknowledgement_has_no_suggestions_by_default(app):
    with app.db.session() as s:
        kb.save_article(s, title="VPN tunnel drops every hour", tags=["vpn"], problem="", solution="", now=NOW)
    deliver(app, build(frm="x@bigbank.example", subject="VPN tunnel drops", body="The VPN tunnel drops.\n"))
    [ack] = to_customer(flush(app), "x@bigbank.example")
    assert "VPN tunnel drops every hour" not in text_of(ack["msg"])
