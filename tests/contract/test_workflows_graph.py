"""Dependencies, batches and deadlines at the model level, on both engines.

Runs are driven by hand (``start_job`` / ``complete_job`` / ``fail_job``: the same
outcome path the supervisor's group commit takes). The races use a second thread, which
Peewee gives a connection of its own, while the main thread holds a transaction open.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

import jobtui
from jobtui import InvalidJob, batch, batch_status
from jobtui.models import Batch, Job, complete_job, fail_job, start_job
from jobtui.models.clock import sql_timestamp, utcnow
from jobtui.models.dialect import dialect_for
from jobtui.models.workflow import expire_jobs


def _status(job) -> str:
    return Job.get_by_id(job.id).status


def _complete(job, result=None) -> None:
    run = start_job(job.id)
    assert complete_job(run.id, run.attempt, run.lease_token, result)


def _fail(job, error="boom") -> None:
    run = start_job(job.id)
    assert fail_job(run.id, run.attempt, run.lease_token, error, permanent=True) == "failed"


def _callbacks() -> list[tuple[str, list]]:
    rows = Job.select().where(Job.job_type.startswith("cb.")).order_by(Job.job_type)
    return [(job.job_type, job.args) for job in rows]


# ------------------------------------------------------------------ dependencies


def test_a_chain_waits_and_is_promoted_link_by_link(db):
    a = jobtui.enqueue("t")
    b = jobtui.enqueue("t", depends_on=[a.id])
    c = jobtui.enqueue("t", depends_on=[b])  # a Job works as well as its id
    assert [_status(j) for j in (a, b, c)] == ["pending", "waiting", "waiting"]
    _complete(a)
    assert [_status(j) for j in (b, c)] == ["pending", "waiting"]
    _complete(b)
    assert _status(c) == "pending"


def test_a_job_runs_only_after_all_its_dependencies(db):
    a, b = jobtui.enqueue("t"), jobtui.enqueue("t")
    both = jobtui.enqueue("t", depends_on=[a.id, b.id])
    _complete(a)
    assert _status(both) == "waiting"
    _complete(b)
    assert _status(both) == "pending"
    assert jobtui.enqueue("t", depends_on=[a.id]).status == "pending"  # all done already


def test_a_failed_dependency_cancels_the_chain_with_the_reason(db):
    a = jobtui.enqueue("t")
    b = jobtui.enqueue("t", depends_on=[a.id])
    c = jobtui.enqueue("t", depends_on=[b.id])
    other = jobtui.enqueue("t")
    d = jobtui.enqueue("t", depends_on=[c.id, other.id])
    _fail(a)
    rows = {j.id: Job.get_by_id(j.id) for j in (b, c, d)}
    assert {r.status for r in rows.values()} == {"cancelled"}
    assert rows[b.id].error_message == f"dependency {a.id} failed"
    assert rows[c.id].error_message == f"dependency {b.id} cancelled"
    assert rows[d.id].error_message == f"dependency {c.id} cancelled"
    assert _status(other) == "pending"
    late = jobtui.enqueue("t", depends_on=[a.id])  # enqueued after the failure
    assert (late.status, late.error_message) == ("cancelled", f"dependency {a.id} failed")


def test_a_cancelled_dependency_cancels_its_dependants(db):
    a = jobtui.enqueue("t")
    b = jobtui.enqueue("t", depends_on=[a.id])
    jobtui.cancel(a.id)
    row = Job.get_by_id(b.id)
    assert (row.status, row.error_message) == ("cancelled", f"dependency {a.id} cancelled")


def test_an_unknown_dependency_is_refused_and_nothing_is_written(db):
    a = jobtui.enqueue("t")
    with pytest.raises(InvalidJob, match="unknown job.*no-such-id"):
        jobtui.enqueue("t", depends_on=[a.id, "no-such-id"])
    with pytest.raises(InvalidJob, match="depends_on takes job ids"):
        jobtui.enqueue("t", depends_on=[42])
    assert Job.select().count() == 1


@pytest.mark.parametrize("ending", ["completed", "failed"])
@pytest.mark.parametrize("first", [True, False], ids=["first", "second"])
def test_a_dependency_ending_while_a_dependant_is_enqueued(db, ending, first):
    """The dependency ends in another transaction while ours, which read it running,
    is still open: the dependant must not stay waiting for ever."""
    dep = jobtui.enqueue("t")
    run = start_job(dep.id)
    if not first:
        jobtui.enqueue("t", depends_on=[dep.id])  # an earlier dependant, committed
    ended = threading.Event()
    errors: list[BaseException] = []

    def end_dependency() -> None:
        try:
            if ending == "completed":
                complete_job(run.id, run.attempt, run.lease_token, 1)
            else:
                fail_job(run.id, run.attempt, run.lease_token, "boom", permanent=True)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            db.close()
            ended.set()

    with db.atomic():
        child = jobtui.enqueue("t", depends_on=[dep.id])
        assert child.status == "waiting"
        thread = threading.Thread(target=end_dependency)
        thread.start()
        ended.wait(0.3)  # a correct store makes it wait for our commit
    thread.join(30)
    assert not errors
    want = "pending" if ending == "completed" else "cancelled"
    assert _status(child) == want


# ------------------------------------------------------------------ batches


def test_batch_callbacks_on_success_and_progress(db):
    with batch(on_success="cb.ok", on_failure="cb.bad", on_complete="cb.done") as b:
        jobs = [jobtui.enqueue("t", args=[n]) for n in range(3)]
        jobtui.enqueue_many("t", [{"args": [n]} for n in range(2)])
    assert {j.batch_id for j in Job.select()} == {b.id}
    assert batch_status(b.id)["total"] == 5 and batch_status(b.id)["done"] == 0
    for job in Job.select().where(Job.batch_id == b.id).order_by(Job.id)[:4]:
        _complete(job)
    status = batch_status(b.id)
    assert (status["done"], status["total"], status["finished_at"]) == (4, 5, None)
    assert _callbacks() == []
    _complete(Job.select().where(Job.batch_id == b.id, Job.status == "pending").get())
    assert _callbacks() == [("cb.done", [b.id, "complete"]), ("cb.ok", [b.id, "success"])]
    status = batch_status(b.id)
    assert (status["done"], status["outcome"]) == (5, "success") and status["finished_at"]
    assert jobs[0].batch_id == b.id


def test_jobs_join_an_open_batch_later_and_never_a_finished_or_unknown_one(db):
    """The seed's batch->add: enqueue(..., batch_id=) after the block. The batch counts
    them and waits for them; a finished batch (its callbacks fired) or a made-up id is
    refused and nothing is written."""
    with batch(on_success="cb.ok") as b:
        first = jobtui.enqueue("t")
    later = jobtui.enqueue("t", batch_id=b.id)
    more = jobtui.enqueue_many("t", [{"batch_id": b.id}, {"batch_id": b.id}])
    assert batch_status(b.id)["total"] == 4
    for job in (first, later, more[0]):
        _complete(job)
    assert _callbacks() == []  # one joined job still runs
    _complete(more[1])
    assert _callbacks() == [("cb.ok", [b.id, "success"])]
    before = Job.select().count()
    for bad in (b.id, "no-such-batch"):
        with pytest.raises(InvalidJob, match="is finished or unknown"):
            jobtui.enqueue("t", batch_id=bad)
    assert Job.select().count() == before


def test_batch_with_a_failed_or_cancelled_job_calls_on_failure(db):
    with batch(on_success="cb.ok", on_failure="cb.bad", on_complete="cb.done") as b:
        first, second, third = (jobtui.enqueue("t") for _ in range(3))
    _complete(first)
    _fail(second)
    jobtui.cancel(third.id)
    assert _callbacks() == [("cb.bad", [b.id, "failure"]), ("cb.done", [b.id, "complete"])]


def test_a_dependant_cancelled_in_a_batch_finishes_the_batch(db):
    root = jobtui.enqueue("t")
    with batch(on_complete="cb.done") as b:
        jobtui.enqueue("t", depends_on=[root.id])
    _fail(root)  # the batch's only job is cancelled by the cascade, not by its own run
    assert _callbacks() == [("cb.done", [b.id, "complete"])]
    assert batch_status(b.id)["outcome"] == "failure"


def test_an_exception_inside_the_block_enqueues_nothing(db):
    with pytest.raises(RuntimeError), batch(on_complete="cb.done"):
        for n in range(3):
            jobtui.enqueue("t", args=[n])
        raise RuntimeError("changed my mind")
    assert Job.select().count() == 0 and Batch.select().count() == 0


def test_batch_jobs_are_invisible_until_the_block_exits(db, db_url):
    from jobtui.models.db import open_database

    with batch() as b:
        jobtui.enqueue("t")
        other = open_database(db_url)  # another connection: another process's view
        try:
            assert other.execute_sql("SELECT COUNT(*) FROM jobs").fetchone()[0] == 0
        finally:
            other.close()
    assert batch_status(b.id)["total"] == 1


def test_an_empty_batch_fires_success_and_complete_at_exit(db):
    with batch(on_success="cb.ok", on_failure="cb.bad", on_complete="cb.done") as b:
        pass
    assert _callbacks() == [("cb.done", [b.id, "complete"]), ("cb.ok", [b.id, "success"])]
    assert batch_status(b.id)["outcome"] == "success"


def test_callbacks_are_enqueued_once_when_the_last_jobs_end_together(db):
    """Two transactions end a batch's last two jobs at the same moment, a few rounds."""
    errors: list[BaseException] = []

    def finish(run, barrier) -> None:
        try:
            barrier.wait(10)
            complete_job(run.id, run.attempt, run.lease_token, None)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            db.close()

    for _ in range(5):
        Job.delete().where(Job.job_type.startswith("cb.")).execute()
        with batch(on_success="cb.ok", on_complete="cb.done") as b:
            jobs = [jobtui.enqueue("t") for _ in range(2)]
        barrier = threading.Barrier(2)
        threads = [threading.Thread(target=finish, args=(start_job(j.id), barrier))
                   for j in jobs]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not errors
        assert _callbacks() == [("cb.done", [b.id, "complete"]), ("cb.ok", [b.id, "success"])]


