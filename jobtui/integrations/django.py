"""Enqueue in a Django connection's transaction: ``jobtui.enqueue(..., session=connection)``
(``django.db.connection`` or ``connections[alias]``), or ``enqueue(task, ..., using=alias)``
from here.

Inside ``transaction.atomic()`` the job rows are part of that transaction: they commit or
roll back with it, and the SQLite wake-up is handed to ``transaction.on_commit``. Outside
one, Django runs in autocommit and the enqueue is its own small atomic block, committed
at once. The rows go through the connection's DB-API connection (sqlite3, psycopg 3 or
psycopg2), not Django's cursor wrapper, which rewrites ``%s`` placeholders for SQLite.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import peewee
from django.db import connections, transaction

from jobtui.models.borrowed import borrow_connection
from jobtui.models.errors import ConfigurationError

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from typing import Any

    from jobtui.models.job import Job
    from jobtui.registry import Task

#: Aliases (with their database name) whose jobtui schema was checked once.
_checked: set[tuple[str, str]] = set()


@contextlib.contextmanager
def connection_database(connection: Any) -> Iterator[peewee.Database]:
    """``connection`` as a Peewee Database, inside an atomic block of it (a savepoint of
    the caller's ``atomic()``, or the whole transaction in autocommit mode)."""
    engine = {"sqlite": "sqlite", "postgresql": "postgresql"}.get(connection.vendor)
    if engine is None:
        raise ConfigurationError(f"jobtui cannot enqueue through a {connection.vendor} connection")
    alias = connection.alias
    with transaction.atomic(using=alias):
        connection.ensure_connection()
        key = (alias, str(connection.settings_dict.get("NAME")))
        yield borrow_connection(
            connection.connection,
            engine=engine,
            on_commit=lambda fn: transaction.on_commit(fn, using=alias),
            check_schema=key not in _checked,
        )
        _checked.add(key)


def enqueue(task: Task | str, *args: Any, using: str = "default", **kwargs: Any) -> Job | None:
    """``jobtui.enqueue(task, ..., session=connections[using])``."""
    from jobtui.api import enqueue as enqueue_job

    return enqueue_job(task, *args, session=connections[using], **kwargs)
