"""The task catalog (issue 13, item 1) on SQLite and PostgreSQL: supervisors publish their
tasks, every enqueue by name applies the catalog's defaults to what its caller left unset,
and the row says which options those were so the supervisor's own defaults decide them."""

from __future__ import annotations

from datetime import timedelta

import jobtui
from jobtui.models import Job, Supervisor, claim_jobs
from jobtui.models.catalog import (
    UNSET_MAX_RETRIES,
    UNSET_PRIORITY,
    UNSET_QUEUE,
    UNSET_QUEUE_UNRESOLVED,
    UNSET_TIMEOUT,
    list_catalog,
    task_defaults,
)
from jobtui.models.clock import utcnow
from jobtui.models.outcomes import Outcome, write_outcomes
from jobtui.models.retry import RetryPolicy
from jobtui.models.scheduling import run_schedule_now
from jobtui.registry import Task, TaskRegistry
from jobtui.supervisor.catalog import TaskSettings, publish_catalog
from jobtui.supervisor.config import SupervisorConfig, WorkerGroup

UX = {"queue": "ux", "max_retries": 0, "priority": 7, "timeout": 30, "retry_delay": 1}


def _noop() -> None:
    pass


def registry_of(**tasks: dict) -> TaskRegistry:
    registry = TaskRegistry()
    for name, defaults in tasks.items():
        registry.register(Task(func=_noop, name=name.replace("__", "."), defaults=defaults))
    return registry


def config(name: str = "sup-a", host: str = "h1", **options) -> SupervisorConfig:
    return SupervisorConfig(imports=("app",), groups=(WorkerGroup(None, 1),), name=name,
                            host=host, **options)  # fmt: skip


def publish(db, name: str = "sup-a", alive: bool = True, **tasks: dict) -> None:
    """What a supervisor's start does: its row (while it runs) and its catalog rows."""
    if alive:
        Supervisor.create(name=name, host="h1", pid=1, heartbeat_at=utcnow())
    publish_catalog(db, config(name), registry_of(**tasks))


def test_an_enqueue_by_name_takes_the_catalogs_defaults_for_what_it_left_unset(db):
    publish(db, app__ux=UX)
    job = jobtui.enqueue("app.ux")  # this process never imported app.ux
    assert (job.queue_name, job.max_retries, job.priority, job.timeout, job.retry_delay) == (
        "ux", 0, 7, 30, 1)  # fmt: skip
    assert job.unset_options & (UNSET_QUEUE | UNSET_MAX_RETRIES | UNSET_TIMEOUT)
    assert not job.unset_options & UNSET_QUEUE_UNRESOLVED
    stored = Job.get_by_id(job.id)
    assert (stored.queue_name, stored.max_retries, stored.unset_options) == (
        "ux", 0, job.unset_options)  # fmt: skip


def test_the_callers_own_options_win_and_are_marked_as_its_own(db):
    publish(db, app__ux=UX)
    job = jobtui.enqueue("app.ux", queue="other", max_retries=2, priority=0)
    assert (job.queue_name, job.max_retries, job.priority, job.timeout) == ("other", 2, 0, 30)
    assert not job.unset_options & (UNSET_QUEUE | UNSET_MAX_RETRIES | UNSET_PRIORITY)
    assert job.unset_options & UNSET_TIMEOUT  # not given: the task's, as the catalog knows it


def test_enqueue_many_batches_schedules_and_create_job_take_the_catalogs_defaults(db):
    schedule_made_first = jobtui.schedule("every-minute", "* * * * *", "app.ux")
    assert schedule_made_first is not None
    publish(db, app__ux=UX)
    many = jobtui.enqueue_many("app.ux", [{"args": [1]}, {"args": [2], "queue": "mine"}])
    assert [j.queue_name for j in many] == ["ux", "mine"]
    assert [j.max_retries for j in many] == [0, 0]
    with jobtui.batch() as b:
        jobtui.enqueue("app.ux", args=[3])
    (in_batch,) = Job.select().where(Job.batch_id == b.id)
    fired = Job.get_by_id(run_schedule_now("every-minute"))
    seed = Job.create_job("app.ux")
    for job in (in_batch, fired, seed):
        assert (job.queue_name, job.max_retries) == ("ux", 0), job.job_type


def test_the_catalog_outlives_its_supervisors_and_says_who_served_each_task(db):
    publish(db, "old", alive=False, app__ux={"queue": "slow"}, app__gone={})
    publish(db, "new", app__ux=UX)
    entries = {e["name"]: e for e in list_catalog()}
    assert set(entries) == {"app.ux", "app.gone"}
    ux = entries["app.ux"]
    assert (ux["queue"], ux["max_retries"], ux["alive"]) == ("ux", 0, True)  # the live one's
    assert {(s["name"], s["alive"]) for s in ux["supervisors"]} == {("old", False), ("new", True)}
    assert all(s["last_seen"] for s in ux["supervisors"])
    assert entries["app.gone"]["alive"] is False
    Supervisor.delete().execute()  # every supervisor stopped: the defaults stay
    assert task_defaults("app.ux") is not None
    assert jobtui.enqueue("app.ux").queue_name in ("ux", "slow")
    publish(db, "new", app__other={})  # a reload that dropped the task
    names = {e["name"]: {s["name"] for s in e["supervisors"]} for e in list_catalog()}
    assert names == {"app.ux": {"old"}, "app.gone": {"old"}, "app.other": {"new"}}


