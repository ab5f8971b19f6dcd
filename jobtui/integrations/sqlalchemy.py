"""Enqueue in a SQLAlchemy session's transaction: ``jobtui.enqueue(..., session=session)``
for a ``Session``, ``await aenqueue(async_session, ...)`` (or ``jobtui.aio.enqueue(...,
session=...)``) for an ``AsyncSession``.

The job rows go through ``session.connection()``'s DB-API connection with jobtui's own
SQL (``jobtui.models.borrowed``), so they commit or roll back with the session. The
SQLite wake-up waits for the session's ``after_commit`` event; a rollback drops it.
Drivers: sqlite3 (``sqlite://``), aiosqlite, psycopg2, psycopg 3 (``postgresql+psycopg``,
sync or async) and asyncpg, whose ``$1`` placeholders and typed values
``asyncpg_params`` translates to.
"""

from __future__ import annotations

from collections.abc import Callable

import peewee
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from jobtui.models.borrowed import borrow_connection
from jobtui.models.errors import ConfigurationError

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from typing import Any

    from jobtui.models.job import Job
    from jobtui.registry import Task

#: session.info keys: the callables to run after this transaction commits, and whether
#: the session's commit and rollback events are already listened to.
_PENDING = "jobtui.after_commit"
_LISTENING = "jobtui.listening"

#: Engines whose jobtui schema was checked once (by URL): later enqueues skip the read.
_checked_urls: set[str] = set()


def session_database(session: Session) -> peewee.Database:
    """The session's connection as a Peewee Database, in the session's transaction
    (begun now if it was not)."""
    if isinstance(session, AsyncSession):
        raise ConfigurationError(
            "an AsyncSession cannot be used from synchronous code: "
            "await jobtui.aio.enqueue(..., session=...) or aenqueue(session, ...)"
        )
    connection = session.connection()  # the session's transaction begins here if need be
    dialect = connection.dialect
    if dialect.name not in ("sqlite", "postgresql"):
        raise ConfigurationError(f"jobtui cannot enqueue through a {dialect.name} session")
    pooled = connection.connection  # the DB-API connection (pool proxy), in the transaction
    if dialect.driver == "asyncpg":  # $1 placeholders, typed values
        from .asyncpg_params import AsyncpgConnection

        pooled = AsyncpgConnection(pooled.dbapi_connection)
    if dialect.name == "sqlite":
        _begin_sqlite(pooled)
    url = connection.engine.url.render_as_string(hide_password=False)
    db = borrow_connection(
        pooled,
        engine=dialect.name,
        on_commit=lambda fn: _after_commit(session, fn),
        check_schema=url not in _checked_urls,
    )
    _checked_urls.add(url)
    return db


def _begin_sqlite(pooled: Any) -> None:
    """Make SQLite's own transaction begin now, as a writer.

    The sqlite3 driver (and aiosqlite over it) sends BEGIN only before the first INSERT,
    UPDATE or DELETE, so a session that has only read is not yet in a transaction: there a
    jobtui savepoint would commit on its release. ``BEGIN IMMEDIATE`` also takes the write
    lock up front, since an enqueue reads (catalog, dependencies) before it writes
    (RELIABILITY.md, fact 1); the session's commit or rollback ends it as usual."""
    if pooled.driver_connection.in_transaction:
        return
    cursor = pooled.cursor()
    try:
        cursor.execute("BEGIN IMMEDIATE")
    finally:
        cursor.close()


def _after_commit(session: Session, fn: Callable[[], None]) -> None:
    """Run ``fn`` once after the session's current transaction commits; never after a
    rollback. The session's events are listened to once per session."""
    session.info.setdefault(_PENDING, []).append(fn)
    if not session.info.get(_LISTENING):
        session.info[_LISTENING] = True
        event.listen(session, "after_commit", _run_pending)
        event.listen(session, "after_transaction_end", _drop_pending)


def _run_pending(session: Session) -> None:
    for fn in session.info.pop(_PENDING, ()):
        fn()  # wake-ups are best effort and never raise (wakeup.poke)


def _drop_pending(session: Session, transaction: Any) -> None:
    """The outermost transaction ended without a commit (a rollback, or the session was
    closed: that rolls back without an ``after_rollback`` event): its jobs are gone."""
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


def enqueue(session: Session, task: Task | str, *args: Any, **kwargs: Any) -> Job | None:
    """``jobtui.enqueue(task, ..., session=session)``: the job commits with ``session``."""
    from jobtui.api import enqueue as enqueue_job

    return enqueue_job(task, *args, session=session, **kwargs)


async def aenqueue(
    session: AsyncSession, task: Task | str, *args: Any, **kwargs: Any
) -> Job | None:
    """``await jobtui.aio.enqueue(task, ..., session=session)``."""
    from jobtui.api import enqueue as enqueue_job

    return await run_in_session(session, enqueue_job, task, *args, **kwargs)


async def run_in_session(
    session: AsyncSession, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
) -> Any:
    """``fn(*args, session=..., **kwargs)`` in an ``AsyncSession``'s transaction, without
    blocking the event loop: the synchronous enqueue runs on the session's own connection
    through ``run_sync``, where the async driver's calls are awaited for it (aiosqlite,
    psycopg 3) — not on a jobtui thread, whose connection is not the application's."""
    if not isinstance(session, AsyncSession):
        raise ConfigurationError(
            "jobtui.aio takes an AsyncSession as session=; with a Session or a Django "
            "connection, call jobtui.enqueue(..., session=...)"
        )
    return await session.run_sync(lambda sync_session: fn(*args, session=sync_session, **kwargs))
