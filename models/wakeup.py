"""Waking idle supervisors when jobs are enqueued, so they need not poll fast.

SQLite: each supervisor binds a UNIX datagram socket in a folder beside the database file
(``jobs.db.wake/``); after a commit, ``poke`` sends one byte to each socket there. A
datagram to a socket nobody reads is dropped by the kernel, never blocks the sender.
PostgreSQL: ``NOTIFY jobtui_wake``, which supervisors LISTEN for on any host; it is sent
by the enqueue's own INSERT statement (``Dialect.insert_rows``), so ``poke`` has nothing
to do there.
The supervisors' slow safety poll covers anything lost.
"""

from __future__ import annotations

import errno
import os
import socket

import peewee

from .db import is_sqlite

CHANNEL = "jobtui_wake"
#: Sent by every transaction that ends jobs, for processes waiting on them (ended.py).
ENDED_CHANNEL = "jobtui_ended"
#: The payload that tells supervisors a live-stack request waits (stacks.py).
STACK_WAKE = "stack"

_sender: socket.socket | None = None
_listing: dict[str, tuple[float, list[str]]] = {}


def wake_dir(db: peewee.Database) -> str | None:
    """The folder of wake sockets for a SQLite file database, None otherwise."""
    if not is_sqlite(db):
        return None
    path = db.database if not isinstance(db, peewee.DatabaseProxy) else db.obj.database
    if not path or path == ":memory:" or str(path).startswith("file:"):
        return None
    return os.path.abspath(path) + ".wake"


def _sockets(folder: str) -> list[str]:
    try:
        mtime = os.stat(folder).st_mtime
    except FileNotFoundError:
        return []
    cached = _listing.get(folder)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    names = [os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".sock")]
    _listing[folder] = (mtime, names)
    return names


def poke(db: peewee.Database, due: str | None = None) -> None:
    """Tell the supervisors of ``db`` that new work is there (best effort, never raises).

    ``due`` (a SQL timestamp, UTC) says the earliest of the new jobs is due only then: the
    supervisors set a timer for that moment instead of waiting for their safety poll.
    """
    global _sender
    payload = due or "!"
    if not is_sqlite(db):
        return  # PostgreSQL: the NOTIFY went with the INSERT (dialect.insert_rows)
    try:
        folder = wake_dir(db)
        if folder is None:
            return
        targets = _sockets(folder)
        if not targets:
            return
        if _sender is None:
            _sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            _sender.setblocking(False)
        for target in targets:
            try:
                _sender.sendto(payload.encode(), target)
            except OSError as exc:
                if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT, errno.EAGAIN):
                    raise
    except (OSError, peewee.PeeweeException):
        pass  # a lost wake-up costs at most one safety-poll interval


def _reset_after_fork() -> None:
    global _sender
    _sender = None  # never share a socket object with the parent


os.register_at_fork(after_in_child=_reset_after_fork)
