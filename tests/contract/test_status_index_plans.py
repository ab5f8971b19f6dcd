"""The status indexes leave pending jobs out (schema version 15, issue 17 item 3): an
enqueue writes neither, and every read that used them still walks an index, the pending
jobs through the claim indexes (models/ready_reads.py). One suite, SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from datetime import timedelta

import peewee

import jobtui
from jobtui.models import Job, queries, ready_reads
from jobtui.models.aging import _AGE, _STEPS
from jobtui.models.clock import sql_timestamp, utcnow
from jobtui.models.dialect import dialect_for
from jobtui.models.job import INDEXED_STATUSES, STATUS_INDEX_WHERE, STATUS_INDEXES
from jobtui.models.retention import prune_jobs
from jobtui.supervisor.dispatch import _NEXT_DUE as NEXT_TIMER
from jobtui.supervisor.metrics import _DUE_NOW
from jobtui.supervisor.scaling import _NEXT_DUE as NEXT_IN_LINE
from jobtui.tui import stats


def _postgres(db: peewee.Database) -> bool:
    return dialect_for(db).name == "postgresql"


def _plan(db: peewee.Database, sql: str, params: object = None) -> str:
    if _postgres(db):  # a tiny table: without this the planner would rather read it all
        db.execute_sql("SET enable_seqscan = off")
        try:
            rows = db.execute_sql(f"EXPLAIN {sql}", params).fetchall()
        finally:
            db.execute_sql("SET enable_seqscan = on")
        return " | ".join(row[0] for row in rows)
    rows = db.execute_sql(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
    return " | ".join(str(row[-1]) for row in rows)


def _reads_the_table(db: peewee.Database, plan: str) -> bool:
    """Whether the plan reads the job table row by row rather than through an index, or
    walks the whole id index (every job, in id order)."""
    if _postgres(db):
        return "Seq Scan on jobs" in plan
    whole = r"\bSCAN (jobs|t1)\b(?! USING)|SCAN (jobs|t1) USING INDEX sqlite_autoindex_jobs_1"
    return re.search(whole, plan) is not None


def _named(db: peewee.Database, sql: str) -> tuple[str, dict]:
    """``sql`` with ``:name`` parameters in the engine's style, and its values."""
    values = {"now": sql_timestamp(utcnow()), "queue": "q", "cutoff": sql_timestamp(utcnow()),
              "period": 60.0, "max_steps": 10, "batch": 10}  # fmt: skip
    return dialect_for(db).sql(sql), values


def _statements(db: peewee.Database) -> dict[str, tuple[str, object]]:
    p = db.param
    stamp = sql_timestamp(utcnow())
    out: dict[str, tuple[str, object]] = {
        "ready queue names": (ready_reads._READY_QUEUES, None),
        "all queue names": (ready_reads._ALL_QUEUES, None),
        "indexed counts": (ready_reads._INDEXED_COUNTS, None),
        "console capped counts": (stats._count_sql(db), ["q"] * len(stats._COUNTED)),
        "next timers": _named(db, NEXT_TIMER),
        "failed, newest first": (
            f"SELECT id FROM jobs WHERE status = {p} ORDER BY id DESC LIMIT 50", ["failed"]),
    }  # fmt: skip
    for n, half in enumerate(ready_reads.READY_PARTS):
        out[f"pending counts {n}"] = (ready_reads._PENDING_COUNTS.format(half=half), None)
        out[f"queue probe {n}"] = (
            f"SELECT 1 FROM jobs WHERE {half} AND queue_name = {p} LIMIT 1",
            ["q"],
        )
        out[f"aging {n}"] = _named(db, _AGE.format(steps=_STEPS[dialect_for(db).name], half=half))
        out[f"metrics due {n}"] = _named(db, _DUE_NOW.format(half=half))
        out[f"autoscale head {n}"] = _named(db, NEXT_IN_LINE.format(half=half))
        out[f"oldest due {n}"] = (queries._OLDEST_DUE.format(half=half, p=p), [stamp, stamp])
    for n, read in enumerate(queries.status_reads(Job.select(), "pending", 50, db)):
        out[f"pending, newest first {n}"] = read.sql()
    out["queue probe indexed"] = (
        f"SELECT 1 FROM jobs WHERE {STATUS_INDEX_WHERE} AND queue_name = {p} LIMIT 1",
        ["q"],
    )
    return out


