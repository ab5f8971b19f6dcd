"""Eager mode: enqueue runs the job inline with the supervisor's semantics."""

from __future__ import annotations

import pytest

import jobtui
from jobtui import PermanentError, current_job, task
from jobtui.models import JobAttempt
from jobtui.registry import registry


@pytest.fixture
def tasks():
    calls: list[int] = []

    @task(name="eager.flaky", max_retries=2, retry_delay=60)
    def flaky(x: int) -> int:
        calls.append(x)
        current_job().progress(50, "half way")
        if len(calls) < 3:
            raise ValueError("flake")
        return 2 * x

    @task(name="eager.refuse")
    def refuse() -> None:
        raise PermanentError("no")

    @task(name="eager.aio")
    async def aio(x: int) -> int:
        return x + 1

    yield calls
    for name in ("eager.flaky", "eager.refuse", "eager.aio"):
        registry._tasks.pop(name, None)


def test_eager_runs_inline_with_retries_and_progress(db, tasks):
    with jobtui.eager():
        job = jobtui.enqueue("eager.flaky", args=[21])
    assert (job.status, job.result, job.retry_count, job.attempt) == ("completed", 42, 2, 3)
    assert job.progress_percentage == 100
    outcomes = [a.outcome for a in JobAttempt.select().order_by(JobAttempt.attempt)]
    assert outcomes == ["failed", "failed", "completed"]


def test_eager_permanent_error_and_propagation(db, tasks):
    with jobtui.eager():
        job = jobtui.enqueue("eager.refuse")
        assert job.status == "failed" and job.retry_count == 0
        with pytest.raises(jobtui.JobFailed, match="no"), jobtui.eager(propagate=True):
            jobtui.enqueue("eager.refuse")


def test_eager_async_task_and_environment_switch(db, tasks, monkeypatch):
    monkeypatch.setenv("JOBTUI_EAGER", "1")
    assert jobtui.enqueue("eager.aio", args=[1]).result == 2
    monkeypatch.delenv("JOBTUI_EAGER")
    assert jobtui.enqueue("eager.aio", args=[1]).status == "pending"


def test_eager_unknown_task_fails_the_job(db):
    with jobtui.eager():
        job = jobtui.enqueue("eager.nobody")
    assert job.status == "failed" and "unknown task" in job.error_message


@pytest.fixture
def detail_tasks():
    @task(name="eager.details")
    def details(rows: int) -> int:
        current_job().progress(10, "loading", rows=0, phase="load")
        current_job().progress(60, "loaded", rows=rows)  # merged: phase stays
        return rows

    @task(name="eager.callback")
    def callback(n: int, progress_callback=None) -> str:
        progress_callback(40, "counting", seen=n)
        return repr(progress_callback)

    @task(name="eager.callback_required")
    def callback_required(n: int, progress_callback) -> int:
        progress_callback(10, "a required callback is given too")
        return n

    @task(name="eager.dropped")
    def dropped() -> None:
        current_job().progress(5, "big", blob="x" * 10_000, when=object())

    yield
    for name in ("eager.details", "eager.callback", "eager.callback_required", "eager.dropped"):
        registry._tasks.pop(name, None)


def test_progress_details_merge_and_reach_the_row(db, detail_tasks):
    """Seed 002: ``progress(pct, message, **details)`` keeps a JSON details dict on the
    job; each call merges its details into those before."""
    with jobtui.eager():
        job = jobtui.enqueue("eager.details", args=[1200])
    assert job.status == "completed"
    assert jobtui.poll(job.id).progress_details == {"rows": 1200, "phase": "load"}


def test_a_progress_callback_parameter_is_given_one(db, detail_tasks):
    """Seed 002's ProgressCallback: a task declaring ``progress_callback`` gets one bound
    to its job, even though the caller could not pass a callable through JSON."""
    with jobtui.eager():
        job = jobtui.enqueue("eager.callback", args=[7])
    assert job.status == "completed", job.error_message
    assert job.result.startswith("<ProgressCallback for job ")
    assert jobtui.poll(job.id).progress_details == {"seen": 7}


def test_a_required_progress_callback_passes_the_parameter_check(db, detail_tasks):
    """The check of the arguments against the signature (bad parameters fail at once)
    counts the callback the worker passes."""
    with jobtui.eager():
        job = jobtui.enqueue("eager.callback_required", args=[3])
    assert (job.status, job.result) == ("completed", 3), job.error_message


def test_oversized_details_are_dropped_with_a_note_not_a_failure(db, detail_tasks):
    with jobtui.eager():
        job = jobtui.enqueue("eager.dropped")
    assert job.status == "completed"
    (note,) = jobtui.poll(job.id).progress_details.values()
    assert "dropped" in note and "4,096" in note
