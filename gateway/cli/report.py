"""Commands for managers and the knowledge base: `report`, `report send`, `kb search`.

Dates on the command line are whole days in the [report] time zone; --to is
inclusive. Without dates the report covers the last seven days up to now (today
and the six days before it), so what happened today is in it; `--days N` the
last N. `--by` adds the figures per customer, organisation, project or engineer
(gateway/jobs/report_split.py) to the text, --json and --csv; without it the text and
JSON carry the totals and the [report] by splits of the weekly mail are left out.
"""

from __future__ import annotations

import csv
import json
import sys
from datetime import date, timedelta

from gateway.cli import CommandError, open_app
from gateway.jobs.report_split import DIMENSIONS


def register(sub) -> None:
    p = sub.add_parser("report", help="support figures for a period (default: the last seven days)")
    p.add_argument("--from", dest="start", metavar="DATE", help="first day, YYYY-MM-DD")
    p.add_argument("--to", dest="end", metavar="DATE", help="last day (inclusive), YYYY-MM-DD (default: today)")
    p.add_argument("--days", type=int, metavar="N", help="the N days up to --to (default: 7)")
    p.add_argument("--by", action="append", choices=DIMENSIONS,
                   metavar="customer|organisation|project|engineer|address",
                   help="figures per customer, organisation, project, engineer (owner) or support address; "
                        "may be given twice")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="machine-readable JSON")
    fmt.add_argument("--csv", action="store_true", help="CSV rows: scope,item,metric,value")
    fmt.add_argument("--send", action="store_true",
                     help="queue the report email to [report] recipients now (even if already sent this week)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("kb", help="knowledge base")
    ksub = p.add_subparsers(dest="kb_command", required=True)
    q = ksub.add_parser("search", help="find knowledge articles (Chinese or English words)")
    q.add_argument("words", nargs="+")
    q.add_argument("--limit", type=int, default=10)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_kb_search)


def _day(text: str, flag: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{flag} {text!r} is not a date; write it as YYYY-MM-DD, e.g. 2026-03-02") from None


def period_args(app, args) -> tuple[date, date]:
    from zoneinfo import ZoneInfo

    today = app.now().astimezone(ZoneInfo(app.config.report.timezone)).date()
    end = _day(args.end, "--to") if args.end else today
    days = getattr(args, "days", None)
    if days is not None and (days < 1 or args.start):
        raise CommandError("--days needs a number of days from 1 up, and no --from" if args.start
                           else f"--days {days}: give a number of days from 1 up, e.g. --days 30")
    start = _day(args.start, "--from") if args.start else end - timedelta(days=(days or 7) - 1)
    if start > end:
        raise CommandError(f"--from {start} is after --to {end}; the period must run forwards")
    return start, end


def cmd_report(args) -> int:
    from gateway.jobs import weekly_report

    app = open_app(args, needs_rules=args.send)  # --send mails the managers the rules name
    start, end = period_args(app, args)
    if args.send:
        return _send(app, start, end, args.by)
    with app.db.session() as s:
        report = weekly_report.build(app, s, start, end, by=args.by or ())
    if args.json:
        json.dump(report, sys.stdout, ensure_ascii=False, indent=2)
        print()
    elif args.csv:
        w = csv.writer(sys.stdout)
        w.writerow(["scope", "item", "metric", "value"])
        w.writerows(csv_rows(report))
    else:
        sys.stdout.write(weekly_report.render(app, report, "en").text)
    return 0


def _send(app, start, end, by=None) -> int:
    from gateway import outbox
    from gateway.jobs import weekly_report

    to = weekly_report.recipients(app)
    if not to:
        raise CommandError("nobody to send the report to: set [report] recipients or mark an engineer manager = true")
    with app.db.session() as s:
        report = weekly_report.build(app, s, start, end, by=by)  # None: the weekly mail's [report] by
        outbox.alert_managers(app, s, "weekly_report", weekly_report.render(app, report), to=to)
    print(f"report {start} – {end} queued for {', '.join(to)}")
    return 0


def csv_rows(report: dict) -> list[list]:
    """Long format: one figure per row, easy to pivot in a spreadsheet."""
    rows = []
    for key, value in report["tickets"].items():
        rows.append(["tickets", "", key, value])
    for term in ("first_response", "resolution"):
        for key, value in report[term].items():
            rows.append([term, "", key, value])
    for prio, row in report["sla"].items():
        rows.append(["sla", prio, "tickets", row["tickets"]])
        for term in ("first_response", "resolution"):
            for key, value in row[term].items():
                rows.append(["sla", prio, f"{term}_{key}", value])
    sat = report["satisfaction"]
    rows.append(["satisfaction", "", "responses", sat["responses"]])
    rows.append(["satisfaction", "", "average", sat["average"]])
    for score, n in sat["distribution"].items():
        rows.append(["satisfaction", score, "count", n])
    for e in report["engineers"]:
        for key, value in e.items():
            if key not in ("email", "name"):
                rows.append(["engineer", e["email"], key, value])
    for dim, groups in report.get("by", {}).items():
        for g in groups:
            for key, value in g["tickets"].items():
                rows.append([dim, g["key"], key, value])
            for term in ("first_response", "resolution"):
                rows.append([dim, g["key"], f"{term}_median_seconds", g[term]["median_seconds"]])
                rows.append([dim, g["key"], f"sla_{term}_compliance", g["sla_overall"][term]["compliance"]])
            rows.append([dim, g["key"], "satisfaction_average", g["satisfaction"]["average"]])
            rows.append([dim, g["key"], "satisfaction_responses", g["satisfaction"]["responses"]])
            rows.append([dim, g["key"], "time_minutes", g["time_minutes"]])
    return [[("" if v is None else v) for v in r] for r in rows]


def cmd_kb_search(args) -> int:
    from gateway.desk import kb

    app = open_app(args, needs_rules=False)
    with app.db.session() as s:
        hits = kb.search(s, " ".join(args.words), args.limit)
        if args.json:
            json.dump([{"id": h.article.id, "title": h.article.title, "tags": h.article.tags, "score": h.score,
                        "ticket_id": h.article.ticket_id, "solution": h.article.solution} for h in hits],
                      sys.stdout, ensure_ascii=False, indent=2)
            print()
            return 0
        if not hits:
            print("no matching articles")
            return 1
        for h in hits:
            tags = f"  [{', '.join(h.article.tags)}]" if h.article.tags else ""
            print(f"#{h.article.id}  {h.article.title}{tags}  (score {h.score})")
            first = (h.article.solution.strip().splitlines() or [""])[0]
            print(f"    {first[:160]}")
    return 0
