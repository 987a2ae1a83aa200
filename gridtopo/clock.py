"""Time, the one way gridtopo handles it: every timestamp is aware UTC.

SQLite hands back naive datetimes (stored as UTC); users type ISO date-times with or without an
offset. These helpers are the only places that turn either into aware UTC.

>>> as_utc(dt.datetime(2024, 12, 31, 8, 0))
datetime.datetime(2024, 12, 31, 8, 0, tzinfo=datetime.timezone.utc)
>>> as_utc(dt.datetime(2024, 12, 31, 16, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))))
datetime.datetime(2024, 12, 31, 8, 0, tzinfo=datetime.timezone.utc)
>>> parse_iso("2024-12-31T16:00+08:00").isoformat()
'2024-12-31T08:00:00+00:00'
>>> parse_iso("2024-12-31").isoformat()
'2024-12-31T00:00:00+00:00'
"""

from __future__ import annotations

import datetime as dt
from typing import overload


def utcnow() -> dt.datetime:
    """Timezone-aware now in UTC; every timestamp gridtopo writes is UTC."""
    return dt.datetime.now(dt.UTC)


def now_seconds() -> dt.datetime:
    """The current time, aware UTC, to the second (what outage events record)."""
    return utcnow().replace(microsecond=0)


@overload
def as_utc(value: dt.datetime) -> dt.datetime: ...
@overload
def as_utc(value: None) -> None: ...
def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """``value`` as an aware UTC datetime: naive values are taken to be UTC already."""
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def naive_utc(value: dt.datetime) -> dt.datetime:
    """``value`` in UTC without its zone: how the model's frames hold timestamps (as SQLite
    stores them), so a clock can be compared with them.

    >>> naive_utc(dt.datetime(2024, 12, 31, 16, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))))
    datetime.datetime(2024, 12, 31, 8, 0)
    """
    return as_utc(value).replace(tzinfo=None)


def parse_iso(text: str) -> dt.datetime:
    """An ISO date or date-time as aware UTC (no offset means UTC); ``ValueError`` otherwise."""
    return as_utc(dt.datetime.fromisoformat(text))
