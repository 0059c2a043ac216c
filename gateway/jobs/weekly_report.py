"""The weekly report email to managers (a scheduler job) and the report's presentation helpers.

`run_weekly_report(app)` is the scheduler job: once [report] day/time has come
(in [report] timezone; enabled by [report] weekly), it calls
`send_weekly_report(app)`, which reports on the seven whole days before the
report day and queues one email (HTML with table/CSS bar charts, no images,
plus a plain-text part) to [report] recipients, or to the engineers marked
manager when none are set. Besides the desk's figures it says what housekeeping
removed in the week ([retention], the suspended area's purge, erasures), from
the audit log.
It runs once per week even with several gateways or a restart: the JobRun row
("weekly_report", first day of the period) is unique.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError

from gateway import outbox
from gateway.jobs import report_charts
from gateway.jobs.report_split import split_report
from gateway.jobs.reports import build_report, collect
from gateway.jobs.suspend_jobs import counts_by_reason
from storage.models import JobRun
from storage.queries import audit as audit_log

JOB = "weekly_report"
BAR_PX = 240  # the longest bar, in pixels


def engineer_names(app) -> dict[str, str]:
    return {e.email.lower(): e.name for e in app.rules.current.engineers.values()}


def organisation_names(app) -> dict[str, str]:
    return {oid: c.name for oid, c in app.rules.current.source.customers.items()}


def address_names(app) -> dict[str, str]:
    """The `address` split's names: each [[address]]'s, and the default address's ("" key)."""
    cfg = app.config
    names = {"": f"{cfg.gateway.display_name} <{cfg.support_address}>"}
    names.update({e.address: f"{e.display_name or cfg.gateway.display_name} <{e.address}>" for e in cfg.address})
    return names


def period_for(app, start_day: date, end_day: date) -> tuple[datetime, datetime]:
    """[start_day 00:00, end_day + 1 day 00:00) in the report time zone, as aware datetimes."""
    tz = ZoneInfo(app.config.report.timezone)
    return (datetime.combine(start_day, time(0), tzinfo=tz),
            datetime.combine(end_day + timedelta(days=1), time(0), tzinfo=tz))


def last_week(app) -> tuple[date, date]:
    today = app.now().astimezone(ZoneInfo(app.config.report.timezone)).date()
    return today - timedelta(days=7), today - timedelta(days=1)


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CATCH_UP = timedelta(days=2)  # a gateway down over the weekend still sends Monday's report


def last_due(app) -> datetime:
    """The latest [report] day/time at or before now, in the report time zone."""
    cfg = app.config.report
    tz = ZoneInfo(cfg.timezone)
    now = app.now().astimezone(tz)
    hh, mm = (int(x) for x in cfg.time.split(":"))
    back = (now.weekday() - WEEKDAYS.index(cfg.day)) % 7
    due = datetime.combine(now.date() - timedelta(days=back), time(hh, mm), tzinfo=tz)
    return due - timedelta(days=7) if due > now else due


def run_weekly_report(app) -> Counter:
    """Scheduler job (any interval, or a cron trigger): send the report once the week's time has come."""
    if not app.config.report.weekly:
        return Counter()
    due = last_due(app)
    if app.now() - due > CATCH_UP:
        return Counter()
    day = due.date()
    sent = send_weekly_report(app, start_day=day - timedelta(days=7), end_day=day - timedelta(days=1))
    return Counter({"sent": 1} if sent else {"already_sent": 1})


def recipients(app) -> list[str]:
    configured = [a.lower() for a in app.config.report.recipients]
    if configured:
        return configured
    return sorted(e.email.lower() for e in app.rules.current.engineers.values() if e.manager)


def hours(seconds) -> str:
    if seconds is None:
        return "-"
    return f"{seconds / 3600:.1f} h"


def pct(rate) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def bar(value, biggest) -> int:
    """Bar width in pixels (at least 1 for a non-zero value, so it stays visible)."""
    if not value or not biggest:
        return 0
    return max(1, round(BAR_PX * value / biggest))


def render(app, report: dict, language: str | None = None):
    language = language or app.config.report.language
    dist = report["satisfaction"]["distribution"]
    start, end = report["period"]["from"][:10], report["period"]["to_inclusive"]
    days = (date.fromisoformat(end) - date.fromisoformat(start)).days + 1
    return app.templates.render(
        "weekly_report", language, r=report, team_name=app.config.gateway.display_name,
        start=start, end=end, weekly=days == 7,
        hours=hours, pct=pct, bar=bar, dist_max=max(dist.values()) if dist else 0,
        handled_max=max([e["tickets_handled"] for e in report["engineers"]] or [0]),
        charts=report_charts.captions(language),
    )


def build(app, session, start_day: date, end_day: date, by=None) -> dict:
    """The report for these whole days; `by`: the splits to add (default: [report] by)."""
    start, end = period_for(app, start_day, end_day)
    engineers = engineer_names(app)
    report = build_report(session, start, end, now=app.now(), engineers=engineers)
    report["period"]["to_inclusive"] = end_day.isoformat()
    dims = list(app.config.report.by if by is None else by)
    if dims:
        period = collect(session, start, end, now=app.now())
        names = {"organisation": organisation_names(app), "engineer": engineers, "address": address_names(app)}
        report["by"] = {dim: split_report(session, period, dim, names=names) for dim in dict.fromkeys(dims)}
    report["suspended"] = counts_by_reason(session, start, end)
    report["retention"] = removals(session, start, end)
    return report


# What the nightly [retention] run, the suspended area's purge and erasures removed, in this order.
REMOVALS = ("closed_tickets_removed", "spool_raw_removed", "attachment_files_removed", "quarantined_removed",
            "suspended_removed", "files_removed")


def removals(session, start: datetime, end: datetime) -> dict[str, int]:
    """What the audit log says was removed in [start, end), the non-zero counts only."""
    _, removed = audit_log.totals(session, ("retention", "suspended_purge"), start, end)
    erased, _ = audit_log.totals(session, ("customer_erased",), start, end)
    out = {k: removed[k] for k in REMOVALS if removed[k]}
    if erased["customer_erased"]:
        out["customers_erased"] = erased["customer_erased"]
    return out


def send_weekly_report(app, *, start_day: date | None = None, end_day: date | None = None) -> bool:
    """Queue the report for the last week (or the given days); False when already sent or nobody to send to."""
    if start_day is None or end_day is None:
        start_day, end_day = last_week(app)
    to = recipients(app)
    if not to:
        return False
    with app.db.session() as s:
        try:
            with s.begin_nested():
                s.add(JobRun(job=JOB, due_key=start_day.isoformat(), at=app.now(), holder=app.worker_id))
                s.flush()
        except IntegrityError:
            return False  # another gateway (or an earlier run) sent this week's report
        report = build(app, s, start_day, end_day)
        rendered = render(app, report)
        outbox.alert_managers(app, s, "weekly_report", rendered, to=to,
                              attachments=report_charts.png_charts(app, s, build, end_day=end_day))  # the desk's charts
    return True
