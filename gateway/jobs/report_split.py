"""The report's figures split by customer, organisation, project, engineer or support address.

The regulations ask for statistics per customer and per project, and a manager
reads them that way. `split_report(session, period, by, names=)` returns, for
each group, the same figures `gateway.jobs.reports` computes for the whole period
(same definitions), over the rows of that group's tickets only:

- customer: the requester (address; name as they signed their mail);
- organisation: the customer directory's entry (`customers.<id>` in the rules;
  "" for senders not in it); name from the directory;
- project: the organisation's project (`<organisation>/<project>`);
- engineer: the ticket's owner, the responsible engineer (during a handover the
  primary stays the owner; the per-engineer activity table is `reports.per_engineer`).
- address: the support address (`[[address]]` brand) the customer wrote to; "" for the
  default address; names from the config.

A row's time logged is the `#time` minutes recorded on its tickets in the period.
Plain data, rendered by `gateway.cli.report` and `gateway.jobs.weekly_report`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from sqlalchemy.orm import Session

from gateway.jobs.reports import Period, sla_marks, ticket_figures
from storage.models import Ticket
from storage.queries import reports as report_queries

DIMENSIONS = ("customer", "organisation", "project", "engineer", "address")


def group_of(dimension: str, t: Ticket) -> str:
    if dimension == "customer":
        return (t.requester_email or "").lower()
    if dimension == "organisation":
        return t.organisation or ""
    if dimension == "project":
        return f"{t.organisation}/{t.project}" if t.project else ""
    if dimension == "address":
        return t.address or ""
    return (t.owner or "").lower()


def _name(dimension: str, key: str, t: Ticket, names: dict[str, dict[str, str]]) -> str:
    if dimension == "customer":
        return t.requester_name or ""
    if dimension == "project":
        org, _, project = key.partition("/")
        org_name = names.get("organisation", {}).get(org, org)
        return f"{org_name} / {project}" if key else ""
    return names.get(dimension, {}).get(key, "")


def _tickets(session: Session, ids: set[int]) -> dict[int, Ticket]:
    return report_queries.tickets_by_id(session, ids)


def split_report(session: Session, p: Period, by: str, *, names: dict[str, dict[str, str]] | None = None) -> list[dict]:
    """One row per group of `by`, most tickets opened first, the ungrouped ("") last.

    `names`: dimension -> key -> display name (organisations, engineers)."""
    if by not in DIMENSIONS:
        raise ValueError(f"cannot split a report by {by!r}; choose one of {', '.join(DIMENSIONS)}")
    names = names or {}
    ids = ({t.id for t in p.opened} | {t.id for t in p.resolved_in_period} | {e.ticket_id for e in p.events}
           | {r.ticket_id for r in p.responses})
    ids.discard(None)
    tickets = _tickets(session, ids)
    key = {tid: group_of(by, t) for tid, t in tickets.items()}
    marks = sla_marks(session, [t.id for t in p.opened], p.asof)
    groups: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for t in p.opened:
        groups[key[t.id]]["opened"].append(t)
    for t in p.resolved_in_period:
        groups[key[t.id]]["resolved_in_period"].append(t)
    for e in p.events:
        if e.ticket_id in key:
            groups[key[e.ticket_id]]["events"].append(e)
    for r in p.responses:
        if r.ticket_id in key:
            groups[key[r.ticket_id]]["responses"].append(r)
    sample = {key[tid]: t for tid, t in sorted(tickets.items())}
    rows = []
    for group, parts in groups.items():
        sub = replace(p, opened=parts["opened"], events=parts["events"],
                      resolved_in_period=parts["resolved_in_period"], responses=parts["responses"])
        figures = ticket_figures(sub, marks)
        minutes = sum(int((e.data or {}).get("minutes") or 0) for e in sub.events if e.kind == "time")
        rows.append({"key": group, "name": _name(by, group, sample[group], names), **figures,
                     "sla_overall": _overall(figures["sla"]), "time_minutes": minutes})
    # the biggest first; the tickets of no group (a sender outside the directory) last
    rows.sort(key=lambda r: (r["key"] == "", -r["tickets"]["opened"], -r["tickets"]["closed"], r["name"] or r["key"]))
    return rows


def _overall(sla: dict) -> dict:
    """Both terms of every priority together: met / (met + breached)."""
    out = {}
    for term in ("first_response", "resolution"):
        met = sum(row[term]["met"] for row in sla.values())
        breached = sum(row[term]["breached"] for row in sla.values())
        out[term] = {"met": met, "breached": breached,
                     "compliance": round(met / (met + breached), 4) if met + breached else None}
    return out
