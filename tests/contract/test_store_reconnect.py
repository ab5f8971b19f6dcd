"""The Python API across a lost connection, on both engines.

A long-lived application holds its connection across database restarts: every API call
made after the connection was cut must reconnect and work, and raise only jobtui's own
errors. PostgreSQL: ``pg_terminate_backend`` (what a restart does to each session).
SQLite: the connection handle closed under Peewee. A read in flight when the connection
dies is read again; a write that may have committed is not retried (CommitUncertain).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import peewee
import pytest

import jobtui
from jobtui.batching import batch
from jobtui.models import Job, claim_jobs, complete_job, fail_job
from jobtui.models.errors import CommitUncertain, JobtuiError

pytestmark = pytest.mark.timeout(60)

#: The server's admin database (tests/conftest.py's; ``conftest`` is not importable by name
#: when tests/e2e is collected too).
PG_ADMIN_DSN = os.environ.get("JOBTUI_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_connect(dsn: str):
    import psycopg2

    return psycopg2.connect(dsn, connect_timeout=3)


def _wait_until(predicate: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    give_up = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > give_up:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _admin():
    conn = _pg_connect(PG_ADMIN_DSN)
    conn.autocommit = True
    return conn


def _backends(admin, name: str) -> list[tuple[int, str]]:
    with admin.cursor() as cur:
        cur.execute("SELECT pid, wait_event_type FROM pg_stat_activity WHERE datname = %s",
                    (name,))  # fmt: skip
        return [(pid, kind or "") for pid, kind in cur.fetchall()]


def _terminate(admin, name: str, pids: list[int] | None = None) -> None:
    """End the database's sessions (or ``pids``) and wait until they are gone."""
    pids = pids if pids is not None else [pid for pid, _ in _backends(admin, name)]
    with admin.cursor() as cur:
        for pid in pids:
            cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
    _wait_until(lambda: not {p for p, _ in _backends(admin, name)} & set(pids),
                "the sessions to end")  # fmt: skip


def _cut(db) -> None:
    """Cut this process's connection the way each engine loses one."""
    if isinstance(db, peewee.SqliteDatabase):
        db.connection().close()  # the handle closed under Peewee
        return
    pid = db.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
    admin = _admin()
    try:
        _terminate(admin, db.database, [pid])
    finally:
        admin.close()


def _finished(status: str) -> Job:
    job = jobtui.enqueue("rc.done")
    (run,) = claim_jobs(1, tasks=["rc.done"])
    if status == "completed":
        complete_job(run.id, run.attempt, run.lease_token, {"ok": 1})
    else:
        fail_job(run.id, run.attempt, run.lease_token, "boom", permanent=True)
    return job


def test_every_api_call_works_after_the_connection_was_cut(db):
    """Before: PostgreSQL raised OperationalError, then "connection already closed" on
    every later call; SQLite "Cannot operate on a closed database", for good."""
    done, failed = _finished("completed"), _finished("failed")
    pending = jobtui.enqueue("rc.pending")
    calls: dict[str, Callable[[], object]] = {
        "enqueue": lambda: jobtui.enqueue("rc.x").status == "pending",
        "enqueue_many": lambda: len(jobtui.enqueue_many("rc.x", [{"args": [1]}, {}])) == 2,
        "poll": lambda: jobtui.poll(pending.id).status == "pending",
        "wait": lambda: jobtui.wait(done.id, timeout=5) == {"ok": 1},
        "cancel": lambda: jobtui.cancel(pending.id).status == "cancelled",
        "retry": lambda: jobtui.retry(failed.id).status == "pending",
        "queue_stats": lambda: "default" in jobtui.queue_stats(),
        "schedule": lambda: jobtui.schedule("rc-nightly", "0 2 * * *", "rc.x") is not None,
        "batch": _enqueue_in_a_batch,
    }
    for name, call in calls.items():
        _cut(db)
        assert call(), name
        assert call(), f"{name}, again"  # and the connection stays usable


def _enqueue_in_a_batch() -> bool:
    with batch() as group:
        jobtui.enqueue("rc.x")
    return Job.select().where(Job.batch_id == group.id).count() == 1


