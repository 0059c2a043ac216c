"""From a validated rules file to `RoutingConfig`, the fast read-only form the engine uses.

Owns the directory look-ups (organisation by address or domain, a sender's
project), calendars per engineer and per SLA policy, and compiled rules. It
assumes `routing.checks` found nothing wrong: a reference here that does not
resolve is a bug, not a user error.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from routing import actions, conditions, config
from routing.calendar import WorkCalendar
from routing.config import WEEKDAYS
from routing.facts import Customer, domain_chain
from routing.matrix import PriorityMatrix
from routing.text import KeywordIndex


@dataclass(frozen=True)
class Engineer:
    id: str
    email: str
    name: str
    tier: int
    team: str
    manager: bool
    out_of_office: bool
    calendar: WorkCalendar  # the person's working hours, in their time zone


@dataclass(frozen=True)
class Project:
    organisation: str
    name: str
    primary: str  # engineer ids
    secondary: str
    manager: str

    def role(self, role: str) -> str:
        return {"primary": self.primary, "secondary": self.secondary, "manager": self.manager}[role]


@dataclass(frozen=True)
class CompiledRule:
    name: str
    description: str
    test: conditions.Test | None  # None: matches every email
    actions: tuple
    stop: bool
    needs: frozenset[str] | None = None  # pre-filter: one of these keys must be in the email


@dataclass(frozen=True)
class SlaTerms:
    name: str  # "P2" or "P2/strategic"
    first_response: timedelta
    resolution: timedelta
    business_hours: bool
    calendar: WorkCalendar


@dataclass(frozen=True, eq=False)
class RoutingConfig:
    source: config.RulesFile
    path: Path | None
    rules: tuple[CompiledRule, ...]
    engineers: dict[str, Engineer]
    calendars: dict[str, WorkCalendar]
    matrix: PriorityMatrix
    index: KeywordIndex
    _by_address: dict[str, str]
    _by_domain: dict[str, str]
    _projects: dict[str, tuple[Project, ...]]
    _project_senders: dict[str, str]  # address -> project name
    _by_email: dict[str, str]  # engineer email -> id

    @property
    def defaults(self) -> config.Defaults:
        return self.source.defaults

    def customer_for(self, sender: str) -> Customer | None:
        sender = sender.lower()
        org = self._by_address.get(sender)
        if org is None and "@" in sender:
            for dom in domain_chain(sender.rpartition("@")[2]):
                org = self._by_domain.get(dom)
                if org is not None:
                    break
        if org is None:
            return None
        return Customer(org, self.source.customers[org].tier)

    def project_for(self, organisation: str, sender: str, name: str = "") -> Project | None:
        """The named project, else the one listing the sender, else the organisation's first."""
        projects = self._projects.get(organisation, ())
        if not projects:
            return None
        wanted = name or self._project_senders.get(f"{organisation}\0{sender.lower()}", "")
        for p in projects:
            if p.name == wanted:
                return p
        return projects[0]

    def sla_for(self, priority: str, tier: str) -> SlaTerms:
        policy = self.source.sla[priority]
        over = policy.tiers.get(tier)
        name = priority
        first, resolution = policy.first_response, policy.resolution
        business, cal = policy.business_hours, policy.calendar
        if over is not None:
            name = f"{priority}/{tier}"
            first = over.first_response or first
            resolution = over.resolution or resolution
            business = business if over.business_hours is None else over.business_hours
            cal = over.calendar or cal
        calendar = self.calendars[cal or self.defaults.calendar]
        if business:
            return SlaTerms(name, first.business(calendar.day_length),
                            resolution.business(calendar.day_length), True, calendar)
        return SlaTerms(name, first.calendar(), resolution.calendar(), False, calendar)

    def escalation_team(self, team: str, category: str) -> str | None:
        """The tier-2 team that takes `team`'s tickets of `category` when escalated."""
        table = self.source.escalation.get(team, {})
        return table.get(category) or table.get("default")

    @cached_property
    def engineer_emails(self) -> frozenset[str]:
        """Every engineer's address, lower case: asked several times for every mail, made once."""
        return frozenset(e.email.lower() for e in self.engineers.values())

    @cached_property
    def team_emails(self) -> dict[str, tuple[str, ...]]:
        """Each team's engineers' addresses, lower case and sorted: asked for every notification."""
        teams: dict[str, list[str]] = {}
        for e in self.engineers.values():
            teams.setdefault(e.team, []).append(e.email.lower())
        return {team: tuple(sorted(emails)) for team, emails in teams.items()}

    def engineer_by_email(self, email: str) -> Engineer | None:
        eid = self._by_email.get(email.lower())
        return self.engineers[eid] if eid else None


def _weekly(hours: config.WeeklyHours) -> tuple:
    return tuple(getattr(hours, d) for d in WEEKDAYS)


def calendar_from(name: str, m: config.CalendarModel) -> WorkCalendar:
    weekly = _weekly(m.hours)
    first_open = next((day for day in weekly if day), ())
    workday_hours = m.workday_hours if m.workday_hours is not None else first_open
    if m.day_length is not None:
        day_length = m.day_length.calendar()
    else:
        day_length = timedelta(minutes=sum(b - a for a, b in first_open)) or timedelta(hours=8)
    return WorkCalendar(name, ZoneInfo(m.timezone), weekly, frozenset(m.holidays),
                        frozenset(m.workdays), workday_hours, day_length)


def compile_rules(model: config.RulesFile, path: Path | None = None) -> RoutingConfig:
    calendars = {name: calendar_from(name, m) for name, m in model.calendars.items()}
    engineers = {}
    for eid, e in model.engineers.items():
        cal = calendars[e.calendar or model.defaults.calendar]
        if e.timezone or e.hours:
            cal = replace(cal, name=f"{cal.name}@{eid}",
                          tz=ZoneInfo(e.timezone) if e.timezone else cal.tz,
                          weekly=_weekly(e.hours) if e.hours else cal.weekly, _cache={})
        engineers[eid] = Engineer(eid, e.email.lower(), e.name, e.tier, e.team, e.manager,
                                  e.out_of_office, cal)
    by_address, by_domain, projects, project_senders = {}, {}, {}, {}
    for org, c in model.customers.items():
        by_address.update((a.lower(), org) for a in c.addresses)
        by_domain.update((d.lower().lstrip("@"), org) for d in c.domains)
        projects[org] = tuple(Project(org, name, p.primary, p.secondary, p.manager)
                              for name, p in c.projects.items())
        for name, p in c.projects.items():
            project_senders.update((f"{org}\0{a.lower()}", name) for a in p.senders)
    index, intern = KeywordIndex(), {}
    rules = []
    for r in model.rules:
        if r.enabled:
            test = conditions.build(r.when, index, intern) if r.when is not None else None
            rules.append(CompiledRule(r.name, r.description, test, actions.build(r.then), r.then.stop,
                                      test.needs() if test is not None else None))
    return RoutingConfig(
        source=model, path=path, rules=tuple(rules), engineers=engineers, calendars=calendars,
        matrix=PriorityMatrix.from_rows(model.priority_matrix), index=index,
        _by_address=by_address, _by_domain=by_domain, _projects=projects,
        _project_senders=project_senders,
        _by_email={e.email: e.id for e in engineers.values()})
