"""The figures managers read: volumes, times, SLA compliance, satisfaction, per engineer.

`build_report(session, start, end, now=, engineers=)` returns plain data (a
dict that serialises to JSON as is) for the half-open period [start, end).
Rendering lives elsewhere (`gateway.cli.report`, `gateway.jobs.weekly_report`).

Definitions (the README repeats them for the people reading the numbers):
- opened: tickets created in the period.
- closed: distinct tickets moved to resolved or closed in the period (events
  kind "status", data.new resolved|closed), so a ticket reopened since counts.
- resolution rate: tickets opened in the period that were resolved by its end
  (and are still resolved or closed) / opened.
- first-response time: first_responded_at - created_at of tickets opened in the
  period that have a first response; resolution time: resolved_at - created_at
  of tickets resolved in the period. Wall-clock seconds. Median: the middle value
  (mean of the two middle ones for an even count); p90: nearest rank, the value
  at position ceil(0.9 n) of the sorted list.
- SLA compliance per priority, for tickets opened in the period, judged at
  min(now, end): a term is met when done by its deadline; breached when done
  late, not done with the deadline past (a pending ticket's resolution deadline
  moves by its open pause), or recorded as breached in the SlaMark table
  (kinds first_response_breach / resolution_breach); otherwise still running
  and not counted. compliance = met / (met + breached).
- satisfaction: survey responses given in the period: count, average, 1..5 counts.
- reopen rate: distinct tickets with a "reopened" event in the period / closed.
- per engineer (by address; names from the routing rules), in the period:
  tickets handled = distinct tickets with an event whose actor is the engineer;
  handovers given / taken = events kind "handover" (data.primary gives,
  data.secondary takes; gateway/desk/handover.py); time logged = sum of data.minutes
  of events kind "time" (`#time`) by the engineer; satisfaction = responses whose
  `engineers` list names the engineer.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from storage.models import Event, SurveyResponse, Ticket
from storage.queries import reports as report_queries

DONE = ("resolved", "closed")


def median(values: list[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def p90(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[math.ceil(0.9 * len(ordered)) - 1])


def _times(values: list[float]) -> dict:
    return {"count": len(values), "median_seconds": median(values), "p90_seconds": p90(values)}


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass(frozen=True)
class Period:
    """The rows a report of [start, end) reads, judged at `asof` = min(now, end)."""

    start: datetime
    end: datetime
    asof: datetime
    opened: list[Ticket]
    events: list[Event]
    resolved_in_period: list[Ticket]
    responses: list[SurveyResponse]


def collect(session: Session, start: datetime, end: datetime, *, now: datetime) -> Period:
    opened = report_queries.opened_in(session, start, end)
    events = report_queries.events_in(session, start, end)
    resolved_in_period = report_queries.resolved_in(session, start, end, DONE)
    responses = report_queries.survey_answers_in(session, start, end)
    return Period(start, end, min(now, end), opened, events, resolved_in_period, responses)


def ticket_figures(p: Period, marks: set[tuple[int, str]] | None = None, session: Session | None = None) -> dict:
    """Volumes, rates, times and SLA of the period's rows (all of them, or one group's: gateway.jobs.report_split)."""
    closed_ids = {e.ticket_id for e in p.events if e.kind == "status" and (e.data or {}).get("new") in DONE}
    reopened_ids = {e.ticket_id for e in p.events if e.kind == "reopened"}
    resolved_by_end = [t for t in p.opened if t.status in DONE and t.resolved_at is not None and t.resolved_at < p.end]
    first_times = [(t.first_responded_at - t.created_at).total_seconds() for t in p.opened
                   if t.first_responded_at is not None and t.first_responded_at < p.end]
    resolution_times = [(t.resolved_at - t.created_at).total_seconds() for t in p.resolved_in_period]
    if marks is None:
        marks = sla_marks(session, [t.id for t in p.opened], p.asof)
    return {
        "tickets": {
            "opened": len(p.opened),
            "closed": len(closed_ids),
            "resolved_of_opened": len(resolved_by_end),
            "resolution_rate": _rate(len(resolved_by_end), len(p.opened)),
            "reopened": len(reopened_ids),
            "reopen_rate": _rate(len(reopened_ids), len(closed_ids)),
        },
        "first_response": _times(first_times),
        "resolution": _times(resolution_times),
        "sla": sla_compliance(p.opened, p.asof, marks),
        "satisfaction": satisfaction(p.responses),
    }


def build_report(session: Session, start: datetime, end: datetime, *, now: datetime,
                 engineers: dict[str, str] | None = None) -> dict:
    """Every figure for [start, end). `engineers` maps address -> display name."""
    engineers = {k.lower(): v for k, v in (engineers or {}).items()}
    p = collect(session, start, end, now=now)
    return {
        "period": {"from": start.isoformat(), "to": end.isoformat()},
        **ticket_figures(p, session=session),
        "engineers": per_engineer(p.events, p.responses, engineers),
    }


def _judge(done_at, due, asof, marked: bool, pause_at=None) -> str | None:
    """'met', 'breached', or None (still running / no deadline)."""
    if due is None:
        return "breached" if marked else None
    if pause_at is not None and done_at is None:
        due = due + max(asof - pause_at, timedelta(0))  # the clock is stopped while we wait on the customer
    if marked:
        return "breached"
    if done_at is not None and done_at <= asof:
        return "met" if done_at <= due else "breached"
    return "breached" if due < asof else None


def sla_marks(session: Session, ids: list[int], asof: datetime) -> set[tuple[int, str]]:
    """(ticket id, kind) of the SLA breaches recorded before `asof`."""
    return report_queries.sla_breaches(session, ids, asof)


def sla_compliance(tickets: list[Ticket], asof: datetime, marks: set[tuple[int, str]]) -> dict:
    out: dict[str, dict] = {}
    for t in tickets:
        row = out.setdefault(t.priority, {"tickets": 0, "first_response": Counter(), "resolution": Counter()})
        row["tickets"] += 1
        fr = _judge(t.first_responded_at, t.first_response_due, asof, (t.id, "first_response_breach") in marks)
        res = _judge(t.resolved_at if t.status in DONE else None, t.resolution_due, asof,
                     (t.id, "resolution_breach") in marks, pause_at=t.paused_at if t.status == "pending" else None)
        if fr:
            row["first_response"][fr] += 1
        if res:
            row["resolution"][res] += 1
    result = {}
    for prio in sorted(out):
        row = out[prio]
        result[prio] = {"tickets": row["tickets"]}
        for term in ("first_response", "resolution"):
            met, breached = row[term]["met"], row[term]["breached"]
            result[prio][term] = {"met": met, "breached": breached, "compliance": _rate(met, met + breached)}
    return result


def satisfaction(responses: list[SurveyResponse]) -> dict:
    scores = [r.score for r in responses]
    dist = Counter(scores)
    return {"responses": len(scores), "average": round(sum(scores) / len(scores), 2) if scores else None,
            "distribution": {str(n): dist.get(n, 0) for n in range(1, 6)}}


def per_engineer(events: list[Event], responses: list[SurveyResponse], names: dict[str, str]) -> list[dict]:
    handled: dict[str, set[int]] = defaultdict(set)
    given: Counter = Counter()
    taken: Counter = Counter()
    minutes: Counter = Counter()
    for e in events:
        actor = (e.actor or "").lower()
        data = e.data or {}
        if actor in names:
            handled[actor].add(e.ticket_id)
        if e.kind == "handover":
            giver = (data.get("primary") or actor).lower()
            taker = (data.get("secondary") or "").lower()
            given[giver] += 1
            if taker:
                taken[taker] += 1
        elif e.kind == "time" and actor:
            minutes[actor] += int(data.get("minutes") or 0)
    scores: dict[str, list[int]] = defaultdict(list)
    for r in responses:
        for who in dict.fromkeys(x.lower() for x in (r.engineers or [])):
            scores[who].append(r.score)
    people = set(handled) | set(given) | set(taken) | set(minutes) | set(scores)
    rows = []
    for email in people:
        if not email or email.startswith("system"):
            continue
        s = scores.get(email, [])
        rows.append({"email": email, "name": names.get(email, ""), "tickets_handled": len(handled.get(email, ())),
                     "handovers_given": given[email], "handovers_taken": taken[email], "time_minutes": minutes[email],
                     "survey_responses": len(s), "satisfaction": round(sum(s) / len(s), 2) if s else None})
    rows.sort(key=lambda r: (-r["tickets_handled"], r["name"] or r["email"]))
    return rows
