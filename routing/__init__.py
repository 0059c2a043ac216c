"""Routing rules as data: who a ticket goes to, how urgent it is, when it is due.

Pure: no database, no network, no clock reads (the caller passes `now`).
Public API:

- `load_rules(path) -> RoutingConfig`, raising `RulesError` (a list of `Problem`)
- `check_file(path) -> list[Problem]` for `supportgw rules check`
- `RulesHolder(path)` with `.current`, `.reload()`, `.reload_if_changed()`
- `route(email, cfg, *, recipients, now) -> Decision` (with `.trace` and `.history()`)
- `explain(decision, cfg)`, `explain_email(raw_or_parsed, cfg, recipients, now)`
- `add_business_time`, `business_time_between`, `sla_deadlines`, `is_working_time`
"""

from routing.calendar import (WorkCalendar, add_business_time, business_time_between,
                              is_working_time, sla_deadlines)
from routing.compiler import RoutingConfig
from routing.engine import Decision, TraceStep, route
from routing.explain import explain, explain_email, parse_for_routing
from routing.loader import SAMPLE_RULES, Problem, RulesError, RulesHolder, check_file, load_rules

__all__ = [
    "SAMPLE_RULES", "Decision", "Problem", "RoutingConfig", "RulesError", "RulesHolder",
    "TraceStep", "WorkCalendar", "add_business_time", "business_time_between", "check_file",
    "explain", "explain_email", "is_working_time", "load_rules", "parse_for_routing", "route",
    "sla_deadlines",
]
