"""The Date header of mail that tests send: now, by the real clock.

Mail older than `workflow.history_age_days` by the gateway's clock is filed as history
(gateway/handlers/history.py), so a fixed date would make every test mail old once the calendar
passed it. A test that runs the gateway on a ManualClock (March 2026) sees these dates in
its future, which counts as new, as a skewed sender clock does.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime


def sent_now() -> str:
    return format_datetime(datetime.now(timezone(timedelta(hours=8))))
