"""The handover rule and tier escalation (DOMAIN.md §4–5).

A project's tickets start with its primary as owner and handler. A handover
(`#handover`, an out-of-office primary at creation, or a missed first-response
deadline) makes the secondary the handler of this incident only; the owner
stays the primary. The secondary gets the full history, the manager on CC;
the customer is told a colleague took over; the primary is told too unless she
made the handover herself (第六条: she stays responsible for coordinating the
project). The original first-response deadline then no longer governs: the
secondary's own one does (see gateway.jobs.sla). On resolution the primary gets a
handback summary (manager on CC) and handles the ticket again. A secondary who
also misses her response or resolution deadline, or sends `#cannot`, hands it
to the manager (第五条), who becomes owner and handler; once resolved, the
handback goes to the primary as after the secondary's, and she owns the
ticket again. Whenever the rule is
ambiguous (no secondary, secondary = primary, secondary away, ...) nothing
moves: the primary stays responsible and an event says why.

Tiers: `#escalate`, or a missed resolution deadline while the primary holds
the ticket at tier 1 (during a handover either goes to the manager instead), moves the
ticket to the tier-2 team of its category (rules file `[escalation]`); tier 2's
resolution is reported back to the tier-1 engineer.

Every function works inside the caller's transaction: state change, events
and queued mail commit together. Each returns a `Result` (false when refused,
with the reason) so a command handler can answer the engineer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.desk import briefing, ticket_ops
from gateway.clock import fmt_due
from routing.calendar import add_business_time, is_working_time
from storage.history import record_event
from storage.models import Ticket

SYSTEM = "system:handover"


@dataclass(frozen=True)
class Result:
    ok: bool
    detail: str

    def __bool__(self) -> bool:
        return self.ok


def _refuse(app, s, ticket: Ticket, kind: str, what: str, why: str, actor: str, **data) -> Result:
    responsible = ticket.handler or ticket.owner or "the team queue"
    record_event(s, ticket, kind, app.now(), f"{what} not done: {why}; {responsible} stays responsible",
                 actor=actor, why=why, responsible=responsible, **data)
    return Result(False, why)


def response_due(app, ticket: Ticket, start: datetime) -> datetime:
    """When someone who takes the ticket over at `start` is expected to respond (the first-response term)."""
    terms = ticket_ops.sla_terms(app, ticket)
    if terms is None:
        allowance = (ticket.first_response_due - ticket.created_at) if ticket.first_response_due else None
        return start + allowance if allowance else start
    if terms.business_hours:
        return add_business_time(start, terms.first_response, terms.calendar)
    return start + terms.first_response


def active_handover(ticket: Ticket) -> bool:
    """The secondary (or, after escalation, tier 2 on the secondary's behalf) holds this incident."""
    return bool(ticket.handover_reason) and not ticket.manager_escalated


def secondary_holds(ticket: Ticket) -> bool:
    """The secondary handles the incident now (not yet resolved, escalated to tier 2 or to the manager)."""
    return active_handover(ticket) and ticket.tier == 1 and ticket.handler != ticket.owner


def _handover_blocker(app, ticket: Ticket, p: briefing.People) -> str:
    if p.project is None:
        return "the ticket belongs to no customer project, so no secondary engineer is configured"
    if ticket.manager_escalated:
        return "the manager already holds this ticket"
    if active_handover(ticket):
        return f"already handed over to {ticket.handler}"
    if ticket.tier != 1:
        return "the ticket is at tier 2; the handover rule is for the project's tier-1 engineers"
    if p.primary is None:
        return f"project {p.project.name} has no primary engineer configured"
    if ticket.handler != p.primary.email:
        return f"the handler is {ticket.handler or 'nobody'}, not the project primary {p.primary.email}"
    if p.secondary is None:
        return f"project {p.project.name} has no secondary engineer configured"
    if p.secondary.email == p.primary.email:
        return f"the secondary of project {p.project.name} is the primary"
    if p.secondary.out_of_office:
        return f"the secondary {p.secondary.email} is out of office too"
    return ""


def handover(app, s, ticket: Ticket, *, reason: str, actor: str, by: str = "command") -> Result:
    """Primary -> secondary for this incident; escalation mail to the secondary, manager on CC.

    `by` says what made it: "command" (#handover), "sla" (the SLA watch), "away" (the primary
    out of office at creation); the ticket's "who held it when" shows it.
    """
    p = briefing.people(app, ticket)
    why = _handover_blocker(app, ticket, p)
    if why:
        return _refuse(app, s, ticket, "handover_refused", f"handover ({reason})", why, actor, reason=reason)
    now = app.now()
    expected = response_due(app, ticket, now)
    ticket_ops.assign(app, s, ticket, p.secondary.email, actor=actor, why=f"handover: {reason}", owner_too=False,
                      step=f"handover_{by}")
    ticket.handover_reason = reason[:200]
    manager = p.manager.email if p.manager is not None else ""
    record_event(s, ticket, "handover", now,
                 f"{p.primary.email} → {p.secondary.email}: {reason}; response expected by {fmt_due(app, expected)}",
                 actor=actor, reason=reason, primary=p.primary.email, secondary=p.secondary.email,
                 manager=manager, expected_by=expected.isoformat(), by=by)
    briefing.mail_engineer(app, s, ticket, "handover", to=p.secondary.email, cc=[manager], reason=reason,
                           primary_name=p.primary.name or p.primary.email, expected_by=fmt_due(app, expected),
                           secondary_away=not is_working_time(p.secondary, now))
    if actor.lower() != p.primary.email.lower():
        # 第六条: the primary stays responsible for coordinating the project, so a handover she did
        # not make herself (the SLA watch, her out-of-office, a colleague's #handover) is news to her.
        briefing.mail_engineer(app, s, ticket, "handover_primary", to=p.primary.email, reason=reason,
                               secondary_name=p.secondary.name or p.secondary.email,
                               expected_by=fmt_due(app, expected))
    briefing.tell_customer(app, s, ticket, new_handler=p.secondary.email, specialist=False)
    return Result(True, f"handed over to {p.secondary.email}")


def cannot(app, s, ticket: Ticket, *, actor: str) -> Result:
    """The secondary cannot handle it: the manager is told and becomes the owner."""
    if not active_handover(ticket):
        return _refuse(app, s, ticket, "cannot_refused", f"#cannot from {actor}",
                       "no handover is in progress (the primary handles it; use #handover or #escalate)", actor)
    return to_manager(app, s, ticket, reason=f"{actor} cannot handle it (#cannot)", actor=actor)


def to_manager(app, s, ticket: Ticket, *, reason: str, actor: str) -> Result:
    """The manager becomes owner and handler and is emailed as the escalation target."""
    p = briefing.people(app, ticket)
    if ticket.manager_escalated:
        return _refuse(app, s, ticket, "manager_escalation_refused", "manager escalation",
                       "the manager already holds this ticket", actor, reason=reason)
    if p.manager is None or p.primary is None:
        # Nobody to escalate to: the rule says the primary is responsible.
        why = "no manager configured for the ticket's project"
        if p.primary is not None and ticket.handler != p.primary.email:
            ticket_ops.assign(app, s, ticket, p.primary.email, actor=actor, why=f"{reason}; {why}", owner_too=False,
                              step="handback")
            ticket.handover_reason = ""
        return _refuse(app, s, ticket, "manager_escalation_refused", f"manager escalation ({reason})", why, actor)
    now = app.now()
    before = ticket.handler
    ticket_ops.assign(app, s, ticket, p.manager.email, actor=actor, why=f"manager escalation: {reason}",
                      owner_too=True, step="manager_takeover")
    ticket.manager_escalated = True
    record_event(s, ticket, "manager_escalation", now,
                 f"{before or '-'} → manager {p.manager.email}: {reason}; owner until reassigned or resolved "
                 "(then the primary's again)",
                 actor=actor, reason=reason, manager=p.manager.email, previous=before, primary=p.primary.email)
    briefing.mail_engineer(app, s, ticket, "manager_alert", to=p.manager.email, reason=reason,
                           previous_name=briefing.name_of(app, before), primary_name=p.primary.name or p.primary.email)
    return Result(True, f"escalated to the manager {p.manager.email}")


def _tier2_engineer(app, team: str, now):
    """The first tier-2 engineer of `team` at work now, else the first not out of office."""
    cands = [e for e in app.rules.current.engineers.values() if e.team == team and e.tier == 2]
    present = [e for e in cands if not e.out_of_office]
    at_work = [e for e in present if is_working_time(e, now)]
    return (at_work or present or [None])[0]


def escalate(app, s, ticket: Ticket, *, actor: str, note: str) -> Result:
    """Tier 1 -> the tier-2 team of the ticket's category, with full history and what tier 1 tried.

    During a handover the secondary handles only this incident for the primary (第四至第六条):
    her `#escalate` says she cannot solve it either, so it goes to the manager (第五条), who
    holds the ticket and decides whether tier 2 comes in (her own `#escalate`), as on the
    secondary's missed deadline; the handback then still reaches the primary.
    """
    if secondary_holds(ticket) and actor.lower() == (ticket.handler or "").lower():
        tried = " ".join((note or "").split())
        reason = f"the secondary {actor} asked for tier 2 (#escalate) during the handover"
        if tried:
            reason += f"; what the secondary tried: {tried[:300]}"
        r = to_manager(app, s, ticket, reason=reason, actor=actor)
        if r:  # she asked for tier 2: say where it went instead, and why
            p = briefing.people(app, ticket)
            briefing.mail_engineer(app, s, ticket, "escalated_to_manager", to=actor,
                                   manager_name=p.manager.name or p.manager.email,
                                   primary_name=p.primary.name or p.primary.email)
        return r
    if ticket.tier >= 2:
        return _refuse(app, s, ticket, "escalation_refused", "tier-2 escalation", "the ticket is already at tier 2",
                       actor)
    cfg = app.rules.current
    team = cfg.escalation_team(ticket.team, ticket.category)
    if not team:
        return _refuse(app, s, ticket, "escalation_refused", "tier-2 escalation",
                       f"no tier-2 team configured for team {ticket.team} / category {ticket.category} "
                       "([escalation] in the rules file)", actor)
    now = app.now()
    target = _tier2_engineer(app, team, now)
    if target is None:
        return _refuse(app, s, ticket, "escalation_refused", "tier-2 escalation",
                       f"tier-2 team {team} has no engineer who is not out of office", actor, team=team)
    tier1 = ticket.handler or ticket.owner
    old_team = ticket.team
    ticket.escalated_from = tier1
    ticket.tier = 2
    ticket.team = team
    ticket_ops.assign(app, s, ticket, target.email, actor=actor, why=f"tier-2 escalation to {team}", owner_too=False,
                      step="tier2_escalation")
    note = (note or "").strip()
    record_event(s, ticket, "escalated", now, f"tier 1 ({tier1 or '-'}, team {old_team}) → tier 2 "
                 f"{target.email} (team {team})" + (f"\nwhat tier 1 tried: {note}" if note else ""),
                 actor=actor, tier1=tier1, tier2=target.email, team=team, from_team=old_team, note=note)
    briefing.mail_engineer(app, s, ticket, "escalation_tier2", to=target.email, note=note,
                           tier1_name=briefing.name_of(app, tier1), tier2_team=team, by_system=actor.startswith("system"))
    briefing.tell_customer(app, s, ticket, new_handler=target.email, specialist=True)
    return Result(True, f"escalated to {target.email} (tier-2 team {team})")


def on_resolved(app, s, ticket: Ticket, *, actor: str) -> None:
    """After resolution: tier-2 report back to tier 1; handback summary to the primary (manager CC).

    The handback follows a handover whether the secondary or, after both engineers missed, the
    manager resolved it: either way the ticket is the primary's again (owner and handler).
    """
    now = app.now()
    if ticket.tier >= 2 and ticket.escalated_from and ticket.escalated_from != ticket.handler:
        since = briefing.last_event(s, ticket, "escalated")
        minutes = briefing.minutes_logged(s, ticket, since=since.at if since else None)
        briefing.mail_engineer(app, s, ticket, "tier2_report", to=ticket.escalated_from, resolver=actor,
                               resolver_name=briefing.name_of(app, ticket.handler), solution=ticket.solution,
                               minutes=minutes)
        record_event(s, ticket, "tier2_reported", now, f"tier-2 resolution reported to {ticket.escalated_from}",
                     actor=actor, to=ticket.escalated_from, minutes=minutes)
    via_manager = ticket.manager_escalated
    if not (active_handover(ticket) or via_manager):
        return
    p = briefing.people(app, ticket)
    primary = p.primary.email if p.primary is not None else ticket.owner
    if not primary or (via_manager and primary == ticket.owner):
        return  # no primary to hand back to (the rules lost her since): the manager keeps it
    started = briefing.last_event(s, ticket, "handover")
    since = started.at if started else None
    done = [h for h in briefing.history(s, ticket, since=since) if h["email"] != ticket.requester_email
            and h["kind"] != "automatic"]
    minutes = briefing.minutes_logged(s, ticket, since=since)
    manager = p.manager.email if p.manager is not None else ""
    handler = ticket.handler
    taken = briefing.last_event(s, ticket, "manager_escalation") if via_manager else None
    manager_reason = ((taken.data or {}).get("reason") or "") if taken is not None else ""
    briefing.mail_engineer(app, s, ticket, "handback", to=primary, cc=[manager], reason=ticket.handover_reason,
                           secondary_name=briefing.name_of(app, handler), solution=ticket.solution,
                           manager_reason=manager_reason,
                           done=[dict(h, at=fmt_due(app, h["at"])) for h in done], minutes=minutes)
    # after a manager take-over the manager owned the ticket too; ownership of a project's
    # tickets returns to its primary all the same (第六条)
    ticket_ops.assign(app, s, ticket, primary, actor=actor, why="handback: the incident is resolved",
                      owner_too=via_manager, step="handback")
    record_event(s, ticket, "handback", now, f"{handler} → {primary}: resolved; summary sent, manager on CC"
                 + (" (after the manager's take-over)" if via_manager else ""),
                 actor=actor, secondary=handler, primary=primary, manager=manager, minutes=minutes,
                 reason=ticket.handover_reason, after_manager=via_manager)
    ticket.handover_reason = ""
    ticket.manager_escalated = False


def on_created(app, s, ticket: Ticket, decision) -> None:
    """A new ticket whose primary is out of office is handed over at once."""
    if getattr(decision, "primary_out_of_office", False):
        handover(app, s, ticket, reason="the primary engineer is out of office", actor=SYSTEM, by="away")
