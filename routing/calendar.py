"""Business-time arithmetic: when does "2 business hours from now" end?

Owns `WorkCalendar` (weekly hours, holidays, adjusted working days, a time
zone) and exact arithmetic on it. Working hours are wall-clock times in the
calendar's zone; each working interval is turned into UTC instants on its own
day, so a DST switch inside an interval shortens or lengthens it by exactly
the real hour. Aware datetimes in, UTC out. No clock reads: the caller passes
every instant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

UTC = timezone.utc
_MAX_DAYS = 3 * 366  # a calendar that never opens must fail, not loop

Span = tuple[int, int]  # minutes after local midnight, end exclusive


@dataclass(frozen=True, eq=False)
class WorkCalendar:
    name: str
    tz: ZoneInfo
    weekly: tuple[tuple[Span, ...], ...]  # Monday first, 7 entries
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()  # adjusted working days (调休)
    workday_hours: tuple[Span, ...] = ()
    day_length: timedelta = timedelta(hours=8)  # what "1d" means in business time
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __repr__(self) -> str:
        return f"WorkCalendar({self.name!r}, {self.tz.key})"

    def spans_on(self, day: date) -> tuple[Span, ...]:
        if day in self.workdays:
            return self.workday_hours
        if day in self.holidays:
            return ()
        return self.weekly[day.weekday()]

    def utc_spans_on(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """The day's working intervals as UTC instants (cached: days repeat a lot)."""
        hit = self._cache.get(day)
        if hit is None:
            if len(self._cache) > 20000:
                self._cache.clear()
            hit = tuple((self._instant(day, a), self._instant(day, b)) for a, b in self.spans_on(day))
            self._cache[day] = hit
        return hit

    def _instant(self, day: date, minutes: int) -> datetime:
        if minutes == 24 * 60:
            day, minutes = day + timedelta(days=1), 0
        wall = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=self.tz)
        # A wall time in a spring-forward gap maps, with fold=0, to the instant one
        # hour later; round trip through UTC so the instant is unambiguous.
        return wall.astimezone(UTC)

    def local_day(self, at: datetime) -> date:
        return at.astimezone(self.tz).date()

    def is_open(self, at: datetime) -> bool:
        at = _aware(at)
        day = self.local_day(at)
        # An interval ending at 24:00 local belongs to the previous day's list.
        for d in (day - timedelta(days=1), day):
            for a, b in self.utc_spans_on(d):
                if a <= at < b:
                    return True
        return False


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at!r}: pass an aware datetime (with a time zone)")
    return at.astimezone(UTC)


def add_business_time(start: datetime, delta: timedelta, cal: WorkCalendar) -> datetime:
    """The instant when `delta` of working time has elapsed after `start` (UTC).

    A target that lands exactly at the end of an interval is that end (Friday
    17:00 + 1h with 09-18 is Friday 18:00, not Monday 09:00).
    """
    start = _aware(start)
    if delta < timedelta(0):
        raise ValueError("negative business time")
    remaining = delta
    if not remaining:
        return start
    day = cal.local_day(start) - timedelta(days=1)
    for _ in range(_MAX_DAYS):
        for a, b in cal.utc_spans_on(day):
            if b <= start:
                continue
            begin = max(a, start)
            available = b - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
        day += timedelta(days=1)
    raise ValueError(f"calendar {cal.name!r} has no working time within {_MAX_DAYS} days of {start}")


def business_time_between(a: datetime, b: datetime, cal: WorkCalendar) -> timedelta:
    """Working time in [a, b); negative when b is before a."""
    a, b = _aware(a), _aware(b)
    if b < a:
        return -business_time_between(b, a, cal)
    total = timedelta(0)
    day, last = cal.local_day(a) - timedelta(days=1), cal.local_day(b)
    while day <= last:
        for s, e in cal.utc_spans_on(day):
            lo, hi = max(s, a), min(e, b)
            if hi > lo:
                total += hi - lo
        day += timedelta(days=1)
    return total


def sla_deadlines(policy, start: datetime, cal: WorkCalendar) -> tuple[datetime, datetime]:
    """(first_response_due, resolution_due) for a resolved policy (see compiler.SlaTerms).

    Calendar-time policies add real elapsed time ("1d" is 24 hours even across
    a DST switch); business-hours policies count working time only.
    """
    start = _aware(start)
    if policy.business_hours:
        return (add_business_time(start, policy.first_response, cal),
                add_business_time(start, policy.resolution, cal))
    return start + policy.first_response, start + policy.resolution


def is_working_time(engineer, at: datetime) -> bool:
    """Whether it is within `engineer`'s working hours at `at` (False when out of office)."""
    if getattr(engineer, "out_of_office", False):
        return False
    return engineer.calendar.is_open(at)
