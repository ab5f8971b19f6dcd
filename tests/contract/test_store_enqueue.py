"""Enqueueing, the Job model's seed methods, unique keys, the app's transaction, schema."""

from __future__ import annotations

from datetime import timedelta

import peewee
import pytest

import jobtui
from jobtui import InvalidJob, Priority, task
from jobtui.models import SCHEMA_VERSION, Job, SchemaTooNew, claim_jobs, store
from jobtui.models.clock import utcnow
from jobtui.models.db import open_database
from jobtui.models.job import CLAIM_INDEX_SQL_V7
from jobtui.registry import registry


@pytest.fixture
def email_task():
    @task(name="tests.send_email", queue="emails", max_retries=5, priority=3, timeout=60)
    def send_email(to: str) -> dict:
        return {"sent": to}

    yield send_email
    registry._tasks.pop("tests.send_email", None)


def test_task_defaults_apply_and_a_call_overrides_them(db, email_task):
    job = email_task.enqueue("a@x")
    assert (job.job_type, job.queue_name, job.max_retries, job.priority, job.timeout) == (
        "tests.send_email", "emails", 5, 3, 60)  # fmt: skip
    assert job.args == ["a@x"] and job.kwargs == {}
    job = jobtui.enqueue(email_task, args=["b@x"], priority=Priority.CRITICAL, queue="vip")
    assert (job.priority, job.queue_name, job.max_retries) == (20, "vip", 5)
    by_name = jobtui.enqueue("tests.send_email", kwargs={"to": "c@x"})
    assert by_name.queue_name == "emails"


def test_enqueue_options_are_stored(db):
    dep = jobtui.enqueue("t")
    job = jobtui.enqueue(
        "t", args=[1], kwargs={"k": "v"}, queue="q", priority=7, delay=30, max_retries=1,
        timeout=5, depends_on=[dep.id], reference=("order", 42), user_id="u1",
        unique_key="k1", tags=["billing"], metadata={"source": "checkout"}, title="Receipt",
    )  # fmt: skip
    row = Job.get_by_id(job.id)
    assert row.parameters == {"args": [1], "kwargs": {"k": "v"}}
    assert (row.queue_name, row.priority, row.max_retries, row.timeout) == ("q", 7, 1, 5)
    assert (row.reference_type, row.reference_id, row.user_id) == ("order", "42", "u1")
    assert row.tags == ["billing"] and row.metadata == {"source": "checkout"}
    assert row.title == "Receipt" and row.status == "waiting" and row.depends_on == [dep.id]
    assert timedelta(seconds=29) < row.scheduled_for - row.created_at < timedelta(seconds=31)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"args": [object()]}, "not JSON-serialisable"),
        ({"kwargs": {"x": {1, 2}}}, "not JSON-serialisable"),
        ({"args": [float("nan")]}, "not JSON-serialisable"),
        ({"delay": -1}, "delay must be >= 0"),
        ({"priority": 1.5}, "priority must be an integer"),
        ({"priority": "3"}, "priority must be an integer"),
        ({"priority": True}, "priority must be an integer"),
        ({"depends_on": ["01a2ffff-0000-7000-8000-000000000000"]}, "unknown job"),
        ({"timeout": 0}, "timeout must be > 0"),
        ({"max_retries": -1}, "max_retries must be >= 0"),
        ({"title": "x" * 201}, "longer than 200"),
    ],
)
def test_bad_input_is_refused_and_nothing_written(db, kwargs, message):
    with pytest.raises(InvalidJob, match=message):
        jobtui.enqueue("t", **kwargs)
    assert Job.select().count() == 0


@pytest.mark.parametrize("name", ["", "   ", None, 5])
def test_an_empty_task_name_is_refused(db, name):
    with pytest.raises(InvalidJob, match="task name"):
        jobtui.enqueue(name)
    assert Job.select().count() == 0


def test_enqueue_many_is_one_transaction(db):
    jobs = jobtui.enqueue_many("t", [{"args": [1]}, {"kwargs": {"a": 2}, "priority": 5}], queue="q")
    assert [(j.args, j.kwargs, j.priority, j.queue_name) for j in jobs] == [
        ([1], {}, 0, "q"), ([], {"a": 2}, 5, "q")]  # fmt: skip
    with pytest.raises(InvalidJob):
        jobtui.enqueue_many("t", [{"args": [1]}, {"args": [object()]}])
    assert Job.select().count() == 2


def test_unique_key_returns_the_live_job_then_allows_a_new_one(db):
    first = jobtui.enqueue("t", unique_key="mail:42")
    again = jobtui.enqueue("t", unique_key="mail:42", priority=9)
    assert again.id == first.id and Job.select().count() == 1
    claimed = claim_jobs(1)[0]
    assert jobtui.enqueue("t", unique_key="mail:42").id == first.id  # running is live too
    jobtui.models.complete_job(first.id, claimed.attempt, claimed.lease_token, None)
    fresh = jobtui.enqueue("t", unique_key="mail:42")
    assert fresh.id != first.id and Job.select().count() == 2


