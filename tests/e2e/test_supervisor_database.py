"""Database trouble: another process holds SQLite's write lock for seconds while jobs finish
and run. The supervisors log it, keep going, never reap a healthy job because nobody could
write a heartbeat, and afterwards every job has completed exactly once."""

from __future__ import annotations

import sqlite3
import time

import psutil
import pytest
from supervisor_harness import TASKS, gone, never, wait_until
from supervisor_history import job

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


def test_a_postgresql_row_lock_held_elsewhere_never_stalls_the_loop(cluster):
    if not cluster.db_url.startswith("postgres"):
        pytest.skip("PostgreSQL row locks (SQLite's write lock: the test above)")
    import psycopg2

    from jobtui.models import store

    sup = cluster.start(workers=2)
    held = jobtui.enqueue(f"{TASKS}.gated", args=["held"])
    cluster.wait_started(held.id)
    sleeper = jobtui.enqueue(f"{TASKS}.sleeper")  # 1 s timeout
    cluster.fault(sleeper.id, "timed out")
    sleeping = cluster.wait_started(sleeper.id)
    db = store.get_database()
    lock = psycopg2.connect(dbname=db.database, **db.connect_params)
    try:
        with lock.cursor() as cur:  # an application's long transaction holding a job row
            cur.execute("SELECT 1 FROM jobs WHERE id = %s FOR UPDATE", (held.id,))
        cluster.open_gate("held")  # its outcome now waits for the row: the turn fails, retried
        wait_until(lambda: gone(sleeping.pid), 10, "the sleeper killed by its timeout",
                   explain=cluster.logs)  # fmt: skip
        wait_until(lambda: "database trouble" in sup.log(), 10, "the lock logged")
    finally:
        lock.rollback()
        lock.close()
    rows = cluster.wait_status([held.id, sleeper.id])
    assert rows[held.id].status == "completed"
    assert (rows[sleeper.id].status, rows[sleeper.id].error_message) == (
        "failed", "timed out after 1 s")  # fmt: skip


def test_postgresql_connections_cut_under_the_supervisor_are_reopened(cluster):
    """What a PostgreSQL restart does to a running supervisor: every connection it holds
    (the loop's and the LISTEN one) is cut. It reconnects and carries on; nothing is lost."""
    if not cluster.db_url.startswith("postgres"):
        pytest.skip("PostgreSQL connections (SQLite has none to lose)")
    from jobtui.models import store

    sup = cluster.start("--poll-interval", "0.3", workers=2)
    held = jobtui.enqueue(f"{TASKS}.gated", args=["cut"])
    cluster.wait_started(held.id)
    db = store.get_database()
    cut = db.execute_sql(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    ).fetchone()[0]
    assert cut >= 2  # the supervisor's loop and its LISTEN connection at least
    cluster.open_gate("cut")
    later = [jobtui.enqueue(f"{TASKS}.quick", args=[n]) for n in range(5)]
    rows = cluster.wait_status([held.id, *(j.id for j in later)], timeout=30)
    assert {row.status for row in rows.values()} == {"completed"}
    assert sup.alive(), sup.log()
    log = sup.log()
    # it did see the cut: in flight ("database trouble (database connection lost ..."), or
    # while idle, the connection then replaced before its next statement (models/db.py)
    assert "database connection lost" in log
    assert "supervisor loop error" not in log, log  # and handled it, not by the last resort
    assert [jobtui.wait(j.id, timeout=5)["value"] for j in later] == list(range(5))


