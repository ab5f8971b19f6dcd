"""The audit log on both engines: every operator action of the Python API and of the
console's operations writes exactly one row, in the action's own transaction; a failed
action (an unknown id, a refused transition) writes none."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hostile import HOSTILE

import jobtui
from jobtui.models import Job, JobAttempt, audit
from jobtui.models.actions import RetryEdit, edit_and_retry
from jobtui.models.audit import AuditEntry, list_audit, prune_audit
from jobtui.models.clock import utcnow
from jobtui.models.errors import InvalidJob, InvalidTransition, JobNotFound
from jobtui.models.scheduling import upsert_schedule
from jobtui.tui.operations import Operations, RetryRequest


def rows() -> list[AuditEntry]:
    return list(AuditEntry.select().order_by(AuditEntry.id))


def failed_job(task: str = "t.task", **fields) -> str:
    job = jobtui.enqueue(task, args=[1, "a"], kwargs={"k": True}, **fields)
    Job.update(status="failed", attempt=1, error_message="boom", failed_at=utcnow()).where(
        Job.id == job.id).execute()  # fmt: skip
    JobAttempt.insert(job=job.id, attempt=1, outcome="failed", error_message="boom").execute()
    return job.id


def running_job() -> str:
    job = jobtui.enqueue("t.task")
    Job.update(status="running", attempt=1, lease_token="x", started_at=utcnow()).where(
        Job.id == job.id).execute()  # fmt: skip
    return job.id


# --------------------------------------------------------------------- the API


API_ACTIONS = {
    "cancel": lambda: jobtui.cancel(jobtui.enqueue("t.task").id, actor="deploy-bot"),
    "kill": lambda: jobtui.cancel(running_job(), kill=True, actor="deploy-bot"),
    "retry": lambda: jobtui.retry(failed_job(), actor="deploy-bot"),
    "edit": lambda: jobtui.retry(failed_job(), kwargs={"k": False}, actor="deploy-bot"),
    "schedule add": lambda: jobtui.schedule("nightly", "0 2 * * *", "t.task", actor="deploy-bot"),
}


def test_the_asyncio_api_takes_actor_and_edits(db):
    import asyncio

    from jobtui import aio

    job_id = failed_job()
    job = asyncio.run(aio.retry(job_id, args=[7], actor="async-bot"))
    assert job.parameters["args"] == [7]
    asyncio.run(aio.cancel(job_id, actor="async-bot"))
    assert [(r.action, r.where, r.actor) for r in rows()] == [("edit", "api", "async-bot"),
                                                             ("cancel", "api", "async-bot")]  # fmt: skip


def test_the_seed_model_methods_are_audited_too(db):
    """``Job.cancel_job`` and ``Job.cleanup_old_jobs`` (seed 000's names) are API actions."""
    job = Job.get_by_id(jobtui.enqueue("t.task").id)
    job.cancel_job("not needed")
    Job.update(updated_at=utcnow() - timedelta(days=30)).where(Job.id == job.id).execute()
    assert Job.cleanup_old_jobs(days=7) == 1
    assert [(r.action, r.where, r.count) for r in rows()] == [("cancel", "api", 1),
                                                             ("purge", "api", 1)]  # fmt: skip
    assert rows()[0].arguments == {"reason": "not needed"}


@pytest.mark.parametrize("action", list(API_ACTIONS))
def test_each_api_action_writes_one_row_with_its_actor(db, action):
    API_ACTIONS[action]()
    [row] = rows()
    assert (row.action, row.where, row.actor) == (action, "api", "deploy-bot")
    assert row.host and row.at is not None
    assert row.count == (None if action == "schedule add" else 1)


def test_without_actor_the_os_user_is_recorded(db):
    jobtui.cancel(jobtui.enqueue("t.task").id)
    [row] = rows()
    assert (row.actor, row.host) == audit.os_identity()


@pytest.mark.parametrize("action", ["cancel", "retry", "edit", "kill", "schedule"])
def test_a_failed_api_action_writes_none(db, action):
    done = jobtui.enqueue("t.task")
    Job.update(status="completed").where(Job.id == done.id).execute()
    with pytest.raises((JobNotFound, InvalidTransition, InvalidJob)):
        if action == "cancel":
            jobtui.cancel("no-such-id")
        elif action == "retry":
            jobtui.retry("no-such-id")
        elif action == "edit":
            jobtui.retry(done.id, args=[2])  # completed: not retried
        elif action == "kill":
            jobtui.cancel("0" * 36, kill=True)
        else:
            jobtui.schedule("bad", "not a cron", "t.task")
    assert rows() == []


def test_a_refused_transition_changes_nothing_and_writes_none(db):
    done = jobtui.enqueue("t.task")
    Job.update(status="completed").where(Job.id == done.id).execute()
    jobtui.cancel(done.id)  # already ended: nothing to cancel
    jobtui.retry(done.id)  # not failed or cancelled: nothing to retry
    assert rows() == []


# --------------------------------------------------------------------- the console


def _console_actions(db) -> dict:
    ops = Operations(db)
    upsert_schedule("sched", "0 2 * * *", "t.task", db=db)
    return {
        "cancel": lambda: ops.cancel([jobtui.enqueue("t.task").id]),
        "kill": lambda: ops.kill([j := running_job()], {j: "running"}),
        "retry": lambda: ops.retry([failed_job()]),
        "edit": lambda: ops.edit_retry(failed_job(), RetryRequest([5], None, 3, "other")),
        "delete": lambda: ops.delete([jobtui.enqueue("t.task").id]),
        "priority": lambda: ops.change_priority([jobtui.enqueue("t.task").id], 1),
        "pause": lambda: ops.set_paused("default", True),
        "resume": lambda: ops.set_paused("default", False),
        "schedule pause": lambda: ops.set_schedule_enabled("sched", False),
        "schedule resume": lambda: ops.set_schedule_enabled("sched", True),
        "schedule run-now": lambda: ops.run_schedule_now("sched"),
    }


CONSOLE_ACTIONS = ["cancel", "kill", "retry", "edit", "delete", "priority", "pause", "resume",
                   "schedule pause", "schedule resume", "schedule run-now"]  # fmt: skip


@pytest.mark.parametrize("action", CONSOLE_ACTIONS)
def test_each_console_action_writes_one_row(db, action):
    outcome = _console_actions(db)[action]()
    assert outcome.severity != "error", outcome.message
    [row] = rows()
    assert (row.action, row.where) == (action, "console")
    assert (row.actor, row.host) == audit.os_identity()


def test_failed_console_actions_write_none(db):
    ops = Operations(db)
    done = jobtui.enqueue("t.task")
    Job.update(status="completed").where(Job.id == done.id).execute()
    assert ops.cancel([done.id]).severity == "warning"
    assert ops.retry([done.id]).severity == "warning"
    assert ops.delete([running_job()]).severity == "warning"
    assert ops.change_priority([done.id], 1).severity == "warning"
    assert ops.run_schedule_now("no-such-schedule").severity == "error"
    assert ops.set_schedule_enabled("no-such-schedule", True).severity == "error"
    assert ops.edit_retry(done.id, RetryRequest([1], None, None, None)).severity == "error"
    assert ops.edit_retry("no-such-id", RetryRequest([1], None, None, None)).severity == "error"
    assert rows() == []


def test_bulk_actions_count_the_jobs_and_list_the_first_ids(db):
    ids = [jobtui.enqueue("t.task").id for _ in range(audit.IDS_KEPT + 5)]
    done = jobtui.enqueue("t.task")
    Job.update(status="completed").where(Job.id == done.id).execute()
    Operations(db).cancel([*ids, done.id])
    [row] = rows()
    assert row.count == len(ids) and row.target == f"{len(ids)} jobs"
    assert row.arguments["ids"] == ids[: audit.IDS_KEPT]  # the ones changed, not the skipped
    assert row.arguments["ids_not_listed"] == 5


# --------------------------------------------------------------------- edit and retry


def test_edit_keeps_the_old_parameters_on_the_attempts(db):
    job_id = failed_job(unique_key="u-1")
    job = jobtui.retry(job_id, args=[2], priority=9, queue="fixes")
    assert job.status == "pending" and job.retry_count == 0
    assert job.parameters == {"args": [2], "kwargs": {"k": True}}  # kwargs kept
    assert (job.priority, job.queue_name) == (9, "fixes")
    [attempt] = JobAttempt.select().where(JobAttempt.job == job_id)
    assert attempt.parameters == {"args": [1, "a"], "kwargs": {"k": True}}
    [row] = rows()
    assert row.arguments["was"] == {"args": [1, "a"], "kwargs": {"k": True}}
    assert row.arguments["args"] == [2] and row.arguments["queue"] == "fixes"
    # a second edit leaves the first attempt's record alone
    Job.update(status="cancelled").where(Job.id == job_id).execute()
    jobtui.retry(job_id, kwargs={})
    [attempt] = JobAttempt.select().where(JobAttempt.job == job_id)
    assert attempt.parameters == {"args": [1, "a"], "kwargs": {"k": True}}


def test_edit_of_a_live_job_is_refused_and_changes_nothing(db):
    job_id = running_job()
    with pytest.raises(InvalidTransition, match="only a failed or cancelled job"):
        edit_and_retry(job_id, RetryEdit(args=[9]))
    assert Job.get_by_id(job_id).parameters == {"args": [], "kwargs": {}}
    assert rows() == []


def test_edit_refuses_a_unique_key_a_live_job_holds(db):
    old = failed_job(unique_key="k")
    jobtui.enqueue("t.task", unique_key="k")  # a live job took the key since
    with pytest.raises(InvalidTransition, match="unique key"):
        jobtui.retry(old, args=[3])
    assert Job.get_by_id(old).status == "failed" and rows() == []
    assert JobAttempt.get(JobAttempt.job == old).parameters is None  # stamp rolled back


@pytest.mark.parametrize("edit", [{"args": {"a": 1}}, {"kwargs": [1]}, {"priority": "high"},
                                  {"queue": " "}, {"args": [float("nan")]}])  # fmt: skip
def test_edit_validates_the_shape(db, edit):
    job_id = failed_job()
    with pytest.raises(InvalidJob):
        jobtui.retry(job_id, **edit)
    assert Job.get_by_id(job_id).status == "failed" and rows() == []


def test_edit_checks_the_signature_of_a_registered_task(db):
    @jobtui.task(name="tests.audit.sig")
    def sig(a: int, b: int = 2, progress_callback=None) -> int:
        return a + b

    job_id = failed_job("tests.audit.sig")
    with pytest.raises(InvalidJob, match="unexpected keyword argument 'c'|got an unexpected"):
        jobtui.retry(job_id, args=[1], kwargs={"c": 3})
    with pytest.raises(InvalidJob, match="missing a required argument"):
        jobtui.retry(job_id, args=[], kwargs={})
    assert rows() == []
    assert jobtui.retry(job_id, args=[1], kwargs={"b": 5}).status == "pending"


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_text_round_trips(db, name):
    text = HOSTILE[name]
    job_id = failed_job()
    jobtui.retry(job_id, args=[text], kwargs={text: text}, actor=text)
    [row] = rows()
    assert row.actor == text.replace("\x00", "\ufffd")[:200]  # PostgreSQL text holds no NUL
    assert row.arguments["args"] == [text]
    assert row.arguments["kwargs"] == {text: text}


# --------------------------------------------------------------------- plumbing


def test_scope_sets_where_and_a_call_overrides_it(db):
    with audit.scope(where="cli", actor="ops"):
        audit.record("pause", "q1")
        with audit.scope(where="console"):
            audit.record("pause", "q2")
        audit.record("pause", "q3", where="api", actor="me")
    assert [(r.where, r.actor) for r in rows()] == [("cli", "ops"), ("console", "ops"),
                                                    ("api", "me")]  # fmt: skip
    with pytest.raises(ValueError, match="where is one of"):
        audit.record("pause", "q", where="web")


def test_a_raising_action_rolls_its_row_back(db):
    def boom():
        audit.record("inner", "x", db=db)  # written, then rolled back with the action
        raise RuntimeError("the action failed")

    with pytest.raises(RuntimeError):
        audit.audited("pause", "q", boom, db=db)
    assert rows() == []


def test_list_since_and_prune(db):
    for n in range(3):
        audit.record("pause", f"q{n}")
    AuditEntry.update(at=utcnow() - timedelta(days=100)).where(AuditEntry.target == "q0").execute()
    assert [r.target for r in list_audit()] == ["q2", "q1", "q0"]
    assert [r.target for r in list_audit(since=utcnow() - timedelta(hours=1))] == ["q2", "q1"]
    assert prune_audit(older_than=timedelta(days=90)) == 1
    assert [r.target for r in list_audit()] == ["q2", "q1"]
