"""Checks that need the whole rules file: references between its parts.

Owns "an engineer referenced but not defined", unknown calendars, teams and
tiers, duplicate rule names, a domain claimed by two customers, a missing SLA
policy. Each problem is (where, what to fix); the loader adds the file name.
Runs only on a file whose shape already validated (see `routing.config`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from routing.config import PRIORITIES, Condition, RulesFile

ROLES = ("primary", "secondary", "manager")


def rule_where(index: int, name: str, key: str = "") -> str:
    return f"rule '{name}' (rules #{index + 1})" + (f", {key}" if key else "")


def _walk(cond: Condition | None, path: str = "when") -> Iterator[tuple[str, Condition]]:
    if cond is None:
        return
    yield path, cond
    for key in ("all", "any"):
        for i, child in enumerate(getattr(cond, key) or ()):
            yield from _walk(child, f"{path}.{key}[{i}]")
    if cond.not_ is not None:
        yield from _walk(cond.not_, f"{path}.not")


def defined_names(data: dict) -> dict[str, set[str]]:
    """The names a rules file defines, read from its raw tables whether or not each
    definition is valid: a broken [engineers.alice] is reported as broken, and rules that
    name alice must not also be told she is undefined."""
    def table(key) -> dict:
        value = data.get(key)
        return value if isinstance(value, dict) else {}

    engineers = table("engineers")
    customers = table("customers")
    return {
        "engineers": set(engineers),
        "calendars": set(table("calendars")),
        "tiers": set(table("priority_matrix")),
        "organisations": set(customers),
        "teams": {e["team"] for e in engineers.values() if isinstance(e, dict) and isinstance(e.get("team"), str)},
        "projects": {p for c in customers.values() if isinstance(c, dict) and isinstance(c.get("projects"), dict)
                     for p in c["projects"]},
    }


def problems(m: RulesFile, also_defined: dict[str, set[str]] | None = None) -> list[tuple[str, str]]:
    """Every reference that does not resolve. `also_defined`: names the file defines in
    parts that failed validation (reported already), which count as defined here."""
    extra = also_defined or {}
    out: list[tuple[str, str]] = []
    engineers = set(m.engineers) | extra.get("engineers", set())
    calendars = set(m.calendars) | extra.get("calendars", set())
    teams = {e.team for e in m.engineers.values()} | extra.get("teams", set())
    tiers = set(m.priority_matrix) | extra.get("tiers", set())
    orgs = set(m.customers) | extra.get("organisations", set())
    projects = {p for c in m.customers.values() for p in c.projects} | extra.get("projects", set())

    def engineer(where: str, eid: str) -> None:
        if eid not in engineers:
            out.append((where, f"engineer '{eid}' is referenced but not defined: add [engineers.{eid}] "
                               f"or use one of {sorted(engineers)}"))

    def person(where: str, ref: str) -> None:
        """An owner or watcher: engineer id, project.<role>, or (watchers only) an address."""
        if ref.startswith("project."):
            if ref[len("project."):] not in ROLES:
                out.append((where, f"unknown project role '{ref}': use project.primary, "
                                   "project.secondary or project.manager"))
        else:
            engineer(where, ref)

    def team(where: str, name: str) -> None:
        if name not in teams:
            out.append((where, f"team '{name}' has no engineers: fix the name or give an engineer "
                               f"team = '{name}' (known teams: {sorted(teams)})"))

    def calendar(where: str, name: str | None) -> None:
        if name is not None and name not in calendars:
            out.append((where, f"calendar '{name}' is not defined: add [calendars.{name}] "
                               f"or use one of {sorted(calendars)}"))

    def tier(where: str, name: str) -> None:
        if name not in tiers:
            out.append((where, f"customer tier '{name}' is not in [priority_matrix]: add "
                               f"[priority_matrix.{name}] or use one of {sorted(tiers)}"))

    # defaults
    d = m.defaults
    team("defaults.team", d.team)
    calendar("defaults.calendar", d.calendar)
    tier("defaults.customer_tier", d.customer_tier)
    if d.owner:
        person("defaults.owner", d.owner)

    # priority matrix and SLA
    if not tiers:
        out.append(("priority_matrix", "no customer tiers: add at least [priority_matrix.standard]"))
    for p in PRIORITIES:
        if p not in m.sla:
            out.append((f"sla.{p}", f"no SLA policy for {p}: add [sla.{p}] with first_response and resolution"))
    for key, policy in m.sla.items():
        if key not in PRIORITIES:
            out.append((f"sla.{key}", f"unknown priority '{key}': SLA policies are named P1, P2, P3, P4"))
        calendar(f"sla.{key}.calendar", policy.calendar)
        for t, over in policy.tiers.items():
            tier(f"sla.{key}.tiers.{t}", t)
            calendar(f"sla.{key}.tiers.{t}.calendar", over.calendar)

    # engineers
    for eid, e in m.engineers.items():
        calendar(f"engineers.{eid}.calendar", e.calendar or d.calendar)
    for email, n in Counter(e.email.lower() for e in m.engineers.values()).items():
        if n > 1:
            ids = [eid for eid, e in m.engineers.items() if e.email.lower() == email]
            out.append((f"engineers.{ids[1]}.email", f"address {email} is used by {ids}: give each engineer their own"))

    # customers and projects
    seen_dom: dict[str, str] = {}
    seen_addr: dict[str, str] = {}
    for org, c in m.customers.items():
        tier(f"customers.{org}.tier", c.tier)
        for dom in c.domains:
            other = seen_dom.setdefault(dom.lower(), org)
            if other != org:
                out.append((f"customers.{org}.domains", f"domain {dom} is also claimed by customer "
                                                         f"'{other}': a domain belongs to one organisation"))
        for addr in c.addresses:
            other = seen_addr.setdefault(addr.lower(), org)
            if other != org:
                out.append((f"customers.{org}.addresses", f"address {addr} is also listed under customer "
                                                           f"'{other}': an address belongs to one organisation"))
        for pname, p in c.projects.items():
            where = f"customers.{org}.projects.{pname}"
            for role in ROLES:
                engineer(f"{where}.{role}", getattr(p, role))
            if p.primary == p.secondary:
                out.append((where, f"primary and secondary are both '{p.primary}': the handover rule "
                                   "needs two different engineers"))
            mgr = m.engineers.get(p.manager)
            if mgr is not None and not mgr.manager:
                out.append((f"{where}.manager", f"'{p.manager}' is named manager but [engineers.{p.manager}] "
                                                "has manager = false: set manager = true or name a manager"))

    # escalation
    for src, table in m.escalation.items():
        team(f"escalation.{src}", src)
        for cat, dst in table.items():
            team(f"escalation.{src}.{cat}", dst)

    # rules
    names = Counter(r.name for r in m.rules)
    for i, r in enumerate(m.rules):
        if names[r.name] > 1:
            out.append((rule_where(i, r.name), f"the name '{r.name}' is used by {names[r.name]} rules: "
                                               "give each rule its own name (the ticket history cites it)"))
            names[r.name] = 0  # report once
        a = r.then
        if a.team is not None:
            team(rule_where(i, r.name, "then.team"), a.team)
        if a.owner:
            person(rule_where(i, r.name, "then.owner"), a.owner)
        for w in a.watchers or ():
            if "@" not in w:
                person(rule_where(i, r.name, "then.watchers"), w)
        if a.project is not None and a.project not in projects:
            out.append((rule_where(i, r.name, "then.project"),
                        f"project '{a.project}' is not defined under any customer: fix the name "
                        f"(known: {sorted(projects)})"))
        for path, cond in _walk(r.when):
            for o in cond.organisation or ():
                if o not in orgs:
                    out.append((rule_where(i, r.name, f"{path}.organisation"),
                                f"organisation '{o}' is not defined: add [customers.{o}] or use one of {sorted(orgs)}"))
            for t in cond.customer_tier or ():
                tier(rule_where(i, r.name, f"{path}.customer_tier"), t)
    return out
