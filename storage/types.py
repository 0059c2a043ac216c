"""Column types shared by the models.

Timestamps are stored as naive UTC and handed back as aware UTC, so SQLite
(which keeps no zone) and PostgreSQL behave the same.
"""

from __future__ import annotations

from datetime import datetime, timezone

import orjson
from sqlalchemy import JSON, DateTime
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator):
    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        return _in_utc(value).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc)


def sqlite_utc_text(value: datetime) -> str:
    """What UTCDateTime's bind processor writes to SQLite for `value` (naive UTC, SQLAlchemy's
    'YYYY-MM-DD HH:MM:SS.ffffff'), in one call instead of four: storage.bulk binds a dozen
    timestamps a message with it, on the driver's own connection."""
    return _in_utc(value).isoformat(" ", "microseconds")[:26]  # without its "+00:00"


def _in_utc(value: datetime) -> datetime:
    """`value` in UTC (aware); a naive one is refused, whatever writes it."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the database; pass an aware UTC datetime")
    return value if value.tzinfo is timezone.utc else value.astimezone(timezone.utc)


JSONType = JSON


def json_text(value) -> str:
    """A JSON column's text, by orjson: six times the stdlib's speed (a message writes some twenty
    JSON values). UTF-8 rather than \\u escapes; keys that are not strings are written as strings,
    as the stdlib does."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


json_value = orjson.loads  # what json_text wrote (and what the stdlib wrote before it)
