"""Delayed jobs, dependency chains, error classes and deadlines through a real supervisor,
on both engines."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from workflow_helpers import FAST, supervisors, wait_for

import jobtui
from jobtui.models import Job, JobAttempt
from jobtui.models.clock import utcnow

TASKS = "workflow_tasks"


def _ended(job_ids, timeout: float = 15.0) -> dict[str, Job]:
    def all_ended():
        rows = {j.id: j for j in Job.select().where(Job.id.in_(list(job_ids)))}
        final = all(r.status in ("completed", "failed", "cancelled") for r in rows.values())
        return rows if final and len(rows) == len(job_ids) else None

    return wait_for(all_ended, timeout, 0.05, what="jobs ended")


@pytest.mark.timeout(60)
def test_delayed_jobs_start_within_a_second_of_being_due(db, db_url, tmp_path):
    with supervisors(db_url, tmp_path) as group:
        group.start("--import", TASKS, "--workers", "2", *FAST)  # default --poll-interval 1
        jobs = [jobtui.enqueue(f"{TASKS}.item", args=[n], delay=0.7 + 0.4 * n) for n in range(3)]
        at = utcnow() + timedelta(seconds=1.2)
        jobs.append(jobtui.enqueue(f"{TASKS}.item", args=[9], scheduled_for=at))
        rows = _ended([j.id for j in jobs])  # enqueued at start: found by the start-up scan
        later = [
            jobtui.enqueue(f"{TASKS}.item", args=[n], delay=0.3 + 0.25 * n) for n in range(3)
        ]  # while it listens: each announced by its wake-up
        rows.update(_ended([j.id for j in later]))
        jobs += later
    for job in jobs:
        row = rows[job.id]
        assert row.status == "completed" and row.scheduled_for == job.scheduled_for
        lateness = (row.started_at - row.scheduled_for).total_seconds()
        # the enqueue's wake-up announces the due time: a timer, not the 1 s safety poll
        assert 0 <= lateness < 0.5, f"job due at {row.scheduled_for} started {lateness:.3f} s late"
    assert rows[jobs[3].id].scheduled_for == at


@pytest.mark.timeout(60)
def test_a_chain_runs_in_order_and_a_failure_cancels_down_the_chain(db, db_url, tmp_path):
    trace = tmp_path / "trace.txt"
    trace.touch()
    with supervisors(db_url, tmp_path) as group:
        group.start("--import", TASKS, "--workers", "3", "--poll-interval", "0.2", *FAST)
        a = jobtui.enqueue(f"{TASKS}.step", args=[str(trace), "a", 0.2])
        b = jobtui.enqueue(f"{TASKS}.step", args=[str(trace), "b", 0.2], depends_on=[a.id])
        c = jobtui.enqueue(f"{TASKS}.step", args=[str(trace), "c", 0.0], depends_on=[b.id])
        bad = jobtui.enqueue(f"{TASKS}.refuse", args=["no such customer"])
        x = jobtui.enqueue(f"{TASKS}.step", args=[str(trace), "x"], depends_on=[bad.id])
        y = jobtui.enqueue(f"{TASKS}.step", args=[str(trace), "y"], depends_on=[x.id, a.id])
        rows = _ended([j.id for j in (a, b, c, bad, x, y)])
    events = [line.split()[:2] for line in trace.read_text().splitlines()]
    assert events == [["start", "a"], ["end", "a"], ["start", "b"], ["end", "b"],
                      ["start", "c"], ["end", "c"]]  # fmt: skip
    assert [rows[j.id].status for j in (a, b, c)] == ["completed"] * 3
    assert rows[b.id].started_at >= rows[a.id].completed_at
    assert rows[c.id].started_at >= rows[b.id].completed_at
    assert (rows[bad.id].status, rows[bad.id].error_message) == ("failed", "no such customer")
    assert (rows[x.id].status, rows[x.id].error_message) == (
        "cancelled", f"dependency {bad.id} failed")  # fmt: skip
    assert (rows[y.id].status, rows[y.id].error_message) == (
        "cancelled", f"dependency {x.id} cancelled")  # fmt: skip
    assert rows[x.id].attempt == rows[y.id].attempt == 0  # never ran


@pytest.mark.timeout(60)
def test_error_classes_and_deadlines(db, db_url, tmp_path):
    with supervisors(db_url, tmp_path) as group:
        group.start("--import", TASKS, "--workers", "2", "--poll-interval", "0.2", *FAST)
        value = jobtui.enqueue(f"{TASKS}.bad_value")
        conn = jobtui.enqueue(f"{TASKS}.network", args=["conn"])
        key = jobtui.enqueue(f"{TASKS}.network", args=["key"])
        expired = jobtui.enqueue(
            f"{TASKS}.item", args=[1], delay=5, deadline=0.5
        )  # expired long before due
        in_time = jobtui.enqueue(f"{TASKS}.item", args=[2], delay=0.3, deadline=30)
        rows = _ended([j.id for j in (value, conn, key, expired, in_time)])

    def attempts(job) -> int:
        return JobAttempt.select().where(JobAttempt.job == job.id).count()

    # permanent_errors=(ValueError,): failed at once, though retries remain
    assert (rows[value.id].status, rows[value.id].retry_count, attempts(value)) == ("failed", 0, 1)
    assert rows[value.id].error_type == "ValueError"
    # retry_errors=(ConnectionError,): retried to max_retries=2 ...
    assert (rows[conn.id].status, rows[conn.id].retry_count, attempts(conn)) == ("failed", 2, 3)
    # ... and any other error fails at once
    assert (rows[key.id].status, rows[key.id].retry_count, attempts(key)) == ("failed", 0, 1)
    assert rows[expired.id].status == "cancelled" and rows[expired.id].attempt == 0
    assert "expired" in rows[expired.id].error_message
    assert rows[expired.id].completed_at < rows[expired.id].scheduled_for  # not left to run
    assert (rows[in_time.id].status, rows[in_time.id].result) == ("completed", 2)


@pytest.mark.timeout(60)
def test_a_task_has_the_whole_hashlib_though_the_daemon_skips_openssl(db, db_url, tmp_path):
    import hashlib

    with supervisors(db_url, tmp_path) as group:
        group.start("--import", TASKS, "--workers", "1", *FAST)
        job = jobtui.enqueue(f"{TASKS}.derive_key", args=["hunter2"])
        key = jobtui.wait(job.id, timeout=15)
    assert key == hashlib.scrypt(b"hunter2", salt=b"salt", n=16, r=8, p=1, dklen=16).hex()


@pytest.mark.timeout(60)
def test_a_retry_starts_when_its_backoff_ends(db, db_url, tmp_path):
    with supervisors(db_url, tmp_path) as group:
        group.start("--import", TASKS, "--workers", "1", *FAST)  # default --poll-interval 1
        job = jobtui.enqueue(f"{TASKS}.flaky_twice")
        assert jobtui.wait(job.id, timeout=15) == "ok"
    runs = list(JobAttempt.select().where(JobAttempt.job == job.id).order_by(JobAttempt.attempt))
    assert [r.outcome for r in runs] == ["failed", "failed", "completed"]
    for before, after in itertools.pairwise(runs):
        gap = (after.started_at - before.ended_at).total_seconds()
        # the supervisor that wrote the retry sets a timer for it: not the 1 s safety poll
        assert 0.4 - 0.01 <= gap < 0.4 + 0.3, f"attempt {after.attempt} began {gap:.3f} s on"
