"""The database jobtui is using in this process, opened once and migrated once.

``use_database`` points every model at a database (a URL or a Peewee Database); the API,
CLI and supervisor call ``get_database`` and never build their own. Databases the
application passes in (``enqueue(..., database=app_db)``) are checked for the schema once
each. After ``fork`` the child drops (never closes) the parent's connections: closing
would break the parent's PostgreSQL session (RELIABILITY.md, fact 3).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import weakref
from collections.abc import Callable

import peewee

from .db import (
    MAY_HAVE_COMMITTED,
    connect,
    database_proxy,
    default_database_url,
    open_database,
    redact_url,
    resolve_database_url,
)
from .errors import CommitUncertain, ConnectionLost, DiskFull, NoDatabase, StoreError
from .migrations import ensure_schema, read_schema_version

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from typing import Any, TypeVar

    F = TypeVar("F", bound=Callable[..., Any])

log = logging.getLogger(__name__)

_lock = threading.RLock()
_current: peewee.Database | None = None
_current_url: str | None = None
_by_url: dict[str, peewee.Database] = {}
_checked: weakref.WeakSet[peewee.Database] = weakref.WeakSet()


def _prepare(db: peewee.Database, url: str | None, create: bool = True) -> peewee.Database:
    if db not in _checked:
        connect(db, url)
        try:
            if not create and read_schema_version(db) is None:
                raise NoDatabase(
                    f"no jobtui database at {redact_url(url or str(db.database))} (nothing was "
                    "created): any write creates it (jobtui enqueue, or starting "
                    "jobtui-supervisor)"
                )
            ensure_schema(db)
        except (peewee.OperationalError, peewee.InterfaceError) as exc:
            try:
                db.close()  # a broken connection: the next try opens a fresh one
            except peewee.PeeweeException:
                pass
            raise classify_error(exc) from exc
        _checked.add(db)
    return db


def use_database(
    target: str | peewee.Database | None = None, *, create: bool = True
) -> peewee.Database:
    """Make ``target`` (URL, Database, or None for the configured default) current.

    ``create=False`` (commands that only read) refuses, with NoDatabase, a database that
    does not exist or has no jobtui tables, instead of creating it."""
    global _current, _current_url
    with _lock:
        if isinstance(target, peewee.Database):
            db, url = target, None
        else:
            url = resolve_database_url(target)
            db = _by_url.get(url)
            if db is None:
                db = open_database(url, create_dirs=(url == default_database_url()),
                                   create=create)  # fmt: skip
                _by_url[url] = db
        _prepare(db, url, create)
        database_proxy.initialize(db)
        _current, _current_url = db, url
        return db


def get_database(target: str | peewee.Database | None = None) -> peewee.Database:
    """The database to use for an operation: ``target`` if given, else the current one."""
    if target is None:
        return _current if _current is not None else use_database(None)
    if isinstance(target, peewee.Database):
        return target if target in _checked else _prepare(target, None)
    return use_database(target) if target != _current_url else _current  # type: ignore[return-value]


def trust_database(db: peewee.Database) -> None:
    """Take ``db`` as checked: its owner verified the schema (a borrowed connection,
    borrowed.py, which must never be connected or migrated from here)."""
    _checked.add(db)


def current_url() -> str | None:
    return _current_url


def close_database() -> None:
    """Close this thread's connection to the current database (the process keeps it bound)."""
    if _current is not None and not _current.is_closed():
        _current.close()


def reset() -> None:
    """Forget every database (tests, and the console switching databases)."""
    global _current, _current_url
    with _lock:
        for db in list(_by_url.values()):
            try:
                db.close()
            except peewee.PeeweeException:
                pass
        _by_url.clear()
        _checked.clear()
        _current = _current_url = None


def classify_error(exc: BaseException) -> StoreError:
    """A StoreError naming what went wrong, looking through ``__context__`` (fact 6)."""
    seen: BaseException | None = exc
    messages: list[str] = []
    uncertain = False
    while seen is not None:
        messages.append(str(seen).strip())
        uncertain = uncertain or bool(getattr(seen, MAY_HAVE_COMMITTED, False))
        seen = seen.__cause__ or seen.__context__
    text = " / ".join(dict.fromkeys(m for m in messages if m))  # a cause often repeats it
    lowered = text.lower()
    if "database or disk is full" in lowered or "no space left" in lowered:
        return DiskFull()  # said once: the rollback errors it causes add nothing
    if "locked" in lowered or "busy" in lowered:
        return StoreError(f"database is locked: {text}")
    if uncertain:
        return CommitUncertain(f"database connection lost during a write ({text}): it may or "
                               "may not have been written; check before doing it again")  # fmt: skip
    if "connection" in lowered or "server closed" in lowered or "could not connect" in lowered:
        return ConnectionLost(f"database connection lost: {text}")
    return StoreError(text or type(exc).__name__)


def api_call(*, read: bool) -> Callable[[F], F]:
    """Make an API function raise only jobtui's errors and survive a lost connection.

    The broken connection itself is replaced before the next statement (models/db.py),
    so the next call works; what is left is the call in flight when it died. A read is
    run once more, on a fresh connection. A write is not: one that may have committed
    raises CommitUncertain (the caller must look before doing it again), one that
    certainly did not (its transaction died with the connection) ConnectionLost.
    """

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except (peewee.PeeweeException, StoreError) as exc:
                error = exc if isinstance(exc, StoreError) else classify_error(exc)
                if not read or not isinstance(error, ConnectionLost):
                    if error is exc:
                        raise
                    raise error from exc
                log.warning("%s; reading again on a new connection", error)
            try:
                return fn(*args, **kwargs)
            except peewee.PeeweeException as exc:
                raise classify_error(exc) from exc

        return call  # type: ignore[return-value]

    return decorate


class translated_errors:  # noqa: N801 - used as ``with translated_errors(...)``
    """Turn the driver's errors raised in the block into jobtui's (a context manager's
    share of ``api_call``: ``batch``). Exceptions listed in ``passing`` (the block's
    own, raised by the caller's code) go through untouched."""

    def __init__(self, passing: list[BaseException] | None = None) -> None:
        self.passing = passing if passing is not None else []

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> bool:
        if isinstance(exc, peewee.PeeweeException) and not any(exc is p for p in self.passing):
            raise classify_error(exc) from exc
        return False


def _after_fork_in_child() -> None:
    for db in list(_by_url.values()) + ([_current] if _current is not None else []):
        db.dispose()


os.register_at_fork(after_in_child=_after_fork_in_child)
