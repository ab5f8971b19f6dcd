"""jobtui's SQL on an asyncpg connection (SQLAlchemy's ``postgresql+asyncpg``).

jobtui writes PostgreSQL statements for psycopg: ``%(name)s`` or ``%s`` placeholders,
timestamps passed as text for the server to convert. asyncpg takes ``$1`` placeholders
and binary parameters typed by the server, so a timestamp must be a ``datetime`` and a
boolean a ``bool``. ``AsyncpgConnection`` wraps SQLAlchemy's adapted asyncpg connection
so that its cursors translate both: placeholders are renumbered, and each value is
converted to the type the server declared for its parameter (learned once per statement
from asyncpg's prepared statement).
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy.util.concurrency import await_only

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%s|%%")
#: Translated statement -> the server's type name of each parameter.
_types: dict[str, list[str]] = {}


def translate(sql: str, params: Mapping[str, Any] | Sequence[Any] | None) -> tuple[str, list[Any]]:
    """``sql`` with ``$n`` placeholders, and its values in that order."""
    values: list[Any] = []
    names: dict[str, int] = {}
    given = iter(() if params is None or isinstance(params, dict) else params)

    def number(match: re.Match[str]) -> str:
        if match.group(0) == "%%":
            return "%"
        name = match.group(1)
        if name is None:
            values.append(next(given))
            return f"${len(values)}"
        if name not in names:
            values.append(params[name])  # type: ignore[index]
            names[name] = len(values)
        return f"${names[name]}"

    return _PLACEHOLDER.sub(number, sql), values


def _convert(value: Any, type_name: str) -> Any:
    if value is None:
        return None
    if type_name in ("timestamp", "timestamptz") and isinstance(value, str):
        return datetime.fromisoformat(value)
    if type_name == "bool" and not isinstance(value, bool):
        return bool(value)
    if type_name in ("text", "varchar", "bpchar") and not isinstance(value, str):
        return str(value)
    if type_name == "float8" and isinstance(value, int):
        return float(value)
    return value


class AsyncpgCursor:
    """A cursor of SQLAlchemy's adapted asyncpg connection that takes jobtui's SQL."""

    def __init__(self, connection: AsyncpgConnection) -> None:
        self._connection = connection
        self._cursor = connection.adapted.cursor()

    def _typed(self, sql: str, values: list[Any]) -> list[Any]:
        types = _types.get(sql)
        if types is None:
            driver = self._connection.adapted.driver_connection
            prepared = await_only(driver.prepare(sql))
            types = _types[sql] = [t.name for t in prepared.get_parameters()]
        return [_convert(v, t) for v, t in zip(values, types, strict=True)]

    def execute(self, sql: str, params: Any = None) -> AsyncpgCursor:
        sql, values = translate(sql, params)
        self._cursor.execute(sql, self._typed(sql, values) if values else ())
        return self

    def executemany(self, sql: str, rows: Sequence[Any]) -> None:
        translated = [translate(sql, row) for row in rows]
        if translated:
            dollar_sql = translated[0][0]
            self._cursor.executemany(
                dollar_sql, [self._typed(dollar_sql, v) for _, v in translated]
            )

    def __getattr__(self, name: str) -> Any:  # fetchone, fetchall, rowcount, description, close
        return getattr(self._cursor, name)


class AsyncpgConnection:
    """SQLAlchemy's adapted asyncpg connection, with cursors that take jobtui's SQL."""

    def __init__(self, adapted: Any) -> None:
        self.adapted = adapted

    def cursor(self) -> AsyncpgCursor:
        return AsyncpgCursor(self)
