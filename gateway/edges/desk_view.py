"""What the desk pages show, and to whom: read-only queries over tickets.

Who sees what: a manager sees every team; an engineer sees their own team's
tickets and any ticket they own, handle or handed over (escalated from).
Every page asks `visible(person, ticket)` or filters with `visible_filter`.
"""

from __future__ import annotations

from sqlalchemy import or_

from gateway.desk import briefing, holding
from storage.models import Ticket
from storage.queries import events as ticket_events, tickets
from gateway.jobs import weekly_report
from gateway.jobs.report_charts import CHARTS, _hours, _pct, weekly_series

OPEN = ("new", "open", "pending")


def visible_filter(person):
    if person.manager:
        return True
    me = person.email
    return or_(Ticket.team == person.team, Ticket.owner == me, Ticket.handler == me, Ticket.escalated_from == me)


def visible(person, ticket: Ticket) -> bool:
    return person.manager or ticket.team == person.team or person.email in (
        ticket.owner, ticket.handler, ticket.escalated_from)


def _due(t: Ticket):
    return t.first_response_due if t.first_responded_at is None else t.resolution_due


def sla_state(app, t: Ticket, now) -> str:
    """ok | risk (past the warning share of its current deadline) | breached | "" (no deadline)."""
    due = _due(t)
    if due is None or t.status not in OPEN or t.paused_at is not None:
        return ""
    if now >= due:
        return "breached"
    start = t.first_responded_at or t.created_at
    share = app.config.workflow.sla_warn_share
    return "risk" if now >= start + (due - start) * share else "ok"


def queue(app, s, person) -> dict:
    now = app.now()
    shown = tickets.queue(s, OPEN, visible_filter(person))
    rows = [{"t": t, "sla": sla_state(app, t, now), "due": _due(t),
             "holder": briefing.name_of(app, t.handler or t.owner) if (t.handler or t.owner) else ""}
            for t in shown]
    counts = tickets.queue_counts(s, OPEN, visible_filter(person))
    holders: dict[str, int] = {}
    for r in rows:
        holders[r["holder"] or "—"] = holders.get(r["holder"] or "—", 0) + 1
    return {"rows": rows, "counts": counts, "risk": [r for r in rows if r["sla"] == "risk"],
            "breached": [r for r in rows if r["sla"] == "breached"], "holders": sorted(holders.items())}


def ticket_page(app, s, person, ref: str) -> dict | None:
    t = tickets.by_ref(s, ref) if ref == ref.upper() else None  # the page's address is case-sensitive
    if t is None or not visible(person, t):
        return None  # the same answer for "no such ticket" and "not yours": refs are guessable
    events = ticket_events.of_ticket(s, t.id)
    chain = [{"since": h.since, "until": h.until, "handler": briefing.name_of(app, h.handler) if h.handler else "—",
              "step": h.label, "why": h.why, "by": h.by} for h in holding.holds(s, t)]
    return {"t": t, "messages": briefing.history(s, t), "chain": chain, "events": events,
            "sla": sla_state(app, t, app.now()), "holder": briefing.name_of(app, t.handler or t.owner)}


def report(app, s, person, weeks: int = 8) -> dict | None:
    """The figures of `supportgw report` per week and per customer/project, for charts.
    Managers only: the figures cover every team and customer."""
    if not person.manager:
        return None
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    today = app.now().astimezone(ZoneInfo(app.config.report.timezone)).date()
    rows = weekly_series(app, s, weekly_report.build, weeks, today)
    first = today - timedelta(days=7 * weeks - 1)
    whole = weekly_report.build(app, s, first, today, by=("organisation", "project"))
    groups = {dim: [{"name": g["name"] or g["key"] or "—", "opened": g["tickets"]["opened"],
                     "sla_first": _pct(g["sla_overall"]["first_response"]["compliance"]),
                     "sla": _pct(g["sla_overall"]["resolution"]["compliance"]),
                     "first": (_hours(g["first_response"]["median_seconds"]),
                               _hours(g["first_response"]["p90_seconds"])),
                     "resolution": (_hours(g["resolution"]["median_seconds"]), _hours(g["resolution"]["p90_seconds"])),
                     "satisfaction": g["satisfaction"]["average"]} for g in whole.get("by", {}).get(dim, [])]
              for dim in ("organisation", "project")}
    return {"weeks": rows, "charts": CHARTS, "groups": groups, "since": first.isoformat(), "until": today.isoformat()}

