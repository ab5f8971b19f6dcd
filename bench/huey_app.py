"""huey's SqliteHuey for bench/supervisor.py, at jobtui's durability: WAL and
synchronous=NORMAL (huey's own options give only FULL or OFF).

Two no-op tasks: ``stamp`` returns the time it started (huey stores a result row per job),
``noop`` returns None (huey stores nothing) and appends its start time to a file of its
worker process's own (one ``write`` call), so its drain can be timed without results."""

import os
import time

from huey import SqliteHuey
from huey.storage import SqliteStorage


class NormalSyncStorage(SqliteStorage):
    def _create_connection(self):
        conn = super()._create_connection()
        conn.execute("pragma synchronous=1")
        return conn


huey = SqliteHuey(
    "bench",
    filename=os.environ.get("BENCH_HUEY_DB", "/tmp/bench-huey.db"),
    journal_mode="wal",
    storage_class=NormalSyncStorage,
)


@huey.task()
def stamp() -> float:
    return time.time()


_starts: list = []  # [fd] of this worker process's file of start times


@huey.task()
def noop() -> None:
    if not _starts or _starts[0][0] != os.getpid():  # first call in this (forked) worker
        folder = os.environ["BENCH_HUEY_STARTS"]
        path = os.path.join(folder, f"{os.getpid()}.txt")
        _starts[:] = [(os.getpid(), os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND))]
    os.write(_starts[0][1], b"%.6f\n" % time.time())
