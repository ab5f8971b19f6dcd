"""huey's SqliteHuey for bench/supervisor.py, at jobtui's durability: WAL and
synchronous=NORMAL (huey's own options give only FULL or OFF)."""

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
