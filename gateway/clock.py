"""Time, injectable: production reads the system clock, tests move a manual one."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class ManualClock:
    """A clock that only moves when told to; for tests of timers without sleeping."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, **kw) -> datetime:
        with self._lock:
            self._now += timedelta(**kw)
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = when


def fmt_due(app, when) -> str:
    """A deadline as our mail shows it: in the report timezone, to the minute ("" for none)."""
    if when is None:
        return ""
    return _fmt_due(when, app.config.report.timezone)


@lru_cache(maxsize=4096)
def _fmt_due(when: datetime, timezone_name: str) -> str:
    # kept: a ticket's deadlines are shown in every mail about it, several a message
    return when.astimezone(ZoneInfo(timezone_name)).strftime("%Y-%m-%d %H:%M %Z")
