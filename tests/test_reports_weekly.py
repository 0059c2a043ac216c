"""The weekly report email (both parts, both languages, figures visible) and the CLI."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone

import pytest

from gateway.cli import main
from gateway.jobs.weekly_report import run_weekly_report, send_weekly_report
from tests import report_fixture as fx
from tests.closure_kit import flush, html_of, text_of

MANAGER = "boss@support.example.com"


def _app(make_app, clock, **report):
    clock.set(fx.END + timedelta(minutes=30))  # Monday 2026-03-09 00:30 UTC: last week = the fixture week
    # "now" for the SLA is the clock: the fixture is judged at the period's end either way
    app = make_app(clock=clock, report={"timezone": "UTC", "recipients": [MANAGER], **report})
    fx.load(app)
    return app


def _figures_in(text: str):
    for figure in ("7", "28.6%", "25.0%", "1.0 h", "3.0 h", "20.0 h", "68.0 h", "3.67", "66.7%", "75 min",
                   "Alice Wang", "Dave Müller"):
        assert figure in text, f"{figure!r} missing"


def test_weekly_email_has_text_and_html_with_the_figures(make_app, clock):
    app = _app(make_app, clock)
    assert send_weekly_report(app) is True
    [mail] = flush(app)
    msg = mail["msg"]
    assert mail["to"] == [MANAGER]
    assert msg.get_content_type() == "multipart/mixed"  # the text and HTML, then the charts as images
    assert msg.get_payload()[0].get_content_type() == "multipart/alternative"
    assert "2026-03-02 – 2026-03-08" in msg["Subject"]
    assert msg["Auto-Submitted"] == "auto-generated"
    text, html = text_of(msg), html_of(msg)
    assert text and html
    _figures_in(text)
    _figures_in(html)
    assert "Opened:               7" in text
    assert "  P2 (3)                66.7% (1 breached)" in text
    # bars are table cells with a width and a colour: no images, nothing to fetch
    assert 'width="240" height="12" bgcolor="#3a6ea5"' in html
    assert "<img" not in html and "http" not in html.replace("http-equiv", "")


def test_weekly_email_carries_the_desk_charts_as_images(make_app, clock):
    from PIL import Image

    from gateway.jobs import report_charts, weekly_report

    app = _app(make_app, clock)
    send_weekly_report(app)
    [mail] = flush(app)
    images = {p.get_filename(): p.get_payload(decode=True) for p in mail["msg"].walk()
              if p.get_content_type() == "image/png"}
    assert sorted(images) == sorted(c.name for c in report_charts.CHARTS)
    with app.db.session() as s:  # the same series the desk's report page draws
        week = report_charts.weekly_series(app, s, weekly_report.build, 8, fx.END.date() - timedelta(days=1))[-1]
    assert week["opened"] == 7
    assert week["first_p90_hours"] >= week["first_hours"] and week["resolution_p90_hours"] >= week["resolution_hours"]
    volume = Image.open(io.BytesIO(images["volume-per-week.png"]))
    top = report_charts.HEADER
    assert volume.format == "PNG" and volume.size == (40 + 60 * 8, 180 + top + report_charts.LEGEND)
    # the last week's bar is the tallest (7 of 7): the blue reaches the top of the plot
    assert volume.getpixel((20 + 7 * 60 + 20, top + 31)) == (74, 123, 208)
    # every image says what it shows, in both languages: drawn above the plot and as its text chunks
    for c in report_charts.CHARTS:
        img = Image.open(io.BytesIO(images[c.name]))
        assert img.text == {"Title": c.caption["en"], "Description": c.caption["zh-CN"]}
        assert img.crop((0, 0, img.width, top)).convert("L").getextrema()[0] < 100  # the caption is drawn
    times = [c for c in report_charts.CHARTS if c.fields == ("first_hours", "first_p90_hours")]
    assert times and "90th percentile" in times[0].caption["en"] and "百分位" in times[0].caption["zh-CN"]
    # and the mail lists them with their captions, in its language
    assert "first-response-hours-per-week.png: First-response time per week (hours): median and 90th percentile" \
        in text_of(mail["msg"])


def test_weekly_email_in_chinese(make_app, clock):
    app = _app(make_app, clock, language="zh-CN")
    send_weekly_report(app)
    [mail] = flush(app)
    assert "技术支持周报" in mail["msg"]["Subject"]
    text, html = text_of(mail["msg"]), html_of(mail["msg"])
    assert "新建：                7" in text and "满意度：平均 3.67 分" in text
    assert "满意度：平均 3.67 分" in html and "66.7%" in html
    assert "first-response-hours-per-week.png: 每周首次响应时间（小时）：中位数与第 90 百分位" in text
    assert "每周平均满意度" in html


def test_weekly_email_is_sent_once_per_week(make_app, clock):
    app = _app(make_app, clock)
    assert send_weekly_report(app) is True
    clock.advance(hours=1)
    assert send_weekly_report(app) is False  # a second scheduler, a restart
    assert len(flush(app)) == 1
    clock.advance(days=7)
    assert send_weekly_report(app) is True


def test_weekly_email_goes_to_managers_when_no_recipients(make_app, clock):
    app = _app(make_app, clock, recipients=[])
    send_weekly_report(app)
    [mail] = flush(app)
    assert mail["to"] == ["carol@support.example.com"]


def test_job_sends_once_when_the_report_time_has_come(make_app, clock):
    # Friday 2026-03-06 08:00 Asia/Shanghai = 00:00 UTC: the report covers Fri 02-27 .. Thu 03-05 local
    app = make_app(clock=clock, report={"weekly": True, "day": "fri", "time": "08:00", "timezone": "Asia/Shanghai",
                                        "recipients": [MANAGER]})
    clock.set(datetime(2026, 3, 5, 23, 59, tzinfo=timezone.utc))
    assert run_weekly_report(app) == {}  # last Friday's report is a week old: no catching up that far
    clock.advance(minutes=1)
    assert run_weekly_report(app) == {"sent": 1}
    [mail] = flush(app)
    assert "2026-02-27 – 2026-03-05" in mail["msg"]["Subject"]
    clock.advance(hours=30)  # the scheduler keeps calling; nothing more this week
    assert run_weekly_report(app) == {"already_sent": 1}
    assert flush(app) == []
    clock.advance(days=6)
    assert run_weekly_report(app) == {"sent": 1}


def test_job_does_nothing_when_weekly_is_off(make_app, clock):
    app = make_app(clock=clock, report={"recipients": [MANAGER]})
    clock.set(datetime(2026, 3, 2, 0, 30, tzinfo=timezone.utc))
    assert run_weekly_report(app) == {}


# ---------------------------------------------------------------- CLI

@pytest.fixture
def cli(make_app, clock, tmp_path):
    app = _app(make_app, clock)
    cfg = tmp_path / "cli.toml"
    cfg.write_text(
        f'[gateway]\ndata_dir = "{tmp_path / "var"}"\nsecret_key = "test-secret-key-0123456789abcdef"\n'
        f'[database]\nurl = "{app.db.url}"\n[report]\ntimezone = "UTC"\nrecipients = ["{MANAGER}"]\n',
        encoding="utf-8")

    def run(*argv):
        return main(["--config", str(cfg), *argv])

    run.app = app
    return run


def test_cli_report_json_matches_the_hand_computed_figures(cli, capsys):
    assert cli("report", "--from", "2026-03-02", "--to", "2026-03-08", "--json") == 0
    r = json.loads(capsys.readouterr().out)
    assert r["tickets"] == fx.EXPECTED_TICKETS
    assert r["sla"] == fx.EXPECTED_SLA
    assert r["satisfaction"] == fx.EXPECTED_SATISFACTION


def test_cli_report_csv_and_text(cli, capsys):
    assert cli("report", "--from", "2026-03-02", "--to", "2026-03-08", "--csv") == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["scope", "item", "metric", "value"]
    assert ["tickets", "", "opened", "7"] in rows
    assert ["sla", "P2", "first_response_compliance", "0.6667"] in rows
    assert ["engineer", fx.ALICE, "time_minutes", "75"] in rows
    assert cli("report", "--from", "2026-03-02", "--to", "2026-03-08") == 0
    text = capsys.readouterr().out
    assert "Opened:               7" in text and text.startswith("Weekly support report, 2026-03-02")
    # a period that is not a week is not called one
    assert cli("report", "--from", "2026-03-01", "--to", "2026-03-31") == 0
    assert capsys.readouterr().out.startswith("Support report, 2026-03-01 to 2026-03-31")


def test_cli_report_bad_dates_say_what_to_write(cli, capsys):
    assert cli("report", "--from", "last monday") == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err
    assert cli("report", "--from", "2026-03-09", "--to", "2026-03-02") == 2
    assert "after --to" in capsys.readouterr().err


def test_cli_kb_search(cli, capsys):
    from gateway.desk import kb

    with cli.app.db.session() as s:
        kb.save_article(s, title="打印机无法打印", tags=["printer"], problem="打印机脱机", solution="重装驱动。",
                        now=fx.NOW)
        kb.save_article(s, title="VPN drops", tags=["vpn"], problem="", solution="Raise IKE lifetime.", now=fx.NOW)
    assert cli("kb", "search", "打印机脱机") == 0
    out = capsys.readouterr().out
    assert "打印机无法打印" in out and "重装驱动" in out and "VPN" not in out
    assert cli("kb", "search", "vpn", "--json") == 0
    assert json.loads(capsys.readouterr().out)[0]["title"] == "VPN drops"
    assert cli("kb", "search", "kubernetes") == 1