def test_enqueue_joins_the_applications_transaction(db, db_url):
    app_db = open_database(db_url)
    app_db.connect()
    try:
        with app_db.atomic() as txn:
            kept = jobtui.enqueue("t", database=app_db)
        with app_db.atomic() as txn:
            dropped = jobtui.enqueue("t", database=app_db)
            txn.rollback()
    finally:
        app_db.close()
    assert Job.get_or_none(Job.id == kept.id) is not None
    assert Job.get_or_none(Job.id == dropped.id) is None


def test_seed_methods(db):
    job = Job.create_job("reports.build", args=["daily"], user_id="u7", reference=("report", 9))
    assert job.status == "pending" and not job.is_completed() and job.can_retry()
    assert [j.id for j in Job.get_pending_jobs()] == [job.id]
    assert [j.id for j in Job.get_user_jobs("u7")] == [job.id]
    assert [j.id for j in Job.get_by_reference("report", 9)] == [job.id]
    job.mark_as_started(worker_name="w1")
    assert job.status == "running" and job.attempt == 1 and job.worker_name == "w1"
    assert job.update_progress(150, "over") and job.progress_percentage == 100
    assert Job.get_by_id(job.id).progress_message == "over"
    assert job.update_progress(60, "rows", details={"rows": 3}) and job.progress_details
    assert Job.get_by_id(job.id).progress_details == {"rows": 3}
    job.mark_as_completed({"rows": 3})
    assert job.is_completed() and job.result == {"rows": 3}
    assert job.get_execution_time() >= timedelta(0)
    other = Job.create_job("t", max_retries=1)
    other.mark_as_started()
    other.mark_as_failed("first")
    assert other.status == "retrying" and other.retry_count == 1 and other.next_retry_at
    other = Job.get_by_id(other.id)
    other.mark_as_started()
    other.mark_as_failed("second", "Traceback ...")
    assert other.is_failed() and not other.can_retry() and other.error_traceback
    assert [j.id for j in Job.get_failed_jobs()] == [other.id]
    third = Job.create_job("t")
    third.mark_as_started()
    third.schedule_retry(delay=60)
    assert third.status == "retrying" and third.next_retry_at > utcnow()
    fourth = Job.create_job("t")
    assert fourth.cancel_job().status == "cancelled"
    data = job.to_dict()
    assert data["completed_at"].endswith("+00:00") and "lease_token" not in data


def test_cleanup_old_jobs_keeps_failed_and_recent(db):
    old_done = Job.create_job("t")
    old_done.mark_as_started()
    old_done.mark_as_completed(1)
    recent = Job.create_job("t")
    recent.mark_as_started()
    recent.mark_as_completed(1)
    failed = Job.create_job("t", max_retries=0)
    failed.mark_as_started()
    failed.mark_as_failed("x")
    past = utcnow() - timedelta(days=30)
    Job.update(updated_at=past).where(Job.id.in_([old_done.id, failed.id])).execute()
    assert Job.cleanup_old_jobs(7) == 1
    assert {j.id for j in Job.select()} == {recent.id, failed.id}
    assert Job.cleanup_old_jobs(7, include_failed=True) == 1


def test_fresh_database_gets_the_current_schema_and_reopening_is_a_no_op(db, db_url):
    version = db.execute_sql("SELECT version FROM jobtui_schema").fetchone()[0]
    assert version == SCHEMA_VERSION
    store.reset()
    assert store.use_database(db_url) is not None
    assert db.execute_sql("SELECT COUNT(*) FROM jobtui_schema").fetchone()[0] == 1


NEW_SINCE_VERSION_1 = [("jobs", "cancel_reason"), ("jobs", "kill_requested"),
                       ("supervisors", "heartbeat_interval_s"),  # version 3
                       ("jobs", "progress_details"),  # version 4
                       ("jobs", "unset_options"),  # version 5
                       ("supervisors", "schema_version"),  # version 7
                       ("job_attempts", "parameters"),  # version 8
                       ("jobs", "crash_count"), ("supervisors", "scale_request"),
                       ("supervisors", "autoscale"),  # version 9
                       ("jobs", "trace_context"),  # version 10
                       ("jobs", "rate_key"), ("jobs", "concurrency_key"),  # version 12
                       ("jobs", "fair_key"), ("jobs", "base_priority"),
                       ("queues", "priority_aging_s"), ("queues", "aged_at")]  # version 13  # fmt: skip


