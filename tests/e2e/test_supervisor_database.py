"""Database trouble: another process holds SQLite's write lock for seconds while jobs finish
and run. The supervisors log it, keep going, never reap a healthy job because nobody could
write a heartbeat, and afterwards every job has completed exactly once."""

from __future__ import annotations

import sqlite3
import time

import pytest
from supervisor_harness import TASKS, wait_until

import jobtui

pytestmark = pytest.mark.timeout(90)

HOLD_S = 3.0


def test_sqlite_write_lock_held_by_another_process(sqlite_cluster):
    cluster = sqlite_cluster
    # Each supervisor serves a queue of its own (so which runs what is known); each one's
    # reaper still watches the other's running jobs.
    sups = [cluster.start("--queue", name, name=name) for name in ("a", "b")]
    during = [jobtui.enqueue(f"{TASKS}.gated", args=["during"], queue=q) for q in "aabb"]
    for handle in during:
        cluster.wait_started(handle.id)
    after = [jobtui.enqueue(f"{TASKS}.gated", args=["after"], queue=q) for q in "aabb"]
    cluster.wait_status([j.id for j in after], ["running"])  # prefetched behind "during"

    lock = sqlite3.connect(cluster.db_url.split("sqlite:///", 1)[1], isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    held = time.monotonic()
    try:
        cluster.open_gate("during")  # they finish; their outcomes cannot be written

        def held_long_enough() -> bool:
            ran = all(cluster.execlog.events(j.id, "end") for j in during)
            started = all(cluster.execlog.started(j.id) for j in after)
            logged = all("database trouble" in s.log() for s in sups)
            return ran and started and logged and time.monotonic() - held >= HOLD_S

        wait_until(held_long_enough, HOLD_S + 10, "jobs run and trouble logged under the lock",
                   explain=cluster.logs)  # fmt: skip
        marks = ",".join("?" * len(during))
        rows = lock.execute(
            f"SELECT status FROM jobs WHERE id IN ({marks})", [j.id for j in during]
        )
        statuses = {status for (status,) in rows}
        assert statuses == {"running"}  # nothing could be written
    finally:
        lock.execute("ROLLBACK")
        lock.close()

    cluster.wait_status([j.id for j in during], ["completed"])
    cluster.open_gate("after")  # these ran through the lock: their leases must still hold
    cluster.wait_status([j.id for j in after], ["completed"])
    assert all(s.alive() for s in sups)
    rows = cluster.check()
    assert all(rows[j.id].attempt == 1 for j in (*during, *after))
