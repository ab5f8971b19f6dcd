"""Claims, fencing, retries and dependencies: one suite, run on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

import jobtui
from jobtui.models import (
    Job,
    JobAttempt,
    claim_jobs,
    complete_job,
    fail_job,
    record_heartbeats,
    record_progress,
    set_queue_paused,
)
from jobtui.models.clock import utcnow
from jobtui.models.retry import RetryPolicy


def test_claim_order_is_priority_then_due_time_then_fifo(db):
    low = jobtui.enqueue("t", priority=0)
    high_late = jobtui.enqueue("t", priority=10)
    high_early_due = jobtui.enqueue("t", priority=10, scheduled_for=utcnow() - timedelta(hours=1))
    fifo_second = jobtui.enqueue("t", priority=0)
    claimed = [c.id for c in claim_jobs(10)]
    assert claimed == [high_early_due.id, high_late.id, low.id, fifo_second.id]


def test_claim_respects_limit_queues_tasks_and_paused_queues(db):
    for n in range(5):
        jobtui.enqueue("a", queue="q1", args=[n])
    jobtui.enqueue("b", queue="q2")
    assert len(claim_jobs(2, queues=["q1"])) == 2
    assert [c.job_type for c in claim_jobs(10, tasks=["b"])] == ["b"]
    set_queue_paused("q1", True)
    assert claim_jobs(10) == []
    set_queue_paused("q1", False)
    assert len(claim_jobs(10)) == 3


def test_claim_never_takes_a_job_before_it_is_due(db):
    jobtui.enqueue("t", delay=3600)
    jobtui.enqueue("t", scheduled_for=utcnow() + timedelta(minutes=5))
    assert claim_jobs(10) == []
    assert len(claim_jobs(10, now=utcnow() + timedelta(hours=2))) == 2


def test_each_claim_increments_attempt_and_writes_a_fresh_lease(db):
    job = jobtui.enqueue("t", retry_delay=0)
    first = claim_jobs(1)[0]
    assert first.attempt == 1 and len(first.lease_token) == 32
    assert fail_job(job.id, first.attempt, first.lease_token, "boom") == "retrying"
    second = claim_jobs(1, now=utcnow() + timedelta(seconds=1))[0]
    assert second.attempt == 2 and second.lease_token != first.lease_token
    row = Job.get_by_id(job.id)
    assert (row.attempt, row.retry_count, row.status) == (2, 1, "running")


def test_fenced_writes_change_nothing_for_a_stale_attempt(db):
    job = jobtui.enqueue("t", retry_delay=0)
    old = claim_jobs(1)[0]
    fail_job(job.id, old.attempt, old.lease_token, "lost")
    new = claim_jobs(1, now=utcnow() + timedelta(seconds=1))[0]
    assert not complete_job(job.id, old.attempt, old.lease_token, {"from": "zombie"})
    assert fail_job(job.id, old.attempt, old.lease_token, "zombie") is None
    assert not record_progress(job.id, old.attempt, old.lease_token, 50, "zombie")
    assert record_heartbeats([(job.id, old.attempt, old.lease_token)]) == [job.id]
    assert not complete_job(job.id, new.attempt, "wrong-token", {"from": "forger"})
    assert record_progress(job.id, new.attempt, new.lease_token, 40, "half")
    assert complete_job(job.id, new.attempt, new.lease_token, {"from": "owner"})
    row = Job.get_by_id(job.id)
    assert row.status == "completed" and row.result == {"from": "owner"}
    outcomes = [(a.attempt, a.outcome) for a in JobAttempt.select().order_by(JobAttempt.attempt)]
    assert outcomes == [(1, "failed"), (2, "completed")]


def test_retry_policy_backoff_then_dead_letter(db):
    job = jobtui.enqueue("t", max_retries=2, retry_delay=10, retry_backoff=3, retry_jitter=False)
    policy = RetryPolicy(delay_s=10, backoff=3, jitter=False)
    now = utcnow()
    for n in range(2):
        c = claim_jobs(1, now=now + timedelta(days=n + 1))[0]
        before = utcnow()
        assert fail_job(job.id, c.attempt, c.lease_token, f"boom {n}") == "retrying"
        row = Job.get_by_id(job.id)
        wait = (row.next_retry_at - before).total_seconds()
        assert policy.ceiling_s(n) - 1 <= wait <= policy.ceiling_s(n) + 1
        assert row.retry_count == n + 1 and row.can_retry() == (n + 1 < 2)
    c = claim_jobs(1, now=now + timedelta(days=5))[0]
    assert fail_job(job.id, c.attempt, c.lease_token, "final") == "failed"
    row = Job.get_by_id(job.id)
    assert row.status == "failed" and row.is_failed() and row.failed_at is not None
    assert row.retry_count == 2 and row.attempt == 3  # max_retries + 1 failing runs


def test_jitter_stays_within_half_to_full_delay(db):
    job = jobtui.enqueue("t", retry_delay=100, retry_jitter=True)
    c = claim_jobs(1)[0]
    before = utcnow()
    fail_job(job.id, c.attempt, c.lease_token, "x")
    wait = (Job.get_by_id(job.id).next_retry_at - before).total_seconds()
    assert 49 <= wait <= 101


def test_permanent_error_fails_at_once(db):
    job = jobtui.enqueue("t", max_retries=5)
    c = claim_jobs(1)[0]
    assert fail_job(job.id, c.attempt, c.lease_token, "bad input", permanent=True) == "failed"
    row = Job.get_by_id(job.id)
    assert row.retry_count == 0 and not row.can_retry() and row.error_permanent


def test_dependants_wait_then_run_and_failures_cascade(db):
    a = jobtui.enqueue("a")
    b = jobtui.enqueue("b", depends_on=[a.id])
    c = jobtui.enqueue("c", depends_on=[b.id])
    d = jobtui.enqueue("d", depends_on=[a.id, b.id])
    assert {Job.get_by_id(x.id).status for x in (b, c, d)} == {"waiting"}
    assert [j.id for j in claim_jobs(10)] == [a.id]  # never with unmet dependencies
    ca = Job.get_by_id(a.id)
    complete_job(a.id, ca.attempt, ca.lease_token, 1)
    assert Job.get_by_id(b.id).status == "pending"
    assert Job.get_by_id(d.id).status == "waiting"  # b not done yet
    cb = claim_jobs(10)
    assert [j.id for j in cb] == [b.id]
    fail_job(b.id, cb[0].attempt, cb[0].lease_token, "boom", permanent=True)
    for dependant in (c, d):
        row = Job.get_by_id(dependant.id)
        assert row.status == "cancelled" and b.id in row.error_message
    assert sorted(Job.get_by_id(b.id).depends_on) == [a.id]


def test_enqueue_after_a_dependency_failed_is_cancelled_at_once(db):
    a = jobtui.enqueue("a")
    c = claim_jobs(1)[0]
    fail_job(a.id, c.attempt, c.lease_token, "boom", permanent=True)
    late = jobtui.enqueue("b", depends_on=[a.id])
    assert late.status == "cancelled" and "failed" in late.error_message


def test_cancel_pending_and_running(db):
    pending = jobtui.enqueue("t")
    running = jobtui.enqueue("t", priority=5)
    claim_jobs(1)
    assert jobtui.cancel(pending.id).status == "cancelled"
    after = jobtui.cancel(running.id)
    assert after.status == "running" and after.cancel_requested


@pytest.mark.parametrize("status", ["failed", "cancelled"])
def test_retry_resets_the_retry_count(db, status):
    job = jobtui.enqueue("t", max_retries=0)
    c = claim_jobs(1)[0]
    if status == "failed":
        fail_job(job.id, c.attempt, c.lease_token, "x")
    else:
        from jobtui.models.outcomes import Outcome, write_outcomes

        write_outcomes([Outcome(job.id, c.attempt, c.lease_token, "cancelled")])
    again = jobtui.retry(job.id)
    assert again.status == "pending" and again.retry_count == 0
    assert claim_jobs(1)[0].attempt == 2


def test_completions_written_together_are_each_fenced(db):
    from jobtui.models.outcomes import Outcome, write_outcomes

    for n in range(4):
        jobtui.enqueue("t", args=[n])
    ok, stale, old, failed = claim_jobs(4)
    runs = [
        Outcome(ok.id, ok.attempt, ok.lease_token, "completed", result_json="1"),
        Outcome(stale.id, stale.attempt, "not-its-token", "completed", result_json="2"),
        Outcome(old.id, old.attempt - 1, old.lease_token, "completed", result_json="3"),
        Outcome(failed.id, failed.attempt, failed.lease_token, "failed", error="x",
                permanent=True),
    ]  # fmt: skip
    assert write_outcomes(runs) == ["completed", None, None, "failed"]
    rows = {j.id: j for j in Job.select()}
    assert (rows[ok.id].status, rows[ok.id].result) == ("completed", 1)
    assert rows[stale.id].status == rows[old.id].status == "running"
    assert sorted((a.job_id, a.outcome) for a in JobAttempt.select()) == sorted(
        [(ok.id, "completed"), (failed.id, "failed")])  # fmt: skip


def test_an_outcome_records_when_its_run_began_after_its_claim(db):
    """A prefetched run begins after its claim: each kind of ending writes that start on
    the job and its attempt row (completions in bulk too); without one, the claim's stays."""
    from jobtui.models.clock import sql_timestamp
    from jobtui.models.outcomes import Outcome, write_outcomes

    for n in range(5):
        jobtui.enqueue("t", args=[n], retry_delay=0)
    runs = claim_jobs(5)
    claimed_at = Job.get_by_id(runs[0].id).started_at
    began = claimed_at + timedelta(seconds=7)
    kinds = ("completed", "completed", "failed", "cancelled", "interrupted")
    outcomes = [Outcome(r.id, r.attempt, r.lease_token, kind, result_json="1", error="x",
                        started_at=sql_timestamp(began) if index else None)
                for index, (r, kind) in enumerate(zip(runs, kinds, strict=True))]  # fmt: skip
    assert write_outcomes(outcomes) == ["completed", "completed", "retrying", "cancelled",
                                        "pending"]  # fmt: skip
    rows = {j.id: j for j in Job.select()}
    tried = {a.job_id: a for a in JobAttempt.select()}
    assert rows[runs[0].id].started_at == tried[runs[0].id].started_at == claimed_at
    for run in runs[1:]:
        assert rows[run.id].started_at == tried[run.id].started_at == began, run.id