def test_a_version_1_database_migrates_forward_keeping_its_jobs(db, db_url):
    job = jobtui.enqueue("t")
    db.execute_sql("CREATE INDEX job_attempts_job_id ON job_attempts (job_id)")  # as v1 had
    db.execute_sql("DROP INDEX jobs_unresolved_queue")  # version 5's
    db.execute_sql("DROP INDEX jobs_claim_keyed")  # version 12's
    db.execute_sql("DROP INDEX jobs_staged")  # version 16's, and its task index as v1 had it
    db.execute_sql("DROP INDEX jobs_job_type_id")
    db.execute_sql("CREATE INDEX jobs_job_type_id ON jobs (job_type, id)")
    db.execute_sql("DROP TABLE task_catalog")
    for index in ("jobs_fair_claim", "jobs_claim_queue", "jobs_claim_order"):  # version 13's
        db.execute_sql(f"DROP INDEX {index}")
    for statement in CLAIM_INDEX_SQL_V7:
        db.execute_sql(statement)
    db.execute_sql("DROP TABLE fair_keys")
    for table, column in NEW_SINCE_VERSION_1:
        db.execute_sql(f"ALTER TABLE {table} DROP COLUMN {column}")
    db.execute_sql("DROP TABLE job_rollup")  # version 6
    db.execute_sql("DROP TABLE audit_log")  # version 8
    db.execute_sql("DROP TABLE alerts")  # version 10
    db.execute_sql("DROP TABLE job_logs")  # version 11
    db.execute_sql("DROP TABLE job_stack_requests")  # version 11
    db.execute_sql("DROP TABLE rates")  # version 12
    db.execute_sql("DROP TABLE key_limits")  # version 12
    db.execute_sql("UPDATE jobtui_schema SET version = 1")
    store.reset()
    store.use_database(db_url)
    assert db.execute_sql("SELECT version FROM jobtui_schema").fetchone()[0] == SCHEMA_VERSION
    assert "job_attempts_job_id" not in {i.name for i in db.get_indexes("job_attempts")}
    for table, column in NEW_SINCE_VERSION_1:
        assert column in {c.name for c in db.get_columns(table)}
    row = Job.get_by_id(job.id)
    assert row.status == "pending" and row.cancel_reason is None and not row.kill_requested
    assert row.progress_details is None
    assert row.unset_options == 0  # an older job's options count as its own, as before
    assert row.crash_count == 0
    assert db.table_exists("task_catalog") and db.table_exists("audit_log")
    assert db.table_exists("job_logs") and db.table_exists("job_stack_requests")
    assert db.table_exists("rates") and db.table_exists("key_limits")
    assert "jobs_unresolved_queue" in {i.name for i in db.get_indexes("jobs")}
    assert "jobs_claim_keyed" in {i.name for i in db.get_indexes("jobs")}
    assert "jobs_fair_claim" in {i.name for i in db.get_indexes("jobs")}
    assert db.table_exists("fair_keys")
    run = claim_jobs(1)[0]
    assert jobtui.models.complete_job(run.id, run.attempt, run.lease_token, 1)
    assert db.execute_sql("SELECT SUM(completed) FROM job_rollup").fetchone()[0] == 1


def test_a_newer_schema_is_refused_and_left_untouched(db, db_url):
    jobtui.enqueue("t")
    db.execute_sql("UPDATE jobtui_schema SET version = 999")
    store.reset()
    with pytest.raises(SchemaTooNew, match="newer jobtui"):
        store.use_database(db_url)
    check = open_database(db_url)
    try:
        assert check.execute_sql("SELECT version FROM jobtui_schema").fetchone()[0] == 999
        assert check.execute_sql("SELECT COUNT(*) FROM jobs").fetchone()[0] == 1
    finally:
        check.close()


def test_queue_stats(db):
    jobtui.enqueue("t", queue="a")
    jobtui.enqueue("t", queue="a", delay=600)
    jobtui.enqueue("t", queue="b")
    claim_jobs(1, queues=["b"])
    jobtui.models.set_queue_paused("a", True)
    stats = jobtui.queue_stats()
    assert stats["a"]["counts"]["pending"] == 2 and stats["a"]["paused"]
    assert stats["b"]["counts"]["running"] == 1 and not stats["b"]["paused"]
    assert stats["a"]["latency_s"] >= 0


def test_poll_and_wait(db):
    job = jobtui.enqueue("t")
    with pytest.raises(TimeoutError):
        jobtui.wait(job.id, timeout=0.05)
    c = claim_jobs(1)[0]
    jobtui.models.complete_job(job.id, c.attempt, c.lease_token, {"ok": True})
    assert jobtui.poll(job.id).status == "completed"
    assert jobtui.wait(job.id, timeout=1) == {"ok": True}
    with pytest.raises(jobtui.JobNotFound):
        jobtui.poll("01a2ffff-0000-7000-8000-000000000000")
    assert isinstance(db, peewee.Database)
