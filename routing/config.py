"""The rules file's schema: pydantic models that say what a support lead may write.

Owns the *shape* of the configuration and every check that needs one value
alone (a bad regex, a bad duration, overlapping hours, an unknown key).
Checks that need the whole file (an engineer referenced but not defined) are in
`routing.checks`; turning the models into fast matchers is `routing.compiler`.
Every model forbids unknown keys so a misspelt key is an error, not a silent
no-op.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field,
                      model_validator)

from routing.durations import DurationSpec, parse_spec

PRIORITIES = ("P1", "P2", "P3", "P4")
LEVELS = ("high", "medium", "low")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

Priority = Literal["P1", "P2", "P3", "P4"]
Level = Literal["high", "medium", "low"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --- value parsers (each raises ValueError saying what to write instead) -----------

def _as_list(value):
    """A single string is a one-element list; an empty list is a mistake."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, (list, tuple)) and not value:
        raise ValueError("empty list: it would match nothing; give at least one value or remove the key")
    return value


def _check_regexes(patterns: tuple[str, ...]) -> tuple[str, ...]:
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(
                f"bad regular expression {pattern!r}: {exc}; fix the pattern "
                r"(escape literal characters such as '(' '.' '+' with a backslash)"
            ) from None
    return patterns


def _check_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as 'Asia/Shanghai' "
                         "or 'Europe/Berlin'") from None
    return name


_HHMM = re.compile(r"([01]\d|2[0-4]):([0-5]\d)")


def _minutes(text: str, whole: str) -> int:
    m = _HHMM.fullmatch(text.strip())
    if not m or (m.group(1) == "24" and m.group(2) != "00"):
        raise ValueError(f"bad working hours {whole!r}: write 'HH:MM-HH:MM', e.g. '09:00-18:00'")
    return int(m.group(1)) * 60 + int(m.group(2))


def parse_intervals(value) -> tuple[tuple[int, int], ...]:
    """'09:00-12:00' or a list of them -> sorted (start, end) minutes; no overlaps."""
    if isinstance(value, str):
        value = [value] if value.strip() else []
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ValueError("working hours must be a string like '09:00-18:00' or a list of them")
    spans = []
    for text in value:
        start, sep, end = text.partition("-")
        if not sep:
            raise ValueError(f"bad working hours {text!r}: write 'HH:MM-HH:MM', e.g. '09:00-18:00'")
        a, b = _minutes(start, text), _minutes(end, text)
        if a == 24 * 60 or b <= a:
            raise ValueError(f"bad working hours {text!r}: the end must be after the start "
                             "(intervals cannot cross midnight; split them at 24:00)")
        spans.append((a, b, text))
    spans.sort()
    for (a1, b1, t1), (a2, b2, t2) in zip(spans, spans[1:]):
        if a2 < b1:
            raise ValueError(f"overlapping working hours {t1!r} and {t2!r}: make the intervals "
                             "disjoint or merge them into one")
    return tuple((a, b) for a, b, _ in spans)


def _parse_dates(value) -> tuple[date, ...]:
    """Dates as TOML dates, 'YYYY-MM-DD' strings, or 'YYYY-MM-DD..YYYY-MM-DD' ranges."""
    if isinstance(value, (str, date)):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"bad dates {value!r}: write a list such as [2026-10-01, '2026-10-02..2026-10-07']")
    out: list[date] = []
    for item in value:
        if isinstance(item, date):
            out.append(item)
            continue
        if not isinstance(item, str):
            raise ValueError(f"bad date {item!r}: write 2026-10-01 or '2026-10-01..2026-10-07'")
        first, sep, last = item.partition("..")
        try:
            a = date.fromisoformat(first.strip())
            b = date.fromisoformat(last.strip()) if sep else a
        except ValueError:
            raise ValueError(f"bad date {item!r}: write 2026-10-01 or '2026-10-01..2026-10-07'") from None
        if b < a:
            raise ValueError(f"bad date range {item!r}: the last day is before the first")
        out.extend(a + timedelta(days=i) for i in range((b - a).days + 1))
    return tuple(out)


StrList = Annotated[tuple[str, ...], BeforeValidator(_as_list)]
RegexList = Annotated[tuple[str, ...], BeforeValidator(_as_list), AfterValidator(_check_regexes)]
Duration = Annotated[DurationSpec, BeforeValidator(parse_spec)]
Zone = Annotated[str, AfterValidator(_check_zone)]
Intervals = Annotated[tuple[tuple[int, int], ...], BeforeValidator(parse_intervals)]
Dates = Annotated[tuple[date, ...], BeforeValidator(_parse_dates)]
Name = Annotated[str, Field(min_length=1)]


# --- rules -----------------------------------------------------------------------

class HeaderCondition(_Strict):
    name: Name
    value: str | None = None  # whole value, case-insensitive; neither value nor regex: presence
    regex: Annotated[str, AfterValidator(lambda p: _check_regexes((p,))[0])] | None = None


class Condition(_Strict):
    """One table of tests; several keys in one table must all hold."""

    all: tuple[Condition, ...] | None = None
    any: tuple[Condition, ...] | None = None
    not_: Condition | None = Field(None, alias="not")
    sender: StrList | None = None
    domain: StrList | None = None
    organisation: StrList | None = None
    customer_tier: StrList | None = None
    recipient: StrList | None = None
    subject_keywords: StrList | None = None
    body_keywords: StrList | None = None
    keywords: StrList | None = None  # in the subject or the body
    subject_regex: RegexList | None = None
    body_regex: RegexList | None = None
    header: HeaderCondition | None = None
    has_attachment: bool | None = None
    attachment_name: StrList | None = None  # shell patterns: "*.log", "*.tar.gz"
    language: StrList | None = None
    known_customer: bool | None = None  # the sender is in the customer directory

    @model_validator(mode="after")
    def _not_empty(self):
        if not self.model_fields_set:
            raise ValueError("empty condition: give at least one test (e.g. keywords = [...]) "
                             "or leave out 'when' to match every email")
        for key in ("all", "any"):
            if getattr(self, key) == ():
                raise ValueError(f"'{key}' is an empty list: give it at least one condition")
        return self


