"""Wake-ups for code that waits on jobs to end (``wait``, ``jobtui.aio.wait``/``watch``).

On PostgreSQL every transaction that ends or retries jobs sends ``NOTIFY jobtui_ended``:
the rollup's upsert carries it (``rollup.upsert_rows``), and every way a job ends writes
the rollup, so no path is missed and no extra round trip is paid. PostgreSQL delivers it
at commit and folds identical notifications of one transaction into one.

A waiting process keeps one LISTEN connection for all its waiters, on a daemon thread
(``EndedListener``): each notification bumps a generation number and wakes every waiter,
which then reads its own job's row. Waiters keep their polling interval as an upper bound,
so a lost notification (or SQLite, which has none, or a connection that cannot be opened)
costs latency, never correctness.
"""

from __future__ import annotations

import logging
import select
import threading

import peewee

from .db import is_sqlite
from .wakeup import ENDED_CHANNEL

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    import asyncio
    from typing import Any

log = logging.getLogger(__name__)

RECONNECT_DELAY_S = 2.0


class EndedListener:
    """One LISTEN connection per database per process, read by a daemon thread."""

    def __init__(self, db: peewee.Database) -> None:
        self.params = dict(db.connect_params)
        self.dbname = db.database
        self.cond = threading.Condition()
        self.generation = 0
        self.subscribers: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self.listening = False
        self.thread = threading.Thread(target=self._run, name="jobtui-ended", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import psycopg2

        while True:
            conn = None
            try:
                conn = psycopg2.connect(dbname=self.dbname, **self.params)
                conn.autocommit = True
                with conn.cursor() as cur:
                    cur.execute(f"LISTEN {ENDED_CHANNEL}")
                self.listening = True
                while True:
                    readable, _, _ = select.select([conn], [], [], 30.0)
                    conn.poll()
                    if conn.notifies:
                        conn.notifies.clear()
                        self._wake()
                    elif not readable:
                        with conn.cursor() as cur:  # a quiet minute: is the server there?
                            cur.execute("SELECT 1")
            except Exception as exc:  # noqa: BLE001 - wake-ups are an optimisation
                log.debug("job-end wake-ups paused (waiters poll): %s", exc)
            finally:
                self.listening = False
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:  # noqa: BLE001 - already broken
                        pass
            self._wake()  # whatever ended meanwhile: waiters look again
            threading.Event().wait(RECONNECT_DELAY_S)

    def _wake(self) -> None:
        with self.cond:
            self.generation += 1
            self.cond.notify_all()
            subscribers = list(self.subscribers)
        for loop, event in subscribers:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop is closed
                self.unsubscribe(loop, event)

    def wait(self, generation: int, timeout_s: float) -> int:
        """Block until a job-end notification after ``generation``, or ``timeout_s``;
        returns the generation now."""
        with self.cond:
            if self.generation == generation:
                self.cond.wait(timeout_s)
            return self.generation

    def subscribe(self, loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
        with self.cond:
            self.subscribers.add((loop, event))

    def unsubscribe(self, loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
        with self.cond:
            self.subscribers.discard((loop, event))


_listeners: dict[tuple[Any, ...], EndedListener] = {}
_lock = threading.Lock()


def ended_listener(db: peewee.Database) -> EndedListener | None:
    """The process's listener for ``db`` (started on first use); None where there are no
    job-end notifications (SQLite, another driver): the waiter just polls."""
    if isinstance(db, peewee.DatabaseProxy):
        db = db.obj
    if db is None or is_sqlite(db) or not isinstance(db, peewee.PostgresqlDatabase):
        return None
    try:
        import psycopg2  # noqa: F401 - the listener's driver
    except ImportError:
        return None
    key = (db.database, tuple(sorted((k, str(v)) for k, v in db.connect_params.items())))
    with _lock:
        listener = _listeners.get(key)
        if listener is None:
            listener = _listeners[key] = EndedListener(db)
        return listener


def listener_for(database: Any) -> EndedListener | None:
    """``ended_listener`` for what an API call names (None: the configured database, or a
    URL, or a Database); None when it cannot be had now (an unreachable database: the
    waiter's own read reports that, and its polling goes on)."""
    from .store import get_database

    try:
        return ended_listener(get_database(database))
    except Exception:  # noqa: BLE001 - wake-ups are an optimisation
        return None