def _status_index_entries(db: peewee.Database, index: str) -> int:
    if _postgres(db):
        db.execute_sql("ANALYZE jobs")
        sql = "SELECT reltuples::bigint FROM pg_class WHERE relname = %s"
        return max(0, int(db.execute_sql(sql, [index]).fetchone()[0]))
    sql = f"SELECT COUNT(*) FROM jobs INDEXED BY {index} WHERE {STATUS_INDEX_WHERE}"
    return int(db.execute_sql(sql).fetchone()[0])


def test_the_status_indexes_hold_every_status_but_pending():
    assert set(INDEXED_STATUSES) == {"waiting", "running", "retrying", "completed", "failed",
                                     "cancelled"}  # fmt: skip
    assert STATUS_INDEX_WHERE.count(" OR ") == len(INDEXED_STATUSES) - 1


def test_an_enqueued_job_is_in_no_status_index_until_it_leaves_pending(db):
    for n in range(20):
        jobtui.enqueue("t", args=[n])
    for index in STATUS_INDEXES:
        assert _status_index_entries(db, index) == 0, index
    jobtui.cancel(jobtui.enqueue("t", args=["gone"]).id)
    for index in STATUS_INDEXES:
        assert _status_index_entries(db, index) == 1, index


def test_every_read_of_pending_or_every_status_walks_an_index(db):
    jobtui.enqueue("t", queue="q")
    jobtui.enqueue("t", queue="q", fair_key="tenant")
    for name, (sql, params) in _statements(db).items():
        plan = _plan(db, sql, params)
        assert not _reads_the_table(db, plan), f"{name}: {plan}"


def test_the_reads_give_the_same_answers_as_a_plain_count(db):
    for n in range(3):
        jobtui.enqueue("t", queue="a", args=[n])
    jobtui.enqueue("t", queue="b", fair_key="tenant")
    jobtui.enqueue("t", queue="c", delay=3600)
    jobtui.cancel(jobtui.enqueue("t", queue="d").id)
    plain: dict[tuple[str, str], int] = {}
    for queue, status, count in (Job.select(Job.queue_name, Job.status, peewee.fn.COUNT(Job.id))
                                 .group_by(Job.queue_name, Job.status).tuples()):  # fmt: skip
        plain[(queue, status)] = count
    read = {(q, s): c for q, s, c in ready_reads.status_counts(db)}
    assert read == plain == {("a", "pending"): 3, ("b", "pending"): 1, ("c", "pending"): 1,
                             ("d", "cancelled"): 1}  # fmt: skip
    assert ready_reads.ready_queue_names(db) == ["a", "b", "c"]
    assert ready_reads.queue_names(db) == ["a", "b", "c", "d"]
    assert [ready_reads.queue_has_jobs(db, q) for q in ("b", "d", "e")] == [True, True, False]
    stats_counts = queries.queue_stats()
    assert stats_counts["a"]["counts"]["pending"] == 3
    assert stats_counts["d"]["counts"]["cancelled"] == 1
    assert [j.queue_name for j in Job.get_pending_jobs()] == ["a", "a", "a", "b"]
    newest = queries.list_jobs(status=["pending", "cancelled"], limit=2)
    assert [j.queue_name for j in newest] == ["d", "c"]


def test_retention_walks_each_ended_status(db):
    old = jobtui.enqueue("t")
    jobtui.cancel(old.id)
    live = jobtui.enqueue("t")
    assert prune_jobs(older_than=timedelta(seconds=-5)) == 1
    assert [j.id for j in Job.select()] == [live.id]


def test_the_scheduled_view_shows_a_queue_s_soonest_fifty_pending_jobs(db):
    for n in range(60):
        jobtui.enqueue("t", queue="q", delay=600 + n)
        jobtui.enqueue("t", queue="q", delay=600 + n, fair_key=f"k{n % 3}")
    rows = stats.delayed_rows(db, utcnow(), ["q"])
    assert len(rows) == stats.DELAYED_PER_QUEUE
    assert rows == sorted(rows, key=lambda r: (r.run_at, r.id))
