"""Helpers of the integration tests: the application's URL for a jobtui test database,
a catalog row as a supervisor publishes it, and a watch on the supervisors' wake-up
channel (the SQLite wake socket folder, PostgreSQL's LISTEN) to see when a poke is sent."""

from __future__ import annotations

import os
import select
import socket
import uuid

from jobtui.models.catalog import catalog_row, publish_tasks
from jobtui.models.dialect import dialect_for
from jobtui.models.wakeup import CHANNEL


def sqlalchemy_url(db_url: str, driver: str) -> str:
    """``db_url`` for SQLAlchemy with ``driver`` (pysqlite, aiosqlite, psycopg2, psycopg)."""
    scheme, rest = db_url.split("://", 1)
    if scheme == "sqlite":
        return ("sqlite+aiosqlite://" if driver == "aiosqlite" else "sqlite://") + rest
    return f"postgresql+{driver}://{rest}"


def publish(db, task_name: str, **defaults) -> None:
    """What a supervisor that registered ``task_name`` with ``defaults`` publishes."""
    with dialect_for(db).write_transaction(db):
        publish_tasks(db, "sup-test", "host", [catalog_row(task_name, defaults, "m")])


class WakeWatch:
    """Receives the wake-ups sent to the supervisors of a database, as one would."""

    def __init__(self, db_url: str) -> None:
        self.sqlite = db_url.startswith("sqlite")
        if self.sqlite:
            folder = db_url.split("://", 1)[1][1:] + ".wake"
            os.makedirs(folder, exist_ok=True)
            self.path = os.path.join(folder, f"watch-{uuid.uuid4().hex[:8]}.sock")
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.sock.bind(self.path)
            self.sock.setblocking(False)
        else:
            import psycopg2

            self.conn = psycopg2.connect(db_url)
            self.conn.autocommit = True
            self.conn.cursor().execute(f"LISTEN {CHANNEL}")

    def _fileno(self) -> int:
        return self.sock.fileno() if self.sqlite else self.conn.fileno()

    def received(self, timeout: float = 0.0) -> list[str]:
        """The wake-ups that arrived, waiting up to ``timeout`` for the first one."""
        select.select([self._fileno()], [], [], timeout)
        if self.sqlite:
            out = []
            while True:
                try:
                    out.append(self.sock.recv(256).decode())
                except BlockingIOError:
                    return out
        self.conn.poll()
        out = [n.payload for n in self.conn.notifies]
        self.conn.notifies.clear()
        return out

    def close(self) -> None:
        if self.sqlite:
            self.sock.close()
            os.unlink(self.path)
        else:
            self.conn.close()
