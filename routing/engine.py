"""Routing one email: rules in order, then priority, owner and SLA deadlines.

Owns `route()` and the `Decision` it returns. Pure: no database, network or
clock; the caller passes the envelope recipients and `now` (the ticket's
creation instant). Every matched rule leaves a `TraceStep` saying what it
changed, so a ticket's history can say why it was routed as it was:
"rule 'outage-keywords' → impact=high → P1".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from parsers.model import ParsedEmail
from routing.actions import Draft
from routing.calendar import sla_deadlines
from routing.compiler import Project, RoutingConfig
from routing.facts import EmailFacts


@dataclass(frozen=True)
class TraceStep:
    rule: str
    matched: bool
    changes: tuple[str, ...]  # "impact=high", "tags+=has-logs", "stop"
    reason: str  # what matched, or (when not matched) what was missing
    priority: str = ""  # the priority after this rule, when the rule changed it

    def __str__(self) -> str:
        if not self.matched:
            return f"rule '{self.rule}' not matched: {self.reason}"
        text = f"rule '{self.rule}' → " + ", ".join(self.changes)
        return text + (f" → {self.priority}" if self.priority else "")


@dataclass(frozen=True)
class Decision:
    organisation: str  # "" when the sender is not in the customer directory
    customer_tier: str
    project: Project | None
    category: str
    team: str
    priority: str  # P1..P4
    matrix_priority: str  # what the matrix alone gave (before fixed/raise/lower/floor)
    impact: str
    urgency: str
    owner: str  # engineer id, "" for the team queue
    owner_email: str
    primary_out_of_office: bool  # the owner is the project primary and is away: hand over
    tags: tuple[str, ...]
    watchers: tuple[str, ...]  # email addresses CC'd on updates (never the owner)
    sla_policy: str  # "P2" or "P2/strategic"
    business_hours: bool
    first_response_due: datetime  # UTC
    resolution_due: datetime  # UTC
    trace: tuple[TraceStep, ...]  # matched rules; every evaluated rule with trace_all=True
    rules_evaluated: int
    stopped_by: str = ""
    notes: tuple[str, ...] = ()  # references that could not be resolved for this email

    def history(self) -> list[str]:
        """One line per rule that fired, for the ticket's event history."""
        return [str(s) for s in self.trace if s.matched]


def route(email: ParsedEmail, cfg: RoutingConfig, *, recipients: tuple[str, ...] = (),
          now: datetime, trace_all: bool = False) -> Decision:
    customer = cfg.customer_for(email.sender.email)
    facts = EmailFacts(email, recipients, customer, cfg.defaults.customer_tier, cfg.index)
    tier = facts.customer_tier
    d = cfg.defaults
    draft = Draft(category=d.category, team=d.team, impact=d.impact, urgency=d.urgency, owner=d.owner)
    prio = draft.priority(cfg.matrix, tier)
    steps: list[TraceStep] = []
    evaluated, stopped_by = len(cfg.rules), ""
    present = facts.hits("text")  # every keyword and regex literal in the subject or body
    for n, rule in enumerate(cfg.rules, 1):
        test = rule.test
        if test is not None:
            # The pre-filter is exact (a rule whose needs are absent cannot match); it only
            # spares the full test for the many rules that are about something else.
            needs = rule.needs
            if (needs is not None and needs.isdisjoint(present)) or not test.test(facts):
                if trace_all:
                    steps.append(TraceStep(rule.name, False, (), test.why(facts)[1]))
                continue
        reason = test.why(facts)[1] if test is not None else "every email"
        changes = tuple(a.apply(draft) for a in rule.actions) + (("stop",) if rule.stop else ())
        new = draft.priority(cfg.matrix, tier)
        steps.append(TraceStep(rule.name, True, changes, reason, new if new != prio else ""))
        prio = new
        if rule.stop:
            evaluated, stopped_by = n, rule.name
            break

    notes: list[str] = []
    project = _project(cfg, facts, draft, notes)
    owner = _person(cfg, draft.owner, project, "owner", notes)
    owner_email = cfg.engineers[owner].email if owner else ""
    watchers = []
    for ref in draft.watchers:
        addr = ref.lower() if "@" in ref else _person(cfg, ref, project, "watcher", notes)
        addr = cfg.engineers[addr].email if addr in cfg.engineers else addr
        if addr and addr != owner_email and addr not in watchers:
            watchers.append(addr)
    away = bool(project and owner == project.primary and cfg.engineers[owner].out_of_office)

    terms = cfg.sla_for(prio, tier)
    first_due, resolution_due = sla_deadlines(terms, now, terms.calendar)
    return Decision(
        organisation=facts.organisation, customer_tier=tier, project=project,
        category=draft.category, team=draft.team, priority=prio,
        matrix_priority=cfg.matrix.priority(tier, draft.impact, draft.urgency),
        impact=draft.impact, urgency=draft.urgency, owner=owner, owner_email=owner_email,
        primary_out_of_office=away, tags=tuple(draft.tags), watchers=tuple(watchers),
        sla_policy=terms.name, business_hours=terms.business_hours,
        first_response_due=first_due, resolution_due=resolution_due,
        trace=tuple(steps), rules_evaluated=evaluated, stopped_by=stopped_by, notes=tuple(notes))


def _project(cfg: RoutingConfig, facts: EmailFacts, draft: Draft, notes: list[str]) -> Project | None:
    if not facts.organisation:
        if draft.project:
            notes.append(f"project '{draft.project}' ignored: the sender is not a known customer")
        return None
    project = cfg.project_for(facts.organisation, facts.sender, draft.project)
    if draft.project and (project is None or project.name != draft.project):
        notes.append(f"project '{draft.project}' is not a project of {facts.organisation}; "
                     f"using {project.name if project else 'none'}")
    return project


def _person(cfg: RoutingConfig, ref: str, project: Project | None, what: str, notes: list[str]) -> str:
    """An engineer id for 'alice' or 'project.primary'; '' when it cannot be resolved."""
    if not ref.startswith("project."):
        return ref
    if project is None:
        notes.append(f"{what} {ref}: the email has no customer project; left to the team")
        return ""
    return project.role(ref[len("project."):])
