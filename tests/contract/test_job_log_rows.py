"""Job-log rows (models/joblog.py) on SQLite and PostgreSQL: reading in order with a
cursor, the dropped counts, a damaged chunk shown as itself, a chunk for a job that is
gone dropped (never failing the supervisor's commit), and the rows going with their job
through retention and purges."""

from __future__ import annotations

import json
from datetime import timedelta

import jobtui
from jobtui.models import Job
from jobtui.models.clock import utcnow
from jobtui.models.dialect import dialect_for
from jobtui.models.joblog import INSERT_CHUNK, read_log
from jobtui.models.retention import prune_jobs, purge_failed_jobs


def chunk(db, job_id: str, attempt: int, seq: int, texts: list[str], dropped=(0, 0), raw=None):
    lines = raw if raw is not None else json.dumps([[1.7e9 + seq, "out", t] for t in texts])
    with dialect_for(db).write_transaction(db):
        db.execute_sql(dialect_for(db).sql(INSERT_CHUNK), {
            "id": job_id, "attempt": attempt, "seq": seq, "at": utcnow(), "lines": lines,
            "dropped": dropped[0], "dropped_lines": dropped[1]})  # fmt: skip


def count(db) -> int:
    return db.execute_sql("SELECT COUNT(*) FROM job_logs").fetchone()[0]


def test_chunks_read_in_order_after_a_cursor_across_attempts(db):
    job = jobtui.enqueue("t")
    chunk(db, job.id, 2, 0, ["second attempt"])
    chunk(db, job.id, 1, 1, ["b", "c"], dropped=(10, 1))
    chunk(db, job.id, 1, 0, ["a"])
    page = read_log(job.id)
    assert [(line.attempt, line.text) for line in page.lines] == [
        (1, "a"), (1, "b"), (1, "c"), (2, "second attempt")]  # fmt: skip
    assert page.cursor == (2, 0) and page.dropped == {1: (10, 1)}
    assert read_log(job.id, after=(1, 0)).lines[0].text == "b"
    assert read_log(job.id, after=page.cursor).lines == []
    assert read_log(job.id, after=page.cursor).cursor == page.cursor
    assert [line.text for line in read_log(job.id, limit=1).lines] == ["a"]


def test_a_damaged_chunk_shows_as_itself_and_a_gone_jobs_chunk_is_dropped(db):
    job = jobtui.enqueue("t")
    chunk(db, job.id, 1, 0, [], raw="not json \x1b")
    assert [line.text for line in read_log(job.id).lines] == ["not json \x1b"]
    chunk(db, "no-such-job", 1, 0, ["lost"])  # the fence: nothing written, no error
    assert count(db) == 1


def test_retention_and_purges_take_the_logs_with_their_jobs(db):
    done, failed, live = (jobtui.enqueue("t") for _ in range(3))
    old = utcnow() - timedelta(days=30)
    Job.update(status="completed", updated_at=old).where(Job.id == done.id).execute()
    Job.update(status="failed", updated_at=old).where(Job.id == failed.id).execute()
    for job in (done, failed, live):
        chunk(db, job.id, 1, 0, ["x"])
    assert prune_jobs(older_than=timedelta(days=7)) == 1
    assert read_log(done.id).lines == [] and count(db) == 2
    assert purge_failed_jobs() == 1
    assert read_log(failed.id).lines == [] and count(db) == 1
    assert [line.text for line in read_log(live.id).lines] == ["x"]
