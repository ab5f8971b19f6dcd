"""Writing jobs through a connection jobtui does not own: the application's, inside the
transaction the application will commit or roll back (``jobtui.integrations``).

``insert_jobs`` speaks to a Peewee Database. ``borrow_connection`` presents the
application's DB-API connection as one, so every statement an enqueue makes (the task
catalog's defaults, unique keys, dependencies, batches) is jobtui's own SQL, run on that
connection, inside that transaction: the job exists only if the application commits.
jobtui never begins, commits, rolls back or closes that transaction; its multi-statement
steps are savepoints inside it.

The wake-up follows the commit. PostgreSQL queues a ``NOTIFY`` sent inside a transaction
until it commits, and drops it on rollback: the poke is sent at once, on the borrowed
connection. A SQLite wake-up is a datagram, which no transaction holds back: it is handed
to the framework's after-commit hook (``on_commit``) instead.

The schema stays jobtui's: the application and jobtui share one database, created and
migrated by jobtui (a supervisor's start, or ``use_database`` at the application's
start). A borrowed connection only checks that the schema is there and current; it never
creates or migrates it inside someone else's transaction.
"""

from __future__ import annotations

from collections.abc import Callable

import peewee

from .errors import ConfigurationError

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from typing import Any

#: Hands a callable to the application's framework, to run after its transaction commits.
OnCommit = Callable[[Callable[[], None]], None]


class _Borrowed:
    """What a borrowed connection changes in a Peewee Database (mixed in first).

    It is always "in a transaction" (the application's), so ``atomic()`` makes savepoints
    and ``insert_jobs`` defers its wake-up to ``after_commit``; closing it only forgets it.
    """

    _on_commit: OnCommit

    def _lend(self, connection: Any, on_commit: OnCommit) -> None:
        self._on_commit = on_commit
        self._state.set_connection(connection)

    def in_transaction(self) -> bool:
        return True

    def transaction_depth(self) -> int:
        return len(self._state.transactions) + 1  # the application's own, outermost

    def begin(self, *args: Any, **kwargs: Any) -> None:
        raise peewee.OperationalError("a borrowed connection's transaction is the application's")

    commit = rollback = begin  # type: ignore[assignment]

    def close(self) -> bool:
        self._state.reset()  # the connection stays the application's, open
        return False

    def _connect(self) -> Any:
        raise peewee.InterfaceError("the borrowed connection was given back")


class BorrowedSqlite(_Borrowed, peewee.SqliteDatabase):
    """The application's SQLite connection, in its transaction."""

    def after_commit(self, fn: Callable[[], None]) -> Callable[[], None]:
        self._on_commit(fn)
        return fn


class BorrowedPostgres(_Borrowed, peewee.PostgresqlDatabase):
    """The application's PostgreSQL connection, in its transaction."""

    def after_commit(self, fn: Callable[[], None]) -> Callable[[], None]:
        # Its NOTIFY is the server's to deliver at commit (module docstring). In a
        # savepoint: the poke swallows its errors, and one left inside the application's
        # transaction would abort it silently; here the savepoint's release raises instead.
        with self.atomic():
            fn()
        return fn


def is_borrowed(db: Any) -> bool:
    """Whether ``db`` is an application's connection lent to jobtui."""
    return isinstance(db, _Borrowed)


def after_application_commit(db: peewee.Database, fn: Callable[[], None]) -> None:
    """Run ``fn`` after the application's transaction commits (never after a rollback),
    on any engine: work that needs the job committed, such as running it in eager mode."""
    db._on_commit(fn)  # type: ignore[attr-defined]


def sqlite_file(connection: Any) -> str:
    """The file of a SQLite connection's main database ('' for an in-memory one): where
    the supervisors' wake sockets live (wakeup.py)."""
    cursor = connection.cursor()
    try:
        cursor.execute("PRAGMA database_list")
        for row in cursor.fetchall():
            if row[1] == "main":
                return row[2] or ""
    finally:
        cursor.close()
    return ""


def borrow_connection(
    connection: Any, *, engine: str, on_commit: OnCommit, check_schema: bool = True
) -> peewee.Database:
    """A Peewee Database over ``connection`` (a DB-API connection of ``engine``,
    "sqlite" or "postgresql", inside the application's open transaction), for
    ``insert_jobs(..., database=...)``.

    ``on_commit(fn)`` must run ``fn`` once after that transaction commits, and never
    after a rollback. ``check_schema=False`` skips the schema check (a caller that did
    it already for this database).
    """
    from .store import trust_database

    db: peewee.Database
    if engine == "sqlite":
        db = BorrowedSqlite(sqlite_file(connection) or ":memory:", thread_safe=False)
    elif engine == "postgresql":
        db = BorrowedPostgres("borrowed", thread_safe=False)
    else:
        raise ConfigurationError(f"jobtui cannot enqueue through a {engine} connection")
    db._lend(connection, on_commit)  # type: ignore[attr-defined]
    if check_schema:
        check_borrowed_schema(db)
    trust_database(db)
    return db


def check_borrowed_schema(db: peewee.Database) -> None:
    """Refuse, with what to do, a database where jobtui's schema is missing or old: it is
    created and migrated by jobtui itself, never inside the application's transaction."""
    from .migrations import SCHEMA_VERSION, _refuse_if_newer, read_schema_version

    version = read_schema_version(db)
    _refuse_if_newer(version)
    if version != SCHEMA_VERSION:
        state = "has no jobtui tables" if version is None else f"has jobtui schema {version}"
        raise ConfigurationError(
            f"the application's database {state} (this jobtui needs {SCHEMA_VERSION}): "
            "start jobtui-supervisor on it, or call jobtui.use_database(URL) at the "
            "application's start, to create or migrate them first"
        )