def test_batch_status_of_an_unknown_batch(db):
    with pytest.raises(jobtui.JobNotFound):
        batch_status("no-such-batch")


# ------------------------------------------------------------------ deadlines


def test_a_job_not_started_by_its_deadline_ends_cancelled_expired(db):
    soon = jobtui.enqueue("t", deadline=30)
    waiting_root = jobtui.enqueue("t")
    waiting = jobtui.enqueue("t", deadline=30, depends_on=[waiting_root.id])
    dependant = jobtui.enqueue("t", depends_on=[soon.id])
    later = jobtui.enqueue("t", deadline=utcnow() + timedelta(hours=1))
    with batch(on_complete="cb.done") as b:
        jobtui.enqueue("t", deadline=30)
    db_ = dialect_for(db)
    with db_.write_transaction(db):
        assert expire_jobs(db, sql_timestamp(utcnow())) == []
    with db_.write_transaction(db):
        expired = expire_jobs(db, sql_timestamp(utcnow() + timedelta(seconds=31)))
    assert len(expired) == 3 and soon.id in expired and waiting.id in expired
    row = Job.get_by_id(soon.id)
    assert row.status == "cancelled" and "expired" in row.error_message
    assert Job.get_by_id(dependant.id).error_message == f"dependency {soon.id} cancelled"
    assert _status(later) == "pending"
    assert _callbacks() == [("cb.done", [b.id, "complete"])]


def test_a_running_job_is_not_expired(db):
    job = jobtui.enqueue("t", deadline=30)
    start_job(job.id)
    with dialect_for(db).write_transaction(db):
        assert expire_jobs(db, sql_timestamp(utcnow() + timedelta(seconds=60))) == []
    assert _status(job) == "running"
