"""The supervisor's end of the wake-ups ``jobtui.models.wakeup.poke`` sends.

SQLite: a UNIX datagram socket in the folder beside the database file. PostgreSQL: a
LISTEN on its own connection (never inherited by a worker: closed around every fork).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket

import peewee

from jobtui.models.scaling import SCALE_WAKE
from jobtui.models.wakeup import CHANNEL, STACK_WAKE, wake_dir

from .logline import first_line

log = logging.getLogger(__name__)


def _remove_dead_sockets(folder: str) -> None:
    """Sockets left by supervisors that were killed: every enqueue would otherwise keep
    sending to them (one refused datagram each)."""
    for name in os.listdir(folder):
        stem = name.removesuffix(".sock")
        if stem == name or not stem.isdigit() or int(stem) == os.getpid():
            continue
        try:
            os.kill(int(stem), 0)
        except ProcessLookupError:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(folder, name))
        except OSError:
            pass  # alive, someone else's


class WakeListener:
    """Readable when somebody enqueued; ``drain`` empties it. ``fileno`` None: none."""

    def __init__(self, db: peewee.Database, name: str) -> None:
        self.db = db
        self.name = name
        self.sock: socket.socket | None = None
        self.path: str | None = None
        self.pg = None
        self.pg_fd: int | None = None
        self.due: list[str] = []
        self.scale_wanted = False  # a ``jobtui scale`` request is waiting (scaling.py)
        self.stack_wanted = False  # a wake-up said a stack request waits (stacks.py)
        self.pg_outage = False  # the LISTEN connection failed to open: said once, not per try
        self.open()

    def open(self) -> None:
        folder = wake_dir(self.db)
        if folder is not None:
            try:
                self._bind(folder)
            except OSError as exc:  # a path over 107 bytes, a folder we may not write
                log.warning("no wake-up socket beside the database (polling only): %s", exc)
                with contextlib.suppress(OSError):
                    self.close()
                self.sock = self.path = None
        elif isinstance(self.db, peewee.PostgresqlDatabase):
            self.open_pg()

    def _bind(self, folder: str) -> None:
        os.makedirs(folder, exist_ok=True)
        self.path = os.path.join(folder, f"{os.getpid()}.sock")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setblocking(False)
        _remove_dead_sockets(folder)
        os.utime(folder)  # invalidate enqueuers' cached listing at once

    def open_pg(self) -> None:
        try:
            import psycopg2

            self.pg = psycopg2.connect(dbname=self.db.database, **self.db.connect_params)
            self.pg.autocommit = True
            with self.pg.cursor() as cur:
                cur.execute(f"LISTEN {CHANNEL}")
            self.pg_fd = self.pg.fileno()
        except Exception as exc:  # noqa: BLE001 - wake-ups are an optimisation; polling remains
            # Retried at every safety poll: one line per outage, not one a second.
            if not self.pg_outage:
                log.warning("no PostgreSQL wake-ups (polling only until the server answers): %s",
                            first_line(exc))  # fmt: skip
            self.pg_outage = True
            self.close_pg()
            return
        if self.pg_outage:
            log.warning("PostgreSQL wake-ups restored")
            self.pg_outage = False

    def fileno(self) -> int | None:
        if self.sock is not None:
            return self.sock.fileno()
        if self.pg is not None:
            return self.pg_fd  # as registered: a connection the server cut has none left
        return None

    def drain(self) -> bool:
        """Empty the wake-ups; False when the PostgreSQL connection was lost. The due times
        announced (of jobs due later) are kept for ``take_due``."""
        if self.sock is not None:
            try:
                while payload := self.sock.recv(64):
                    self._note(payload.decode("ascii", "replace"))
            except (BlockingIOError, InterruptedError):
                pass
        elif self.pg is not None:
            try:
                self.pg.poll()
                for notify in self.pg.notifies:
                    self._note(notify.payload)
                self.pg.notifies.clear()
            except Exception as exc:  # noqa: BLE001 - reconnected on the next safety poll
                log.warning("PostgreSQL wake-up connection lost: %s", exc)
                return False
        return True

    def _note(self, payload: str) -> None:
        if payload == SCALE_WAKE:
            self.scale_wanted = True
        elif payload == STACK_WAKE:
            self.stack_wanted = True  # a live stack was asked for (models/stacks.py)
        elif payload and payload != "!":
            self.due.append(payload)

    def take_due(self) -> list[str]:
        """The due times announced since the last call (SQL timestamps, UTC)."""
        due, self.due = self.due, []
        return due

    def close_pg(self) -> None:
        if self.pg is not None:
            with contextlib.suppress(Exception):
                self.pg.close()
            self.pg = None
            self.pg_fd = None

    def close_in_child(self) -> None:
        """In a forked worker: drop the socket without unlinking the parent's path."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
            if self.path:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)
        self.close_pg()
