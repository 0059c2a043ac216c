"""Durations as a support lead writes them: "30m", "4h", "2d", "1h30m", "1w".

Owns parsing and printing only. Days and weeks depend on the clock an SLA
policy counts in: in calendar time "1d" is 24 hours and "1w" 7 days; in
business hours "1d" is one working day (the calendar's `day_length`, e.g. 9h
for 09:00-18:00) and "1w" five working days. Hours and minutes are the same
in both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

_UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([wdhms])")
_WHOLE = re.compile(r"\s*(?:\d+(?:\.\d+)?\s*[wdhms]\s*)+")


@dataclass(frozen=True)
class DurationSpec:
    text: str
    weeks: float
    days: float
    rest: timedelta  # the hours, minutes and seconds

    def calendar(self) -> timedelta:
        return timedelta(weeks=self.weeks, days=self.days) + self.rest

    def business(self, day_length: timedelta) -> timedelta:
        return (self.weeks * 5 + self.days) * day_length + self.rest

    def __str__(self) -> str:
        return self.text


def parse_spec(text: str) -> DurationSpec:
    """Parse "4h", "2d", "1h30m"; raise ValueError saying what to write instead."""
    if isinstance(text, DurationSpec):
        return text
    if not isinstance(text, str) or not _WHOLE.fullmatch(text.lower()):
        raise ValueError(
            f"bad duration {text!r}: write a number and a unit, e.g. '30m', '4h', '2d', '1h30m' "
            "(units w, d, h, m, s)"
        )
    weeks = days = seconds = 0.0
    for n, unit in _PART.findall(text.lower()):
        if unit == "w":
            weeks += float(n)
        elif unit == "d":
            days += float(n)
        else:
            seconds += float(n) * _UNITS[unit]
    spec = DurationSpec(text.strip(), weeks, days, timedelta(seconds=seconds))
    if spec.calendar() <= timedelta(0):
        raise ValueError(f"bad duration {text!r}: it must be longer than zero")
    return spec


def parse_duration(text: str) -> timedelta:
    """Calendar-time value of a duration ("1d" is 24 hours)."""
    return parse_spec(text).calendar()