def test_a_job_enqueued_before_its_task_was_published_moves_to_its_queue(db):
    waiting = jobtui.enqueue("app.ux")
    chosen = jobtui.enqueue("app.ux", queue="mine")
    assert (waiting.queue_name, waiting.max_retries) == ("default", 3)  # placeholders
    assert waiting.unset_options & UNSET_QUEUE_UNRESOLVED
    assert not chosen.unset_options & UNSET_QUEUE_UNRESOLVED
    publish(db, app__ux=UX)  # a supervisor that registers the task starts
    moved = Job.get_by_id(waiting.id)
    assert moved.queue_name == "ux" and not moved.unset_options & UNSET_QUEUE_UNRESOLVED
    assert Job.get_by_id(chosen.id).queue_name == "mine"
    assert [c.id for c in claim_jobs(5, queues=["ux"])] == [waiting.id]


def _fail(claimed, policy: RetryPolicy | None) -> str | None:
    outcome = Outcome(job_id=claimed.id, attempt=claimed.attempt,
                      lease_token=claimed.lease_token, kind="failed", error="boom",
                      task_policy=policy)  # fmt: skip
    return write_outcomes([outcome])[0]


def test_the_supervisors_defaults_decide_the_options_a_job_left_unset(db):
    """Precedence: the job's own option, the task's, the supervisor's --default-*,
    built-in — as the supervisor resolves it at outcome and dispatch time."""
    settings = TaskSettings(
        registry_of(app__ux={"max_retries": 0}, app__plain={}),
        config(default_max_retries=1, default_retry_delay_s=60, default_timeout_s=5),
    )
    unset = jobtui.enqueue("app.ux")  # no catalog: the row holds max_retries 3, unset
    own = jobtui.enqueue("app.ux", max_retries=2, timeout=9)
    plain = jobtui.enqueue("app.plain")
    claimed = {c.id: c for c in claim_jobs(10)}
    assert settings.timeout_for(claimed[unset.id]) == 5  # the supervisor's: the task has none
    assert settings.timeout_for(claimed[own.id]) == 9
    assert _fail(claimed[unset.id], settings.policy("app.ux")) == "failed"  # the task's 0
    assert _fail(claimed[own.id], settings.policy("app.ux")) == "retrying"  # the job's 2
    assert _fail(claimed[plain.id], settings.policy("app.plain")) == "retrying"
    row = Job.get_by_id(plain.id)
    assert row.max_retries == 1  # the supervisor's --default-max-retries, written back
    delay = (row.next_retry_at - utcnow()).total_seconds()
    assert 25 < delay <= 60  # --default-retry-delay 60 s, jittered into [30, 60]
    assert Job.get_by_id(unset.id).max_retries == 0


def test_get_pending_jobs_filters_by_task(db):
    a = jobtui.enqueue("app.a")
    jobtui.enqueue("app.b")
    jobtui.enqueue("app.a", delay=timedelta(hours=1))  # not due yet
    assert [j.id for j in Job.get_pending_jobs(job_type="app.a")] == [a.id]
    assert len(Job.get_pending_jobs()) == 2


def test_log_level_is_carried_by_the_catalog_but_is_no_option_of_a_job(db):
    registry = TaskRegistry()
    registry.register(Task(func=_noop, name="app.verbose", defaults={"queue": "ux"},
                           log_level=10))  # fmt: skip
    Supervisor.create(name="sup-a", host="h1", pid=1, heartbeat_at=utcnow())
    publish_catalog(db, config(), registry)
    entry = next(t for t in list_catalog() if t["name"] == "app.verbose")
    assert entry["log_level"] == "DEBUG" and entry["defaults"]["log_level"] == "DEBUG"
    job = jobtui.enqueue("app.verbose")  # enqueued by name: log_level is not a job's option
    assert job.queue_name == "ux"


def test_task_log_level_takes_names_and_numbers_and_refuses_the_rest():
    import pytest

    from jobtui.registry import task

    assert task(name="t.lv1", log_level="debug")(_noop).log_level == 10
    assert task(name="t.lv2", log_level=30)(_noop).log_level == 30
    assert task(name="t.lv3")(_noop).log_level is None
    with pytest.raises(TypeError, match="log_level must be one of"):
        task(name="t.lv4", log_level="LOUD")


def test_jobs_of_a_task_of_the_default_queue_are_not_rewritten(db):
    """A task that names no queue sends its jobs to ``default``, where the early ones
    already wait: publishing it rewrites none of them (a first start behind a backlog
    enqueued before it paid a row write each), and a later version that names a queue
    still moves the ones that have not run."""
    early = [jobtui.enqueue("app.plain").id for _ in range(3)]
    publish(db, app__plain={})
    rows = list(Job.select().where(Job.id.in_(early)))
    assert {(r.queue_name, bool(r.unset_options & UNSET_QUEUE_UNRESOLVED)) for r in rows} == {
        ("default", True)}  # fmt: skip
    (ran,) = claim_jobs(1, queues=["default"])  # the early ones run from default meanwhile
    publish(db, "sup-b", app__plain=UX)  # the next version names a queue
    queues = {j.id: j.queue_name for j in Job.select().where(Job.id.in_(early))}
    assert queues.pop(ran.id) == "default"  # running: it stays
    assert set(queues.values()) == {"ux"}
