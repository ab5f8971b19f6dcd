"""Unique keys under many processes, and retention (``prune_jobs`` / ``cleanup_old_jobs``),
on both engines. Rows are made "old" by setting ``updated_at`` back with SQL."""

from __future__ import annotations

import multiprocessing
from datetime import timedelta

import pytest

import jobtui
from jobtui.models import Job, JobAttempt, JobDependency, complete_job, fail_job, start_job, store
from jobtui.models.dialect import dialect_for
from jobtui.models.retention import prune_jobs, purge_failed_jobs

PROCESSES = 10
PER_PROCESS = 10


def _enqueue_same_key(url: str, barrier, results) -> None:
    store.reset()
    ids, errors = [], []
    try:
        store.use_database(url)
        barrier.wait(30)
        for n in range(PER_PROCESS):
            try:
                ids.append(jobtui.enqueue("t", args=[n], unique_key="report:1").id)
            except Exception as exc:  # noqa: BLE001 - any error is a failure, reported
                errors.append(f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # noqa: BLE001
        errors.append(f"setup: {type(exc).__name__}: {exc}")
    results.put((ids, errors))


@pytest.mark.timeout(60)
def test_100_concurrent_enqueues_of_one_key_from_10_processes_make_one_job(db, db_url):
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(PROCESSES), context.Queue()
    db.close()  # fork with no connection open
    procs = [context.Process(target=_enqueue_same_key, args=(db_url, barrier, results))
             for _ in range(PROCESSES)]  # fmt: skip
    for proc in procs:
        proc.start()
    gathered = [results.get(timeout=45) for _ in procs]
    for proc in procs:
        proc.join(15)
    errors = [e for _, errs in gathered for e in errs]
    ids = [i for found, _ in gathered for i in found]
    assert errors == [] and len(ids) == PROCESSES * PER_PROCESS
    assert len(set(ids)) == 1
    assert Job.select().where(Job.unique_key == "report:1").count() == 1


def test_a_unique_key_is_taken_while_live_and_free_once_the_job_ended(db):
    first = jobtui.enqueue("t", unique_key="k")
    assert jobtui.enqueue("t", unique_key="k").id == first.id
    run = start_job(first.id)
    assert jobtui.enqueue("t", unique_key="k").id == first.id  # running
    assert fail_job(run.id, run.attempt, run.lease_token, "x", retry_delay=60) == "retrying"
    assert jobtui.enqueue("t", unique_key="k").id == first.id  # retrying
    run = start_job(first.id)
    complete_job(run.id, run.attempt, run.lease_token, 1)
    second = jobtui.enqueue("t", unique_key="k")
    assert second.id != first.id and second.status == "pending"
    assert jobtui.enqueue("t", unique_key="other").id not in (first.id, second.id)
    assert Job.select().where(Job.unique_key == "k").count() == 2


# ------------------------------------------------------------------ retention


def _age(db, jobs, days: float) -> None:
    """Make ``jobs`` look last changed ``days`` ago."""
    from jobtui.models.clock import sql_timestamp, utcnow
    from jobtui.models.dialect import dialect_for

    stamp = sql_timestamp(utcnow() - timedelta(days=days))
    for job in jobs:
        db.execute_sql(dialect_for(db).sql("UPDATE jobs SET updated_at = :t WHERE id = :id"),
                       {"t": stamp, "id": job.id})  # fmt: skip


def _ended(status: str):
    job = jobtui.enqueue("t")
    if status == "pending":
        return job
    run = start_job(job.id)
    if status == "completed":
        complete_job(run.id, run.attempt, run.lease_token, 1)
    elif status == "failed":
        fail_job(run.id, run.attempt, run.lease_token, "boom", permanent=True)
    elif status == "cancelled":
        jobtui.cancel(job.id)  # running: a request
        from jobtui.models.outcomes import Outcome, write_outcomes

        write_outcomes([Outcome(run.id, run.attempt, run.lease_token, "cancelled",
                                error="cancelled by operator")])  # fmt: skip
    assert Job.get_by_id(job.id).status == status
    return job


def _alive(*jobs) -> list[bool]:
    return [Job.get_or_none(Job.id == j.id) is not None for j in jobs]


def test_prune_removes_old_completed_and_cancelled_with_their_attempts(db):
    completed, cancelled, failed = _ended("completed"), _ended("cancelled"), _ended("failed")
    running, pending = _ended("running"), _ended("pending")
    recent = _ended("completed")
    _age(db, [completed, cancelled, failed, running, pending], days=8)
    assert JobAttempt.select().where(JobAttempt.job == completed.id).count() == 1
    assert prune_jobs(older_than=timedelta(days=7)) == 2
    assert _alive(completed, cancelled) == [False, False]
    assert _alive(failed, running, pending, recent) == [True] * 4
    assert JobAttempt.select().where(JobAttempt.job.in_([completed.id, cancelled.id])).count() == 0
    assert prune_jobs(older_than=timedelta(days=7), include_failed=True) == 1  # purge --failed
    assert _alive(failed, running, pending) == [False, True, True]


def test_prune_keeps_a_job_a_live_job_depends_on(db):
    root, other = _ended("completed"), jobtui.enqueue("t")
    dependant = jobtui.enqueue("t", depends_on=[root.id, other.id])  # waits on ``other``
    _age(db, [root], days=30)
    assert prune_jobs(older_than=timedelta(days=7)) == 0
    assert _alive(root) == [True]
    run = start_job(other.id)
    complete_job(run.id, run.attempt, run.lease_token, 1)
    assert Job.get_by_id(dependant.id).status == "pending"
    assert prune_jobs(older_than=timedelta(days=7)) == 0  # still live: pending
    run = start_job(dependant.id)
    assert prune_jobs(older_than=timedelta(days=7)) == 0  # running
    complete_job(run.id, run.attempt, run.lease_token, 1)
    assert prune_jobs(older_than=timedelta(days=7)) == 1
    assert _alive(root, dependant) == [False, True]
    assert JobDependency.select().where(JobDependency.depends_on == root.id).count() == 0


def test_prune_works_in_batches_and_cleanup_old_jobs_prunes_on_demand(db):
    jobs = [_ended("completed") for _ in range(5)]
    _age(db, jobs, days=3)
    assert prune_jobs(older_than=timedelta(days=2), batch_size=2, max_batches=1) == 2
    assert prune_jobs(older_than=timedelta(days=2), batch_size=2) == 3  # 2 + 1: three batches
    more = [_ended("completed"), _ended("failed")]
    _age(db, more, days=10)
    assert Job.cleanup_old_jobs(30) == 0
    assert Job.cleanup_old_jobs(7) == 1 and _alive(*more) == [False, True]
    assert Job.cleanup_old_jobs(7, include_failed=True) == 1
    assert Job.select().count() == 0


def test_cron_fire_records_are_pruned_after_the_retention_and_never_within_two_days(db):
    from jobtui.models.clock import utcnow
    from jobtui.models.retention import prune_schedule_fires
    from jobtui.models.schedule import ScheduleFire

    jobtui.schedule("tick", "* * * * *", "t")
    now = utcnow()
    for days in (0, 1, 3, 8, 9):
        ScheduleFire.create(schedule="tick", fire_time=now - timedelta(days=days, minutes=1))
    assert prune_schedule_fires(older_than=timedelta(days=7)) == 2  # 8 and 9 days old
    assert prune_schedule_fires(older_than=timedelta(0)) == 1  # 3 days: the two-day floor
    kept = sorted((now - f.fire_time).days for f in ScheduleFire.select())
    assert kept == [0, 1]


def test_purge_failed_deletes_failed_jobs_only_narrowed_by_queue_and_age(db):
    """``jobtui purge --failed`` (seed 004's ``queue:clear-failed``): the failed jobs go,
    completed and cancelled ones stay; ``queue`` and ``older_than`` narrow it; a failed
    job a live job still depends on stays."""
    failed = [_ended("failed") for _ in range(4)]
    completed, cancelled = _ended("completed"), _ended("cancelled")
    db.execute_sql(dialect_for(db).sql("UPDATE jobs SET queue_name = 'mail' WHERE id = :id"),
                   {"id": failed[0].id})  # fmt: skip
    _age(db, [failed[0], failed[1], completed, cancelled], days=10)
    depended_on = failed[3]
    live = jobtui.enqueue("t")
    JobDependency.create(job=live.id, depends_on=depended_on.id)
    assert purge_failed_jobs(queue="mail") == 1
    assert _alive(failed[0], failed[1]) == [False, True]
    assert purge_failed_jobs(older_than=timedelta(days=7)) == 1  # failed[1]; [2] is recent
    assert _alive(failed[1], failed[2]) == [False, True]
    assert purge_failed_jobs() == 1  # failed[2]; failed[3] has a live dependant
    assert _alive(failed[2], depended_on, completed, cancelled, live) == [False] + [True] * 4