def test_a_supervisor_started_under_a_held_write_lock_waits_it_out(sqlite_cluster):
    """Registering is the start's one write: a lock held elsewhere for a while (a busy or
    stopped writer) is waited out with backoff, not reported as a failed start."""
    cluster = sqlite_cluster
    jobtui.enqueue(f"{TASKS}.quick", args=[0])  # the schema exists: only the lock is in the way
    lock = sqlite3.connect(cluster.db_url.split("sqlite:///", 1)[1], isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    try:
        sup = cluster.start(name="patient", wait=False)

        def opened_the_database() -> bool:
            try:
                files = psutil.Process(sup.pid).open_files()
            except psutil.NoSuchProcess:
                return True
            return not sup.alive() or any(f.path.endswith("jobs.db") for f in files)

        wait_until(opened_the_database, 15, "the supervisor opened the database")
        # held for four times the loop's 250 ms lock wait: long enough to give up, once
        never(lambda: not sup.alive(), 1.0, "the supervisor gave up under the lock")
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    cluster.wait_ready(sup)
    follow = jobtui.enqueue(f"{TASKS}.quick", args=[5])
    assert jobtui.wait(follow.id, timeout=10)["value"] == 5
    cluster.check()


def test_a_row_lock_on_one_outcome_never_costs_the_other_jobs_their_leases(cluster):
    """PostgreSQL: an application's transaction holds the row of a job that just finished,
    so every group commit carrying its outcome waits and fails, for twice the lease. The
    supervisor's heartbeats go on in their own transaction meanwhile: another supervisor
    watching must not take its other, healthy running job away."""
    if cluster.is_sqlite:
        pytest.skip("PostgreSQL row locks (SQLite's write lock: test_sqlite_write_lock_held...)")
    import psycopg2

    sup = cluster.start("--queue", "mine", name="locked")
    cluster.start("--queue", "other", name="watcher")
    held = jobtui.enqueue(f"{TASKS}.gated", args=["held"], queue="mine")
    healthy = jobtui.enqueue(f"{TASKS}.gated", args=["healthy"], queue="mine")
    cluster.wait_started(held.id)
    cluster.wait_started(healthy.id)
    lock = psycopg2.connect(cluster.db_url)
    try:
        with lock.cursor() as cur:
            cur.execute("SELECT 1 FROM jobs WHERE id = %s FOR UPDATE", (held.id,))
        cluster.open_gate("held")  # its outcome now waits for the row
        wait_until(lambda: "database trouble" in sup.log(), 10, "the lock met", explain=sup.log)
        never(lambda: job(healthy.id).attempt > 1 or job(healthy.id).status != "running",
              3.0, "the healthy job taken over while one outcome waited on a lock")  # fmt: skip
    finally:
        lock.rollback()
        lock.close()
    cluster.open_gate("healthy")
    rows = cluster.wait_status([held.id, healthy.id])
    assert {rows[j].status for j in rows} == {"completed"}
    # the held one too: its outcome waited, its owner lived, so no reaper re-ran it
    assert rows[healthy.id].attempt == rows[held.id].attempt == 1
    cluster.check()


def test_a_connection_cut_as_the_supervisor_starts_is_reopened(db, db_url, monkeypatch):
    """PostgreSQL restarting just after the supervisor connected, before its first
    statement (its session settings): the start reconnects and registers, it does not
    end with a traceback. (Found by the chaos soak.)"""
    if not db_url.startswith("postgres"):
        pytest.skip("PostgreSQL connections (SQLite has none to lose)")
    import psycopg2

    from jobtui.models import Supervisor as SupervisorRow
    from jobtui.models import store
    from jobtui.registry import Task, TaskRegistry
    from jobtui.supervisor import startup
    from jobtui.supervisor.config import SupervisorConfig, WorkerGroup

    opened = []

    def open_then_cut(url):
        opened.append(store.use_database(url))
        server_pid = opened[-1].execute_sql("SELECT pg_backend_pid()").fetchone()[0]
        cutter = psycopg2.connect(db_url)
        cutter.autocommit = True
        cutter.cursor().execute("SELECT pg_terminate_backend(%s)", (server_pid,))
        cutter.close()
        return opened[-1]

    monkeypatch.setattr(startup, "use_database", open_then_cut)
    registry = TaskRegistry()
    registry.register(Task(func=lambda: None, name="cut.noop"))
    config = SupervisorConfig(imports=(), groups=(WorkerGroup(None, 1),), name="cut-at-start",
                              database_url=db_url)  # fmt: skip
    started, wake = startup.open_and_register(config, registry)
    assert wake is None and opened == [started]
    assert SupervisorRow.get(SupervisorRow.name == "cut-at-start").state == "running"
    assert started.execute_sql("SHOW lock_timeout").fetchone()[0] == "250ms"


def test_the_claim_connection_cut_mid_drain_loses_and_repeats_nothing(cluster):
    """PostgreSQL: a plain claim runs on a second connection, beside the turn's writes
    (supervisor/parallel_claim.py). Cut that connection again and again during a drain: the
    supervisor reopens it (or claims in its turn meanwhile), every job completes, and the
    history checker finds none lost and none run twice at once."""
    if not cluster.db_url.startswith("postgres"):
        pytest.skip("PostgreSQL connections (SQLite has none to lose)")
    from jobtui.models import store
    from jobtui.supervisor.parallel_claim import APPLICATION_NAME

    sup = cluster.start(workers=2)
    jobs = jobtui.enqueue_many(f"{TASKS}.quick", [{"args": [n]} for n in range(10_000)])
    db = store.get_database()
    cut_sql = ("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
               f" WHERE datname = current_database() AND application_name = '{APPLICATION_NAME}'")  # fmt: skip
    cuts = 0
    for _ in range(3):
        cuts += wait_until(lambda: db.execute_sql(cut_sql).fetchone()[0], 30,
                           "a claim connection to cut")  # fmt: skip
    assert cuts >= 3
    rows = cluster.wait_status([j.id for j in jobs], timeout=120)
    assert {row.status for row in rows.values()} == {"completed"}
    assert sup.alive(), sup.log()
    assert "claim connection" in sup.log()  # it saw the cuts, and said so
    cluster.check()
