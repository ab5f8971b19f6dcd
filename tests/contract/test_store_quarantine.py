"""Crash-loop quarantine in the store (outcomes.py, actions.retry_jobs): one suite, SQLite
and PostgreSQL. A crash outcome counts on the job; the ``max_crashes``-th fails the job
as quarantined whatever retries remain; other failures never count; a retry by hand
resets the count."""

from __future__ import annotations

import jobtui
from jobtui.models import Job, claim_jobs, retry_jobs
from jobtui.models.attempt import JobAttempt
from jobtui.models.outcomes import Outcome, write_outcomes

CRASH = "SIGKILL, peak RSS 812 MB"


def _run_and_fail(job_id: str, *, crash: str | None, max_crashes: int | None = 2) -> str | None:
    (run,) = claim_jobs(1)
    assert run.id == job_id
    (status,) = write_outcomes([Outcome(
        run.id, run.attempt, run.lease_token, "failed", error="killed by signal 9 (SIGKILL)",
        error_type="WorkerLost", attempt_outcome="crashed", retry_delay_s=0, crash=crash,
        max_crashes=max_crashes)])  # fmt: skip
    return status


def test_the_second_crash_quarantines_the_job_with_retries_left(db):
    job = jobtui.enqueue("t", max_retries=5)
    assert _run_and_fail(job.id, crash=CRASH) == "retrying"
    assert Job.get_by_id(job.id).crash_count == 1
    assert _run_and_fail(job.id, crash=CRASH) == "failed"
    row = Job.get_by_id(job.id)
    assert (row.status, row.crash_count, row.retry_count) == ("failed", 2, 1)
    assert row.error_type == "Quarantined" and row.failed_at is not None
    assert row.error_message == f"quarantined: killed its worker 2 times ({CRASH})"
    assert row.to_dict()["quarantined"] is True
    last = JobAttempt.select().where(JobAttempt.job == job.id).order_by(JobAttempt.attempt.desc())
    assert last.first().error_message == "killed by signal 9 (SIGKILL)"  # the crash's words


def test_other_failures_never_count_and_zero_never_quarantines(db):
    plain = jobtui.enqueue("t", max_retries=2)
    for _ in range(3):
        status = _run_and_fail(plain.id, crash=None)
    assert status == "failed"
    row = Job.get_by_id(plain.id)
    assert row.crash_count == 0 and row.error_type == "WorkerLost"
    assert row.to_dict()["quarantined"] is False
    never = jobtui.enqueue("t", max_retries=3)
    statuses = [_run_and_fail(never.id, crash=CRASH, max_crashes=0) for _ in range(4)]
    assert statuses == ["retrying", "retrying", "retrying", "failed"]  # retries decide alone
    row = Job.get_by_id(never.id)
    assert row.crash_count == 4 and row.error_type == "WorkerLost"


def test_a_retry_by_hand_resets_the_count(db):
    job = jobtui.enqueue("t", max_retries=5)
    _run_and_fail(job.id, crash=CRASH)
    assert _run_and_fail(job.id, crash=CRASH) == "failed"
    assert retry_jobs([job.id]).changed == 1
    row = Job.get_by_id(job.id)
    assert (row.status, row.crash_count, row.retry_count) == ("pending", 0, 0)
    assert _run_and_fail(job.id, crash=CRASH) == "retrying"  # one crash again, not the third
    assert Job.get_by_id(job.id).crash_count == 1


def test_a_lost_lease_counts_nothing(db):
    job = jobtui.enqueue("t", max_retries=5)
    (run,) = claim_jobs(1)
    stale = Outcome(run.id, run.attempt, "not-the-token", "failed", error="x", crash=CRASH,
                    max_crashes=1)  # fmt: skip
    assert write_outcomes([stale]) == [None]
    assert Job.get_by_id(job.id).crash_count == 0
