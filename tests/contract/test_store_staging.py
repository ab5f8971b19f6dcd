"""Staged enqueues (schema version 16, models/staging.py): on SQLite a single enqueue
writes its job outside the claim and task indexes, and the next claim promotes it. A
staged job must be an ordinary pending job to every reader but the claim, and the claim
must take it in its place in line. One suite, SQLite and PostgreSQL (which never stages:
the same reads must give the same answers there).
"""

from __future__ import annotations

import re

import peewee
import pytest

import jobtui
from jobtui.models import Job, queries, ready_reads
from jobtui.models.alert import oldest_due
from jobtui.models.claims import claim_jobs
from jobtui.models.clock import utcnow
from jobtui.models.dialect import dialect_for
from jobtui.models.downgrade import downgrade_schema
from jobtui.models.migrations import SCHEMA_VERSION, ensure_schema
from jobtui.models.staging import STAGED, STAGED_BIT, TASK_PARTS, promote_all, stages
from jobtui.tui import stats


def _staged_ids(db: peewee.Database) -> set[str]:
    return {row[0] for row in db.execute_sql(f"SELECT id FROM jobs WHERE {STAGED}").fetchall()}


def test_only_a_sqlite_single_enqueue_is_staged(db):
    plain = jobtui.enqueue("t", queue="q")
    many = jobtui.enqueue_many("t", [{"args": [1]}, {"args": [2]}])
    rated = jobtui.enqueue("t", rate_key="tenant")
    fair = jobtui.enqueue("t", fair_key="tenant")
    staged = _staged_ids(db)
    if stages(db):
        assert staged == {plain.id}  # batches, keyed and fair jobs take the claim indexes
    else:
        assert staged == set()
    assert {j.id for j in many} | {rated.id, fair.id} <= {j.id for j in Job.select()}
    # the bit is the store's: a job reads the same staged or not
    assert Job.get_by_id(plain.id).unset_options == plain.unset_options
    assert not plain.unset_options & STAGED_BIT


def test_a_staged_job_is_pending_to_every_reader(db):
    job = jobtui.enqueue("staged.task", queue="q", title="staged")
    now = utcnow()
    assert Job.get_by_id(job.id).status == "pending"
    assert [j.id for j in queries.list_jobs(status="pending")] == [job.id]
    assert [j.id for j in queries.list_jobs(task="staged.task")] == [job.id]
    assert [j.id for j in queries.list_jobs(task="staged.task", status="pending")] == [job.id]
    assert {(q, s): c for q, s, c in ready_reads.status_counts(db)} == {("q", "pending"): 1}
    assert ready_reads.ready_queue_names(db) == ["q"]
    assert ready_reads.queue_has_jobs(db, "q")
    assert queries.queue_stats()["q"]["counts"]["pending"] == 1
    assert [j.id for j in Job.get_pending_jobs(job_type="staged.task")] == [job.id]
    assert "staged.task" in stats.task_names(db)
    assert oldest_due(db, "q", now) is not None  # its wait counts in the queue's latency


def test_the_claim_promotes_and_takes_staged_jobs_in_their_place_in_line(db):
    low = jobtui.enqueue_many("t", [{"args": [n]} for n in range(3)])  # never staged
    urgent = jobtui.enqueue("t", priority=10)  # staged on SQLite
    later = jobtui.enqueue("t")
    (first,) = claim_jobs(1)
    assert first.id == urgent.id
    assert _staged_ids(db) == set()  # the claim promoted every staged job
    rest = [c.id for c in claim_jobs(10)]
    assert rest == [j.id for j in low] + [later.id]  # FIFO within a priority


def test_promote_all_moves_a_backlog_a_batch_at_a_time(db):
    ids = [jobtui.enqueue("t", args=[n]).id for n in range(25)]
    moved = promote_all(db, batch=10)
    assert moved == (25 if stages(db) else 0)
    assert _staged_ids(db) == set()
    assert [c.id for c in claim_jobs(25)] == ids


def test_reads_by_task_walk_an_index_for_each_part(db):
    """A task's jobs are in the task index or in jobs_staged: neither read scans the table
    (SQLite: the plans; PostgreSQL proves the same terms)."""
    if dialect_for(db).name != "sqlite":
        pytest.skip("SQLite's plans (the answers above are checked on both engines)")
    jobtui.enqueue("t")
    for part in TASK_PARTS:
        sql = f"SELECT id FROM jobs WHERE job_type = ? AND {part} ORDER BY id DESC LIMIT 50"
        plan = " | ".join(str(r[-1]) for r in db.execute_sql(f"EXPLAIN QUERY PLAN {sql}", ["t"]))
        assert re.search(r"SEARCH jobs USING (COVERING )?INDEX jobs_(job_type_id|staged)", plan), (
            plan
        )
        assert "TEMP B-TREE" not in plan, plan


def test_a_downgrade_promotes_every_staged_job_first(db):
    ids = [jobtui.enqueue("t", args=[n]).id for n in range(3)]
    downgrade_schema(db, SCHEMA_VERSION - 1)
    assert _staged_ids(db) == set()
    assert ensure_schema(db) == SCHEMA_VERSION
    assert [c.id for c in claim_jobs(3)] == ids
