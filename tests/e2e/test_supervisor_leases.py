"""Leases and fencing between supervisors: one SIGSTOPped past its lease loses its job to
another; once resumed, its late outcome is fenced out. Both engines."""

from __future__ import annotations

import signal

import pytest
from supervisor_harness import TASKS, wait_until
from supervisor_history import attempts, job

import jobtui

pytestmark = pytest.mark.timeout(60)


def test_a_stopped_supervisor_loses_its_job_and_its_late_outcome_is_fenced_out(cluster):
    stopped = cluster.start(name="stopped")
    victim = jobtui.enqueue(f"{TASKS}.hold_first", args=["zombie"])
    zombie = cluster.wait_started(victim.id)
    rescuer = cluster.start(name="rescuer")

    cluster.fault(victim.id, "its supervisor was SIGSTOPped past its lease")
    cluster.freeze(stopped)  # its worker runs on, but nobody renews the lease
    result = jobtui.wait(victim.id, timeout=15)
    assert result["attempt"] == 2 and result["pid"] in rescuer.worker_pids()
    first = attempts(victim.id)[0]
    assert first.outcome == "crashed" and first.supervisor_name == "stopped"
    assert first.error_message == "lease expired: no heartbeat from stopped for 1.5 s"

    cluster.open_gate("zombie")  # the old attempt finishes while its supervisor is stopped
    wait_until(lambda: 1 in {r.attempt for r in cluster.execlog.events(victim.id, "end")},
               10, "the zombie attempt finished")  # fmt: skip
    stopped.signal(signal.SIGCONT)
    wait_until(lambda: "outcome dropped, its lease was lost" in stopped.log()
               or "lease lost to another supervisor" in stopped.log(),
               10, "the resumed supervisor noticed its lost lease",
               explain=stopped.log)  # fmt: skip

    row = job(victim.id)
    assert (row.status, row.attempt, row.result["attempt"]) == ("completed", 2, 2)
    assert row.result["pid"] != zombie.pid
    assert [a.outcome for a in attempts(victim.id)] == ["crashed", "completed"]
    ends = {r.attempt: r.pid for r in cluster.execlog.events(victim.id, "end")}
    assert ends[1] == zombie.pid  # the old attempt did execute; its result was not stored

    after = jobtui.enqueue(f"{TASKS}.quick", args=[1])  # both still serve the queue
    assert jobtui.wait(after.id, timeout=10)["value"] == 1
    assert stopped.alive() and rescuer.alive()
    cluster.check()


def test_an_orphan_locked_by_another_transaction_never_holds_back_our_heartbeats(cluster):
    """PostgreSQL: another supervisor stopped in the middle of recovering an orphan holds
    its row lock. A new supervisor skips that row (a later sweep takes it) instead of
    failing every group commit on it, so its own heartbeats land and it runs jobs."""
    if cluster.is_sqlite:
        pytest.skip("row locks are PostgreSQL's: SQLite has one write lock, held per commit")
    import psycopg2

    old = cluster.start(name="old")
    orphan = jobtui.enqueue(f"{TASKS}.hold_first", args=["never-opened"])
    cluster.wait_started(orphan.id)
    cluster.fault(orphan.id, "its supervisor was SIGKILLed")
    old.kill()

    holder = psycopg2.connect(cluster.db_url)  # a transaction that never ends on its own
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT id FROM jobs WHERE id = %s FOR UPDATE", (orphan.id,))
        new = cluster.start(name="new")  # ready: its heartbeat and worker rows are written
        other = jobtui.enqueue(f"{TASKS}.quick", args=[7])
        assert jobtui.wait(other.id, timeout=10)["value"] == 7
        assert job(orphan.id).status == "running"  # skipped while locked, not waited on
    finally:
        holder.rollback()
        holder.close()
    result = jobtui.wait(orphan.id, timeout=10)  # the next sweep recovers it
    assert result["attempt"] == 2 and result["pid"] in new.worker_pids()
    assert "lock timeout" not in new.log()
    cluster.check()


def test_a_claim_its_supervisor_never_handed_out_is_recovered(cluster):
    """A claim whose COMMIT went through while its acknowledgement was lost with the
    connection: the database says the supervisor runs the job, the supervisor never heard
    of it. Its lease is never renewed; after a lease the supervisor's own sweep recovers
    it (no other supervisor takes a live owner's jobs), and the job runs again."""
    from jobtui.models import store
    from jobtui.models.clock import sql_timestamp, utcnow
    from jobtui.models.dialect import dialect_for

    cluster.start(name="forgetful")
    lost = jobtui.enqueue(f"{TASKS}.nap", args=[0.01], delay=3600)  # not due: never claimed
    cluster.fault(lost.id, "its claim was never handed to a worker")
    db = store.get_database()
    dialect = dialect_for(db)
    now = sql_timestamp(utcnow())
    with dialect.write_transaction(db):
        db.execute_sql(dialect.sql(
            "UPDATE jobs SET status = 'running', attempt = attempt + 1, lease_token = 'lost',"
            " started_at = :now, heartbeat_at = :now, run_at = :now,"
            " supervisor_name = 'forgetful' WHERE id = :id"), {"now": now, "id": lost.id})  # fmt: skip
    result = jobtui.wait(lost.id, timeout=15)
    assert result["attempt"] == 2
    first = attempts(lost.id)[0]
    assert first.outcome == "crashed"
    assert first.error_message == "claimed by forgetful but never handed to a worker (lost claim)"
    cluster.check()
