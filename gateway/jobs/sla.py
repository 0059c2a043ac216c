"""The SLA watch: warn before a deadline, record and act on a breach (DOMAIN.md §3–5).

Owns `run_sla_watch(app)` (a scheduler job; see gateway.jobs.scheduler) and the
policy on a breach:

- first response missed while the project primary handles it -> handover to
  the secondary;
- after a handover the secondary's own response deadline (the first-response
  term counted from the handover, the "respond by" of the handover mail)
  governs: the ticket's original first-response deadline, if it passes while
  the secondary holds the incident, is recorded as missed (the figures count
  it) but warns nobody and moves nothing; the secondary missing her own
  deadline -> the manager (技术支持工作管理流程 第五条: "如果第二售前也无法支持需要向
  售前经理说明情况");
- resolution missed while the secondary holds a handover -> the manager, not
  tier 2: the second cannot handle it either (第五条), and bringing in anyone
  beyond the project's first and second engineers needs the manager's approval
  (第四条: "如果需要其他人员，必须经过技术支持部经理……批准"); the manager may then
  `#escalate` or `#assign`;
- resolution missed at tier 1 while the primary holds it -> tier-2
  escalation; while the manager holds it (after a take-over) -> she is told
  and decides;
- anything else (no rule applies, or the rule is ambiguous) -> the breach is
  recorded and the handler is told.

Each warning and breach is an `SlaMark` (unique per ticket, kind and deadline)
written in the same transaction as the mail and state change it causes, so a
second run, or a second gateway on the same database, does nothing twice. A
breach is recorded *at the deadline* (`SlaMark.at`), whenever the watch sees
it. Warnings (at `workflow.sla_warn_share` of each term) wait for the
recipient's working hours; breaches do not. The resolution clock stands still
while the ticket is pending (ticket_ops pauses it and moves the deadline).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError

from gateway.desk import briefing, handover, ticket_ops
from gateway.clock import fmt_due
from routing.calendar import business_time_between, is_working_time
from storage.db import StorageUnavailable
from storage.history import record_event
from storage.models import SlaMark, Ticket
from storage.queries import messages, sla as sla_marks, tickets

log = logging.getLogger("supportgw.sla")

ACTOR = "system:sla"
OPEN = ("new", "open", "pending")


@dataclass(frozen=True)
class Term:
    """One running deadline of one ticket."""

    kind: str  # first_response | resolution | handover_response
    deadline: datetime
    allowance: timedelta  # the whole term, in business time when `calendar` is set
    calendar: object | None
    met_at: datetime | None  # when it was satisfied; None while it runs
    governs: bool = True  # False: superseded (recorded when missed, but no warning and no action)


def _allowance(terms, kind: str, fallback: timedelta) -> timedelta:
    if terms is None:
        return fallback
    return terms.resolution if kind == "resolution" else terms.first_response


def _secondary_answered(s, ticket: Ticket, since: datetime) -> datetime | None:
    """When the handler (the secondary) first wrote on the ticket after the handover: reply or note."""
    if ticket.first_responded_at is not None and ticket.first_responded_at >= since:
        return ticket.first_responded_at
    return messages.first_written_by(s, ticket.id, ticket.handler, since)


def terms_of(app, s, ticket: Ticket) -> list[Term]:
    policy = ticket_ops.sla_terms(app, ticket)
    cal = policy.calendar if policy is not None and policy.business_hours else None
    out = []
    if ticket.first_response_due is not None:
        out.append(Term("first_response", ticket.first_response_due,
                        _allowance(policy, "first_response", ticket.first_response_due - ticket.created_at),
                        cal, ticket.first_responded_at))
    # the resolution clock stands still while pending: no warning, no breach then
    if ticket.resolution_due is not None and ticket.paused_at is None and ticket.status != "pending":
        out.append(Term("resolution", ticket.resolution_due,
                        _allowance(policy, "resolution", ticket.resolution_due - ticket.created_at), cal, None))
    if handover.secondary_holds(ticket):
        ev = briefing.last_event(s, ticket, "handover")
        if ev is not None and (ev.data or {}).get("expected_by"):
            due = datetime.fromisoformat(ev.data["expected_by"])
            out.append(Term("handover_response", due, due - ev.at if cal is None else
                            business_time_between(ev.at, due, cal), cal, _secondary_answered(s, ticket, ev.at)))
            # the secondary was told "respond by <due>": that deadline, not the original one, is hers
            out = [replace(t, governs=False) if t.kind == "first_response" else t for t in out]
    return out


def warning_due(term: Term, share: float, now: datetime) -> bool:
    """Whether `share` of the term has elapsed: at most (1 - share) of it is left (in business time if so)."""
    left = term.deadline - now if term.calendar is None else business_time_between(now, term.deadline, term.calendar)
    return left <= term.allowance * (1 - share)


def _mark(s, ticket: Ticket, kind: str, deadline: datetime, at: datetime) -> None:
    s.add(SlaMark(ticket_id=ticket.id, kind=kind, deadline=deadline, at=at, handler=ticket.handler,
                  priority=ticket.priority))
    s.flush()  # a duplicate (another run, another process) fails here, before any mail is queued


def _marked(s, ticket: Ticket) -> set[tuple[str, datetime]]:
    return sla_marks.marks_of(s, ticket.id)


def _notice(app, s, ticket: Ticket, term: Term, *, breached: bool, now) -> None:
    if not ticket.handler:
        return
    kind = "sla_breach" if breached else "sla_warning"
    left = term.deadline - now
    briefing.mail_engineer(app, s, ticket, "sla_warning", to=ticket.handler, breached=breached, term=term.kind,
                           deadline=fmt_due(app, term.deadline), minutes_left=max(int(left.total_seconds() // 60), 0))
    log.info("%s %s %s to %s", ticket.ref, kind, term.kind, ticket.handler)


def _act_on_breach(app, s, ticket: Ticket, term: Term, now, counts: Counter) -> None:
    p = briefing.people(app, ticket)
    primary = p.primary.email if p.primary is not None else None
    due = fmt_due(app, term.deadline)
    if handover.secondary_holds(ticket) and term.kind in ("first_response", "handover_response", "resolution"):
        what = "resolution" if term.kind == "resolution" else "response"
        r = handover.to_manager(app, s, ticket, actor=ACTOR,
                                reason=f"the secondary {ticket.handler} missed the {what} deadline ({due}) "
                                       "after the handover")
        counts["manager" if r else "refused"] += 1
        if not r:
            _notice(app, s, ticket, term, breached=True, now=now)
        return
    if term.kind == "first_response" and primary and ticket.handler == primary and not ticket.manager_escalated:
        r = handover.handover(app, s, ticket, reason="first-response deadline missed", actor=ACTOR, by="sla")
        counts["handover" if r else "refused"] += 1
        if not r:
            _notice(app, s, ticket, term, breached=True, now=now)
        return
    # the manager holding the ticket decides whether tier 2 comes in (第四条): she is told, nothing moves
    if term.kind == "resolution" and ticket.tier == 1 and not ticket.manager_escalated:
        r = handover.escalate(app, s, ticket, actor=ACTOR,
                              note=f"The resolution deadline ({due}) passed at tier 1; escalated automatically. "
                                   "What tier 1 did is in the history below.")
        counts["escalated" if r else "refused"] += 1
        if r:
            return
    _notice(app, s, ticket, term, breached=True, now=now)


def _next_step(app, s, ticket: Ticket, now, share: float, marked: set) -> tuple[str, Term] | None:
    """The earliest breach due (else a warning due) on the ticket; None when nothing is."""
    breaches, warnings = [], []
    for term in terms_of(app, s, ticket):
        if (f"{term.kind}_breach", term.deadline) in marked:
            continue
        late = term.met_at is not None and term.met_at > term.deadline
        if term.met_at is not None and not late:
            continue
        if now >= term.deadline or late:
            breaches.append(("late" if late else "breach", term))
        elif term.governs and (f"{term.kind}_warning", term.deadline) not in marked and ticket.handler \
                and warning_due(term, share, now):
            warnings.append(("warning", term))
    steps = sorted(breaches, key=lambda st: st[1].deadline) or warnings
    return steps[0] if steps else None


def check_ticket(app, ticket_id: int) -> Counter:
    """Warnings and breaches due on one ticket, in one transaction (row-locked on PostgreSQL).

    Breaches are taken in deadline order and the terms recomputed after each,
    because an action changes who holds the ticket (a late run that finds the
    secondary's deadline and the resolution deadline both missed acts on the
    secondary's first).
    """
    counts: Counter = Counter()
    share = app.config.workflow.sla_warn_share
    with app.db.session() as s:
        ticket = s.get(Ticket, ticket_id, with_for_update=not app.db.is_sqlite)
        if ticket is None or ticket.status not in OPEN:
            return counts
        now = app.now()
        marked = _marked(s, ticket)
        for _ in range(8):  # a handful of terms per ticket; bounded all the same
            step = _next_step(app, s, ticket, now, share, marked)
            if step is None:
                break
            what, term = step
            if what in ("breach", "late"):
                kind = f"{term.kind}_breach"
                _mark(s, ticket, kind, term.deadline, term.deadline)
                detail = (f"{term.kind.replace('_', ' ')} deadline {fmt_due(app, term.deadline)} missed "
                          f"(handler {ticket.handler or '-'})")
                if not term.governs:
                    detail += "; after the handover the secondary's own response deadline governs"
                record_event(s, ticket, "sla_breach", now, detail, actor=ACTOR, term=term.kind,
                             deadline=term.deadline.isoformat(), handler=ticket.handler)
                counts["breach"] += 1
                # answered late, or superseded by the secondary's own deadline: recorded for the reports only
                if what == "breach" and term.governs:
                    _act_on_breach(app, s, ticket, term, now, counts)
            else:
                kind = f"{term.kind}_warning"
                eng = briefing.engineer(app, ticket.handler)
                if eng is not None and not is_working_time(eng, now):
                    counts["deferred"] += 1  # after hours: the next run inside working hours sends it
                    break
                _mark(s, ticket, kind, term.deadline, now)
                record_event(s, ticket, "sla_warning", now, f"{term.kind.replace('_', ' ')} due "
                             f"{fmt_due(app, term.deadline)}: {ticket.handler} warned", actor=ACTOR,
                             term=term.kind, deadline=term.deadline.isoformat(), handler=ticket.handler)
                _notice(app, s, ticket, term, breached=False, now=now)
                counts["warning"] += 1
            marked.add((kind, term.deadline))
    return counts


def run_sla_watch(app) -> Counter:
    """The scheduler job: check every open ticket. Safe to run twice, or in two processes at once."""
    with app.db.session() as s:
        ids = tickets.ids_in(s, OPEN)
    total: Counter = Counter()
    for tid in ids:
        try:
            total.update(check_ticket(app, tid))
        except IntegrityError:
            total["duplicate"] += 1  # another process recorded the same mark first: it acted, we do not
        except StorageUnavailable as exc:
            total["retry"] += 1
            log.warning("SLA watch: ticket %s skipped this time: %s", tid, exc)
    return total
