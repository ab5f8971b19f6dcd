"""The reference, user and batch indexes hold only the jobs that have those columns
(schema version 14, issue 17 item 3), and every look-up by them still walks its index.
One suite, SQLite and PostgreSQL."""

from __future__ import annotations

import peewee

import jobtui
from jobtui.models import Job
from jobtui.models.dialect import dialect_for
from jobtui.models.queries import list_jobs

LOOKUPS = {
    "jobs_batch_id": "SELECT status, COUNT(*) FROM jobs WHERE batch_id = {p} GROUP BY status",
    "jobs_user_id_id": "SELECT id FROM jobs WHERE user_id = {p} ORDER BY id DESC LIMIT 5",
    "jobs_reference_type_reference_id":
        "SELECT id FROM jobs WHERE reference_type = {p} AND reference_id = {p}",
}  # fmt: skip


def _plan(db: peewee.Database, sql: str, values: int) -> str:
    postgres = dialect_for(db).name == "postgresql"
    sql = sql.format(p="%s" if postgres else "?")
    if postgres:  # a tiny table: without this the planner would rather read it all
        db.execute_sql("SET enable_seqscan = off")
        try:
            rows = db.execute_sql(f"EXPLAIN {sql}", ["x"] * values).fetchall()
        finally:
            db.execute_sql("SET enable_seqscan = on")
        return " ".join(row[0] for row in rows)
    rows = db.execute_sql(f"EXPLAIN QUERY PLAN {sql}", ["x"] * values).fetchall()
    return " ".join(str(row[-1]) for row in rows)


def _entries(db: peewee.Database, index: str) -> int:
    """How many entries the index holds."""
    if dialect_for(db).name == "postgresql":
        db.execute_sql("ANALYZE jobs")
        sql = "SELECT reltuples::bigint FROM pg_class WHERE relname = %s"
        return int(db.execute_sql(sql, [index]).fetchone()[0])
    column = {"jobs_batch_id": "batch_id", "jobs_user_id_id": "user_id",
              "jobs_reference_type_reference_id": "reference_type"}[index]  # fmt: skip
    sql = f"SELECT COUNT(*) FROM jobs INDEXED BY {index} WHERE {column} IS NOT NULL"
    return int(db.execute_sql(sql).fetchone()[0])


def test_lookups_walk_the_sparse_indexes(db):
    for index, sql in LOOKUPS.items():
        assert index in _plan(db, sql, sql.count("{p}")), (index, _plan(db, sql, 2))


def test_only_jobs_with_a_value_are_in_them_and_lookups_find_them(db):
    for n in range(30):
        jobtui.enqueue("t", args=[n])
    owned = jobtui.enqueue("t", args=["mine"], user_id="ann", reference_type="order",
                           reference_id=42)  # fmt: skip
    with jobtui.batch() as batch:
        jobtui.enqueue("t", args=["in a batch"])
    assert Job.get_user_jobs("ann")[0].id == owned.id
    assert [j.id for j in Job.get_by_reference("order", 42)] == [owned.id]
    assert len(list_jobs(batch_id=batch.id)) == 1
    assert _entries(db, "jobs_user_id_id") == 1
    assert _entries(db, "jobs_reference_type_reference_id") == 1
    assert _entries(db, "jobs_batch_id") == 1