class Actions(_Strict):
    category: Name | None = None
    team: Name | None = None
    impact: Level | None = None
    urgency: Level | None = None
    priority: Priority | None = None  # fixes the priority, whatever the matrix says
    priority_at_least: Priority | None = None  # e.g. "P1": never less urgent than P1
    raise_priority: Annotated[int, Field(ge=1, le=3)] | None = None
    lower_priority: Annotated[int, Field(ge=1, le=3)] | None = None
    owner: str | None = None  # engineer id, project.primary/.secondary/.manager, or "" (team queue)
    project: Name | None = None  # pick one of the organisation's projects
    tags: StrList | None = None
    watchers: StrList | None = None  # engineer ids, project.* roles, or email addresses
    stop: bool = False


class Rule(_Strict):
    name: Name
    description: str = ""
    enabled: bool = True
    when: Condition | None = None  # absent: every email
    then: Actions

    @model_validator(mode="after")
    def _does_something(self):
        if not (self.then.model_fields_set - {"stop"}) and not self.then.stop:
            raise ValueError("the rule has no actions: add at least one under 'then' "
                             "(category, team, impact, urgency, priority, owner, tags, ... or stop)")
        return self


# --- directory -------------------------------------------------------------------

class Project(_Strict):
    primary: Name
    secondary: Name
    manager: Name
    senders: StrList = ()  # addresses that belong to this project; else the first project applies
    description: str = ""


class Customer(_Strict):
    name: str = ""
    tier: Name
    domains: StrList = ()
    addresses: StrList = ()
    projects: dict[str, Project] = {}

    @model_validator(mode="after")
    def _has_a_way_in(self):
        if not self.domains and not self.addresses:
            raise ValueError("a customer needs 'domains' or 'addresses' to be recognised")
        return self


class WeeklyHours(_Strict):
    mon: Intervals = ()
    tue: Intervals = ()
    wed: Intervals = ()
    thu: Intervals = ()
    fri: Intervals = ()
    sat: Intervals = ()
    sun: Intervals = ()


class CalendarModel(_Strict):
    timezone: Zone
    hours: WeeklyHours
    holidays: Dates = ()
    workdays: Dates = ()  # adjusted working days (调休) that fall on a weekend
    workday_hours: Intervals | None = None  # hours on those days; default: the first open weekday's
    day_length: Duration | None = None  # a business "1d"; default: the first open weekday's working time

    @model_validator(mode="after")
    def _consistent(self):
        both = sorted(set(self.holidays) & set(self.workdays))
        if both:
            raise ValueError(f"overlapping calendar: {', '.join(map(str, both))} is both a holiday "
                             "and an adjusted working day; remove it from one list")
        if not any(getattr(self.hours, d) for d in WEEKDAYS) and not self.workdays:
            raise ValueError("the calendar has no working hours at all; give hours for at least one day")
        return self


class Engineer(_Strict):
    email: Name
    name: str = ""
    tier: Literal[1, 2] = 1
    team: Name
    manager: bool = False
    calendar: str | None = None  # default: defaults.calendar
    timezone: Zone | None = None  # overrides the calendar's zone for this person
    hours: WeeklyHours | None = None  # overrides the calendar's weekly hours
    out_of_office: bool = False


# --- priority and SLA ------------------------------------------------------------

Row = tuple[Priority, Priority, Priority]


class TierMatrix(_Strict):
    """Rows are impact; each row lists the priority for urgency high, medium, low."""

    high: Row
    medium: Row
    low: Row


class SlaOverride(_Strict):
    first_response: Duration | None = None
    resolution: Duration | None = None
    business_hours: bool | None = None
    calendar: str | None = None


class SlaPolicy(_Strict):
    first_response: Duration
    resolution: Duration
    business_hours: bool = False
    calendar: str | None = None  # default: defaults.calendar
    tiers: dict[str, SlaOverride] = {}

    @model_validator(mode="after")
    def _ordered(self):
        if self.resolution.calendar() < self.first_response.calendar():
            raise ValueError("resolution is shorter than first_response; the first answer cannot "
                             "come after the fix: make resolution at least as long")
        return self


class Defaults(_Strict):
    category: Name = "general"
    team: Name = "support"
    impact: Level = "medium"
    urgency: Level = "medium"
    customer_tier: Name = "standard"  # for senders not in the customer directory
    owner: str = ""  # "" (the team queue), an engineer id, or project.primary
    calendar: Name = "default"


class RulesFile(_Strict):
    version: Literal[1] = 1
    defaults: Defaults = Defaults()
    customers: dict[str, Customer] = {}
    engineers: dict[str, Engineer] = {}
    calendars: dict[str, CalendarModel] = {}
    priority_matrix: dict[str, TierMatrix]
    sla: dict[str, SlaPolicy]
    # team -> {category or "default" -> tier-2 team}; used by escalation
    escalation: dict[str, dict[str, str]] = {}
    rules: tuple[Rule, ...] = ()


# Every key the schema knows, for "did you mean ...?" on an unknown key.
def known_keys() -> set[str]:
    keys: set[str] = set()
    for model in (HeaderCondition, Condition, Actions, Rule, Project, Customer, WeeklyHours,
                  CalendarModel, Engineer, TierMatrix, SlaOverride, SlaPolicy, Defaults, RulesFile):
        for name, info in model.model_fields.items():
            keys.add(info.alias or name)
    return keys
