"""The model base class and the column types shared by every table."""

from __future__ import annotations

import json
from datetime import datetime

import peewee

from .clock import sql_timestamp, to_utc_naive, utcnow
from .db import database_proxy

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from typing import Any


#: json.dumps with options builds a JSONEncoder per call, then its C encoder (a tenth of
#: an enqueue's Python): the options are fixed here, so only the C encoder is made per
#: call (its circular-reference markers are per call), as JSONEncoder.iterencode makes it.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_C_ENCODER = getattr(json.encoder, "c_make_encoder", None)
_ENCODE_TEXT = json.encoder.encode_basestring  # ensure_ascii=False's


def dumps(value: Any) -> str:
    """JSON as jobtui stores it: compact, UTF-8 kept, refusing NaN (not JSON)."""
    if _C_ENCODER is None:  # a Python without the _json accelerator
        return _ENCODER.encode(value)
    encode = _C_ENCODER({}, _ENCODER.default, _ENCODE_TEXT, None, ":", ",", False, False, False)
    return "".join(encode(value, 0))


class JSONText(peewee.TextField):
    """JSON kept as text: the same column on SQLite and PostgreSQL, never unpickled."""

    def db_value(self, value: Any) -> str | None:
        return None if value is None else dumps(value)

    def python_value(self, value: Any) -> Any:
        if value is None or not isinstance(value, str | bytes):
            return value
        try:
            return json.loads(value)
        except ValueError:
            return value  # corrupt text stays readable (and shown as it is), never a crash


class UTCDateTime(peewee.DateTimeField):
    """A naive UTC timestamp with microseconds; aware values are converted on the way in."""

    formats = ["%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f"]

    def python_value(self, value: Any) -> Any:
        # Our own text (``sql_timestamp``: always 26 characters, with microseconds) parses
        # at C speed; Peewee tries strptime format by format (~5 µs a value, three per job
        # an enqueue builds without reading back). Anything else takes Peewee's way.
        if isinstance(value, str) and len(value) == 26:
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                parsed = None
            if parsed is not None and parsed.tzinfo is None:
                return parsed
        return super().python_value(value)

    def db_value(self, value: Any) -> Any:
        # Text with microseconds always: it sorts correctly as text on SQLite (and avoids
        # sqlite3's deprecated datetime adapter); PostgreSQL casts it to the column type.
        if isinstance(value, datetime):
            return sql_timestamp(to_utc_naive(value))
        return value


_STAMP = UTCDateTime()


def as_datetime(value: Any) -> datetime | None:
    """A timestamp as a driver returned it from raw SQL (text on SQLite, a datetime on
    PostgreSQL) as the naive UTC datetime the models give."""
    if value is None or isinstance(value, datetime):
        return value
    return _STAMP.python_value(value)


class BaseModel(peewee.Model):
    class Meta:
        database = database_proxy
        legacy_table_names = False


def now_default() -> Any:
    return utcnow()