def test_a_read_in_flight_when_the_connection_dies_is_read_again(db, db_url):
    if not db_url.startswith("postgres"):
        pytest.skip("a statement in flight (a SQLite statement has no connection to lose)")
    job = jobtui.enqueue("rc.read")
    admin = _admin()
    locker = _pg_connect(db_url)
    try:
        with locker.cursor() as cur:  # the poll's SELECT now waits on the lock
            cur.execute("BEGIN; LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")
        got: list[object] = []
        reader = threading.Thread(target=lambda: got.append(_catching(jobtui.poll, job.id)))
        reader.start()
        blocked = lambda: [p for p, kind in _backends(admin, db.database) if kind == "Lock"]  # noqa: E731
        _wait_until(blocked, "the poll waiting on the lock")
        (first,) = blocked()
        _terminate(admin, db.database, [first])
        _wait_until(lambda: blocked() and blocked() != [first], "the poll read again")
        locker.rollback()
        reader.join(10)
        assert got and isinstance(got[0], Job) and got[0].id == job.id, got
    finally:
        locker.close()
        admin.close()


def _catching(fn: Callable, *args: object) -> object:
    try:
        return fn(*args)
    except BaseException as exc:  # noqa: BLE001 - the test inspects it
        return exc


def test_a_write_that_may_have_committed_is_not_retried(db, db_url):
    if not db_url.startswith("postgres"):
        pytest.skip("a statement in flight (a SQLite statement has no connection to lose)")
    admin = _admin()
    locker = _pg_connect(db_url)
    try:
        with locker.cursor() as cur:  # the enqueue's INSERT now waits on the lock
            cur.execute("BEGIN; LOCK TABLE jobs IN EXCLUSIVE MODE")
        got: list[object] = []
        writer = threading.Thread(target=lambda: got.append(_catching(jobtui.enqueue, "rc.w")))
        writer.start()
        blocked = lambda: [p for p, kind in _backends(admin, db.database) if kind == "Lock"]  # noqa: E731
        _wait_until(blocked, "the enqueue waiting on the lock")
        _terminate(admin, db.database, blocked())
        writer.join(10)
        locker.rollback()
        assert got and isinstance(got[0], CommitUncertain), got
        assert "may or may not have been written" in str(got[0])
        assert Job.select().count() == 0  # not sent again behind the caller's back
        assert jobtui.enqueue("rc.w").status == "pending"  # and the next call reconnects
    finally:
        locker.close()
        admin.close()


def test_wait_keeps_waiting_through_an_outage(db, db_url, monkeypatch):
    """The database refuses every connection for a while (a restart): ``wait`` keeps
    polling, then returns the result once the job completes."""
    if not db_url.startswith("postgres"):
        pytest.skip("a server that refuses connections (SQLite has no server)")
    import jobtui.api

    job = jobtui.enqueue("rc.slow")
    (run,) = claim_jobs(1, tasks=["rc.slow"])
    failures: list[BaseException] = []
    real_poll = jobtui.api.poll

    def counting_poll(*args, **kwargs):
        try:
            return real_poll(*args, **kwargs)
        except BaseException as exc:
            failures.append(exc)
            raise

    monkeypatch.setattr(jobtui.api, "poll", counting_poll)
    admin = _admin()
    name = db.database
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(_catching(jobtui.wait, job.id, 30)))
    try:
        waiter.start()
        with admin.cursor() as cur:
            cur.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        _terminate(admin, name)
        _wait_until(lambda: len(failures) >= 3, "wait to meet the outage a few times")
        assert waiter.is_alive() and not got
        assert all(isinstance(f, JobtuiError) for f in failures), failures
    finally:
        with admin.cursor() as cur:
            cur.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        admin.close()
    from jobtui.models.db import open_database

    other = open_database(db_url)  # the worker finishing the job, on its own connection
    complete_job(run.id, run.attempt, run.lease_token, {"waited": True}, db=other)
    other.close()
    waiter.join(20)
    assert got == [{"waited": True}], got


def test_a_batch_block_keeps_its_own_errors(db):
    """Errors of the caller's code inside ``with batch()`` are not translated."""

    class Mine(Exception):
        pass

    with pytest.raises(Mine), batch():
        jobtui.enqueue("rc.x")
        raise Mine
    assert Job.select().count() == 0
