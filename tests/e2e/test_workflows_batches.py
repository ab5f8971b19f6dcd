"""Batches through three real supervisors finishing the last jobs at the same moment: the
callbacks are enqueued once each, on both engines."""

from __future__ import annotations

import pytest
from workflow_helpers import FAST, supervisors, wait_for

import jobtui
from jobtui import batch, batch_status
from jobtui.models import Job

TASKS = "workflow_tasks"
CALLBACK = f"{TASKS}.callback"
JOBS_PER_BATCH = 50
ROUNDS = 5


@pytest.mark.timeout(90)
def test_batch_callbacks_fire_once_under_three_supervisors(db, db_url, tmp_path):
    with supervisors(db_url, tmp_path) as group:
        group.start("--import", TASKS, "--workers", "2", "--poll-interval", "0.2", *FAST,
                    count=3)  # fmt: skip
        batches: dict[str, str] = {}  # batch id -> expected outcome
        for round_ in range(ROUNDS + 1):
            failing = round_ == ROUNDS
            with batch(on_success=CALLBACK, on_failure=CALLBACK, on_complete=CALLBACK) as b:
                for n in range(JOBS_PER_BATCH - failing):
                    # 2 ms each: one supervisor cannot drain them all between two of the
                    # others' turns, however busy the machine (SQLite's lock is not fair)
                    jobtui.enqueue(f"{TASKS}.item", args=[n, 0.002])
                if failing:
                    jobtui.enqueue(f"{TASKS}.refuse")
            batches[b.id] = "failure" if failing else "success"

        def callbacks_done():
            rows = list(Job.select().where(Job.job_type == CALLBACK))
            ended = all(r.status == "completed" for r in rows)
            return rows if ended and len(rows) >= 2 * len(batches) else None

        wait_for(callbacks_done, 60, 0.1, what="every batch's callbacks ran")
        # a duplicate would come from the same last moments: give it a poll to show up
        wait_for(lambda: not Job.select().where(Job.status != "completed",
                                                Job.status != "failed").exists(),
                 10, what="queue drained")  # fmt: skip
        logs = group.logs()
    rows = list(Job.select().where(Job.job_type == CALLBACK))
    calls = sorted((tuple(r.args), r.result) for r in rows)
    expected = sorted(
        [((bid, outcome), outcome) for bid, outcome in batches.items()]
        + [((bid, "complete"), "complete") for bid in batches]
    )
    assert calls == expected
    for bid, outcome in batches.items():
        status = batch_status(bid)
        assert (status["done"], status["total"], status["outcome"]) == (
            JOBS_PER_BATCH, JOBS_PER_BATCH, outcome)  # fmt: skip
        assert status["finished_at"] is not None
    ran_on = {r.supervisor_name for r in Job.select().where(Job.job_type == f"{TASKS}.item")}
    assert len(ran_on) >= 2  # the supervisors shared the work
    trouble = [line for line in logs.splitlines() if "loop error" in line or "deadlock" in line]
    assert trouble == [], logs


@pytest.mark.timeout(60)
def test_callbacks_are_enqueued_with_their_tasks_defaults(db, db_url, tmp_path):
    queued = f"{TASKS}.queued_callback"  # @task(queue="callbacks", priority=7)
    with supervisors(db_url, tmp_path) as group:
        group.start("--import", TASKS, "--workers", "2", "--poll-interval", "0.2", *FAST)
        with batch(on_success=queued, on_complete=CALLBACK) as empty:
            pass  # an empty batch: its callbacks are enqueued at exit, here
        with batch(on_success=queued) as full:
            jobtui.enqueue(f"{TASKS}.item", args=[1])  # enqueued by the supervisor at its end

        def ran():
            rows = list(Job.select().where(Job.job_type.in_([queued, CALLBACK])))
            return rows if len(rows) == 3 and all(r.status == "completed" for r in rows) else None

        rows = wait_for(ran, 15, 0.05, what="callbacks ran")
    calls = sorted((r.job_type, tuple(r.args), r.queue_name, r.priority) for r in rows)
    assert calls == sorted([
        (queued, (empty.id, "success"), "callbacks", 7),
        (CALLBACK, (empty.id, "complete"), "default", 0),
        (queued, (full.id, "success"), "callbacks", 7),
    ])  # fmt: skip


@pytest.mark.timeout(90)
def test_on_failure_fires_once_at_the_first_failure_not_at_the_end(db, db_url, tmp_path):
    """Laravel's ``catch``: on_failure runs while the batch's other jobs still run, with
    the first failed job's id and error; a later failure does not fire it again;
    on_complete follows the last job, on_success never (two supervisors)."""
    with supervisors(db_url, tmp_path) as group:
        group.start("--import", TASKS, "--workers", "2", "--poll-interval", "0.2", *FAST,
                    count=2)  # fmt: skip
        with batch(on_success=CALLBACK, on_failure=CALLBACK, on_complete=CALLBACK) as b:
            slow = jobtui.enqueue(f"{TASKS}.item", args=[1, 6.0])
            first = jobtui.enqueue(f"{TASKS}.refuse", args=["first refusal"])
        wait_for(lambda: Job.get_by_id(first.id).status == "failed", 15, what="first failed")
        # a second failure while the slow job still runs
        second = jobtui.enqueue(f"{TASKS}.refuse", args=["second refusal"], batch_id=b.id)

        def failure_callback_ran():
            rows = [r for r in Job.select().where(Job.job_type == CALLBACK)
                    if r.status == "completed" and r.args[1] == "failure"]  # fmt: skip
            return rows or None

        ran = wait_for(failure_callback_ran, 15, 0.05, what="on_failure ran")
        assert Job.get_by_id(slow.id).status == "running"  # before the batch's end
        assert batch_status(b.id)["finished_at"] is None
        wait_for(lambda: Job.get_by_id(slow.id).status == "completed", 30, what="slow done")

        def all_callbacks():
            rows = list(Job.select().where(Job.job_type == CALLBACK))
            done = all(r.status == "completed" for r in rows) and len(rows) >= 2
            return rows if done else None

        rows = wait_for(all_callbacks, 15, 0.05, what="on_complete ran")
        assert Job.get_by_id(second.id).status == "failed"
    assert len(ran) == 1
    assert (tuple(ran[0].args), ran[0].kwargs) == (
        (b.id, "failure"), {"job_id": first.id, "error": "first refusal"})  # fmt: skip
    assert sorted(tuple(r.args) for r in rows) == [(b.id, "complete"), (b.id, "failure")]
    assert batch_status(b.id)["outcome"] == "failure"
