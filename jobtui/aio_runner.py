"""The threads ``jobtui.aio`` runs the sync API on, so the event loop never blocks.

Why threads and not an async driver: every jobtui write goes through one set of SQL
(enqueue's catalog defaults and unique keys, fenced claims and outcomes, batches); running
those same functions on a few threads, each holding its own connection (Peewee keeps one
per thread), keeps a single code path and a single driver. The loop only awaits futures.

Each thread keeps its connection open between calls, and after a database restart it must
not fail the application's next calls (RELIABILITY.md, "Learned while building"). A lost
connection is dropped on the thread that saw it, so the next call reconnects; a read is
retried once at once. A write is never retried (its COMMIT may have landed); instead, on
PostgreSQL, a connection idle for ``IDLE_PING_S`` is checked with ``SELECT 1`` before a
write runs on it, which absorbs a restart that happened while the application was idle.
Driver errors leave as jobtui's own (``StoreError`` and its subclasses), as the sync API's.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import os
import queue
import threading
import time
from collections.abc import Callable

import peewee

from jobtui.models.db import is_sqlite
from jobtui.models.errors import ConnectionLost, JobtuiError
from jobtui.models.store import classify_error, get_database

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeVar

    T = TypeVar("T")

ENV_THREADS = "JOBTUI_AIO_THREADS"
DEFAULT_THREADS = 4
IDLE_PING_S = 1.0

_STOP = object()


def _drop_connection(db: peewee.Database) -> None:
    """Forget this thread's (broken) connection so the next statement opens a new one."""
    try:
        if db.in_transaction():
            db._state.reset()  # a dead connection cannot roll back; Peewee's state can go
        else:
            db.close()
    except Exception:  # noqa: BLE001 - the connection is already broken; only forget it
        db._state.reset()


def _is_lost(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionLost):
        return True
    if isinstance(exc, peewee.InterfaceError):
        return True
    return isinstance(exc, peewee.OperationalError) and isinstance(
        classify_error(exc), ConnectionLost
    )


def _ping_if_idle(db: peewee.Database, idle_s: float) -> None:
    """Before a write on a PostgreSQL connection idle for a while: drop it if it died."""
    if idle_s < IDLE_PING_S or is_sqlite(db) or db.is_closed() or db.in_transaction():
        return
    try:
        db.execute_sql("SELECT 1")
    except peewee.PeeweeException:
        _drop_connection(db)  # the write itself then opens a fresh one


def call_in_thread(
    database: Any, fn: Callable[..., T], args: tuple, kwargs: dict, *, read: bool
) -> T:
    """Run ``fn`` on the calling (worker) thread with jobtui's error rules."""
    for last_try in (not read, True):
        try:
            return fn(*args, **kwargs)
        except (JobtuiError, peewee.PeeweeException) as exc:
            if not _is_lost(exc):
                if isinstance(exc, JobtuiError):
                    raise
                raise classify_error(exc) from exc
            try:
                _drop_connection(get_database(database))
            except JobtuiError:
                pass
            if last_try:
                if isinstance(exc, JobtuiError):
                    raise
                raise classify_error(exc) from exc
    raise AssertionError("unreachable")


class Runner:
    """A few daemon threads taking calls from one queue; each closes its connections when
    stopped. Own threads (not ThreadPoolExecutor) so that closing happens on the thread
    that opened them, as Peewee requires."""

    def __init__(self, threads: int) -> None:
        self.threads = max(1, threads)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._workers: list[threading.Thread] = []
        self._lock = threading.Lock()

    def _start(self) -> None:
        with self._lock:
            if self._workers:
                return
            for n in range(self.threads):
                thread = threading.Thread(target=self._serve, name=f"jobtui-aio-{n}", daemon=True)
                thread.start()
                self._workers.append(thread)

    def _serve(self) -> None:
        used: dict[peewee.Database, float] = {}  # its connections, and their last use
        while True:
            item = self._queue.get()
            if item is _STOP:
                break
            future, ctx, database, fn, args, kwargs, read = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                db = get_database(database)
                now = time.monotonic()
                if not read:
                    _ping_if_idle(db, now - used.get(db, now))
                used[db] = now
                result = ctx.run(call_in_thread, database, fn, args, kwargs, read=read)
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
                future.set_exception(exc)
            else:
                future.set_result(result)
        for db in used:
            try:
                db.close()
            except Exception:  # noqa: BLE001 - closing at shutdown is best effort
                db._state.reset()

    def submit(
        self, database: Any, fn: Callable[..., T], args: tuple, kwargs: dict, read: bool
    ) -> concurrent.futures.Future[T]:
        self._start()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        ctx = contextvars.copy_context()
        ctx.run(_leave_sync_batch)
        self._queue.put((future, ctx, database, fn, args, kwargs, read))
        return future

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop the threads after the calls queued before, closing their connections."""
        with self._lock:
            workers, self._workers = self._workers, []
            for _ in workers:
                self._queue.put(_STOP)
        for thread in workers:
            thread.join(timeout)


def _leave_sync_batch() -> None:
    """A sync ``with batch()`` of the calling thread holds its transaction there: a call on
    a worker thread cannot join it (only ``async with jobtui.aio.batch`` can)."""
    from jobtui.batching import _current

    _current.set(None)


_runner: Runner | None = None
_runner_lock = threading.Lock()


def runner() -> Runner:
    global _runner
    with _runner_lock:
        if _runner is None:
            _runner = Runner(int(os.environ.get(ENV_THREADS) or DEFAULT_THREADS))
        return _runner


def stop_runner() -> None:
    """Stop the threads and close their connections (tests; an application's shutdown)."""
    global _runner
    with _runner_lock:
        current, _runner = _runner, None
    if current is not None:
        current.stop()


async def run(
    database: Any, fn: Callable[..., T], /, *args: Any, read: bool = False, **kwargs: Any
) -> T:
    """Await ``fn(*args, **kwargs)`` run on a jobtui thread."""
    return await asyncio.wrap_future(runner().submit(database, fn, args, kwargs, read))


def _after_fork_in_child() -> None:
    global _runner
    _runner = None  # the parent's threads do not exist here


os.register_at_fork(after_in_child=_after_fork_in_child)
