"""[retention]: old raw mail, attachments, closed tickets, quarantined and suspended mail go; the log says what."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, select

from gateway.pipeline import process as pipeline
from gateway.clock import ManualClock
from gateway.jobs.retention import apply_retention, run_retention
from storage.models import AttachmentRow, AuditEntry, Event, Message, SpoolEntry, Ticket
from tests.closure_kit import deliver, flush
from tests.test_customer_data import FILE_BYTES, _mail

RETAIN = {"spool_raw_days": 30, "attachments_days": 60, "closed_tickets_days": 365, "quarantined_days": 90,
          "suspended_days": 90, "time": "03:30"}


def _count(app, model, *where):
    with app.db.session() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def _setup(app, clock):
    deliver(app, _mail("old@client-demo.example", "Old Client", "Old problem", "old text\n", attach=FILE_BYTES))
    deliver(app, _mail("new@client-demo.example", "New Client", "New problem", "new text\n"))
    flush(app)
    pipeline.spool(app, [(b"Subject: junk\r\n\r\njunk\r\n", pipeline.Source("smtp"))])
    with app.db.session() as s:
        old, new = s.execute(select(Ticket).order_by(Ticket.id)).scalars().all()
        old.status, old.closed_at = "closed", clock.now()
        s.execute(select(SpoolEntry)).scalars().all()[-1].status = "quarantined"
        return old.id, new.id


def test_each_period_removes_only_what_is_older_and_says_so(make_app):
    clock = ManualClock()
    app = make_app(clock=clock, retention=RETAIN)
    old, new = _setup(app, clock)
    sha = _sha(app, old)
    assert apply_retention(app, dry_run=True) == {k: 0 for k in apply_retention(app, dry_run=True)}

    clock.advance(days=31)  # raw bytes of processed mail go; everything else stays
    counts = apply_retention(app)
    assert counts["spool_raw_removed"] == 2 and counts["closed_tickets_removed"] == 0
    assert _count(app, SpoolEntry, SpoolEntry.status == "processed", SpoolEntry.size > 0) == 0
    assert _count(app, Message) >= 2  # the tickets' text stays

    clock.advance(days=30)  # 61 days: the closed ticket's attachment file goes, its row stays
    assert apply_retention(app)["attachment_files_removed"] == 1
    assert not app.attachments.path_for(sha).exists() and _count(app, AttachmentRow) == 1

    clock.advance(days=30)  # 91: the quarantined mail goes
    assert apply_retention(app)["quarantined_removed"] == 1
    assert _count(app, SpoolEntry, SpoolEntry.status == "quarantined") == 0

    clock.advance(days=300)  # over a year after closing: the closed ticket goes whole; the open one stays
    counts = apply_retention(app)
    assert counts["closed_tickets_removed"] == 1
    assert _count(app, Ticket, Ticket.id == old) == 0 and _count(app, Event, Event.ticket_id == old) == 0
    assert _count(app, Ticket, Ticket.id == new) == 1
    with app.db.session() as s:
        log = [a.data for a in s.execute(select(AuditEntry).where(AuditEntry.kind == "retention")
                                         .order_by(AuditEntry.id)).scalars()]
    assert [d["closed_tickets_removed"] for d in log] == [0, 0, 0, 1]


def _sha(app, ticket_id):
    with app.db.session() as s:
        return s.execute(select(AttachmentRow.sha256).join(Message, AttachmentRow.message_id == Message.id)
                         .where(Message.ticket_id == ticket_id)).scalar_one()


def test_the_nightly_job_runs_once_a_day_after_its_time(make_app):
    from datetime import datetime, timezone

    clock = ManualClock(datetime(2026, 3, 2, 19, 0, tzinfo=timezone.utc))  # 03:00 in Shanghai
    app = make_app(clock=clock, retention=RETAIN)

    def runs():
        return _count(app, AuditEntry, AuditEntry.kind == "retention")

    run_retention(app)
    assert runs() == 0  # before 03:30
    clock.advance(minutes=45)
    run_retention(app)
    run_retention(app)
    assert runs() == 1
    clock.advance(days=1)
    run_retention(app)
    assert runs() == 2


def test_suspended_mail_older_than_suspended_days_is_removed_a_younger_one_stays_and_the_log_says_so(
        make_app, caplog):
    from pathlib import Path

    from tests.hardening import push

    robots = Path(__file__).parent / "robots"
    clock = ManualClock()
    # the suspended area's own purge ([spam] retention_days) waits longer here: this is [retention]'s
    app = make_app(clock=clock, retention=RETAIN, spam={"retention_days": 3650})
    assert push(app, (robots / "spamarrest-challenge.eml").read_bytes())["suspended"] == 1
    clock.advance(days=60)
    assert push(app, (robots / "boxbe-challenge.eml").read_bytes())["suspended"] == 1
    with app.db.session() as s:
        old, young = s.execute(select(SpoolEntry.id).where(SpoolEntry.status == "suspended")
                               .order_by(SpoolEntry.id)).scalars().all()

    clock.advance(days=29)  # 89 days and 29: both within 90
    assert apply_retention(app)["suspended_removed"] == 0
    clock.advance(days=2)  # 91 and 31
    with caplog.at_level("INFO", logger="supportgw.retention"):
        counts = apply_retention(app)
    assert counts["suspended_removed"] == 1
    with app.db.session() as s:
        assert s.execute(select(SpoolEntry.id).where(SpoolEntry.status == "suspended")).scalars().all() == [young]
        assert s.get(SpoolEntry, old) is None
        log = [a.data for a in s.execute(select(AuditEntry).where(AuditEntry.kind == "retention")
                                         .order_by(AuditEntry.id)).scalars()]
    assert [d["suspended_removed"] for d in log] == [0, 1]
    said = [r.getMessage() for r in caplog.records if r.name == "supportgw.retention"]
    assert said == ["retention: removed 1 suspended removed"], said


def test_the_weekly_report_says_what_retention_the_suspended_purge_and_erasure_removed_that_week(make_app):
    """A week's removals come from the audit log: the nightly run's counts, the suspended area's own
    purge ([spam] retention_days) and how many people were erased; the week before is not counted."""
    from pathlib import Path

    from gateway.desk.customer_erase import erase
    from gateway.jobs.suspend_jobs import purge
    from gateway.jobs.weekly_report import build, render
    from tests.hardening import push

    clock = ManualClock()
    app = make_app(clock=clock, retention=RETAIN, spam={"retention_days": 30})
    _setup(app, clock)
    robots = Path(__file__).parent / "robots"
    assert push(app, (robots / "spamarrest-challenge.eml").read_bytes())["suspended"] == 1
    clock.advance(days=31)
    with app.db.session() as s:  # a run of last week removed raw mail: not this week's
        s.add(AuditEntry(at=clock.now() - timedelta(days=8), kind="retention", actor="system",
                         data={"spool_raw_removed": 40, "files_removed": 0}))
    assert apply_retention(app)["spool_raw_removed"] == 2
    assert purge(app) == 1  # the challenge, 31 days old
    erase(app, "new@client-demo.example", vacuum=False)
    day = clock.now().date()
    with app.db.session() as s:
        report = build(app, s, day - timedelta(days=6), day + timedelta(days=1))
    assert report["retention"] == {"spool_raw_removed": 2, "suspended_removed": 1, "customers_erased": 1}
    en, zh = render(app, report, "en"), render(app, report, "zh-CN")
    assert re.search(r"raw mail removed \(text kept\) +2\n", en.text) and re.search(r"suspended mail removed +1\n", en.text)
    assert re.search(r"customers erased +1\n", en.text) and "<td>customers erased</td><td align=\"right\">1</td>" in en.html
    assert re.search(r"已删除的原始邮件 +2\n", zh.text) and "已删除数据的客户" in zh.html
    with app.db.session() as s:
        quiet = build(app, s, day + timedelta(days=7), day + timedelta(days=13))
    assert quiet["retention"] == {} and "(nothing removed)" in render(app, quiet, "en").text
