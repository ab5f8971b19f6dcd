"""Time as jobtui stores it: naive UTC datetimes in the database, aware ones at the edges.

Every timestamp column holds UTC without an offset (SQLite has no zone type and the
PostgreSQL columns are ``timestamp``); JSON output adds ``+00:00`` so readers never guess.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time as the naive UTC datetime the columns store."""
    return datetime.now(UTC).replace(tzinfo=None)


def to_utc_naive(value: datetime) -> datetime:
    """Normalise a datetime from a caller: aware values are converted, naive ones are UTC."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def sql_timestamp(value: datetime) -> str:
    """The text form SQLite stores (the same as Peewee writes), for prepared statements."""
    return value.isoformat(sep=" ", timespec="microseconds")


def iso_utc(value: datetime | None) -> str | None:
    """ISO 8601 with the UTC offset, as JSON output writes it."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC).isoformat()


_second: tuple[int, str] = (-1, "")  # (a UTC second, its text up to the seconds)


def utc_stamp() -> str:
    """``sql_timestamp(utcnow())`` without building a datetime (an enqueue's timestamps:
    a quarter of the cost, the date and time of the second made once per second)."""
    global _second
    ns = time.time_ns()
    second, micro = divmod(ns // 1000, 1_000_000)
    cached = _second
    if cached[0] != second:
        cached = _second = (second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%d %H:%M:%S"))  # fmt: skip
    return f"{cached[1]}.{micro:06d}"
