"""The PostgreSQL completion passes each column of a turn's runs as one array literal
(``dialect.pg_array``): whatever a job returns reaches its row unchanged, and the plan
joins the runs once, whatever the planner's statistics say."""

from __future__ import annotations

import json
import re

import pytest

import jobtui
from jobtui.models.claims import claim_in_transaction
from jobtui.models.clock import sql_timestamp, utcnow
from jobtui.models.dialect import dialect_for, pg_array
from jobtui.models.outcomes import (
    _COMPLETE_WITH_ATTEMPTS,
    Outcome,
    apply_outcomes,
    completion_params,
)
from tests.hostile import HOSTILE

AWKWARD = ["", " ", "NULL", "null", '"', "\\", '\\"', "{}", "{a,b}", ",", "a,b", "'", "''",
           "%s", "%(x)s", "\t\n", "ünï ✓ 🙂", "x" * 5000, *HOSTILE.values()]  # fmt: skip


def _postgres(db) -> None:
    if dialect_for(db).name != "postgresql":
        pytest.skip("PostgreSQL only: SQLite binds each value")


def _text(value: str) -> str:
    return value.replace("\x00", "")  # PostgreSQL text holds no NUL (nor does JSON)


def test_an_array_literal_gives_back_every_string(db):
    _postgres(db)
    values = [_text(v) for v in AWKWARD] + [None]
    cur = db.execute_sql("SELECT unnest(%s::text[])", [pg_array(values)])
    assert [row[0] for row in cur.fetchall()] == values
    cur = db.execute_sql("SELECT unnest(%s::int[])", [pg_array([1, None, -7, 2**31 - 1])])
    assert [row[0] for row in cur.fetchall()] == [1, None, -7, 2**31 - 1]


def _claim(db, count: int):
    with dialect_for(db).write_transaction(db):
        return claim_in_transaction(db, count, tasks=["t"], supervisor_name="s")


def test_completions_store_hostile_results_exactly(db):
    _postgres(db)
    jobtui.enqueue_many("t", [{"args": [n]} for n in range(len(AWKWARD))])
    claimed = _claim(db, len(AWKWARD))
    results = {c.id: json.dumps({"text": value}) for c, value in zip(claimed, AWKWARD, strict=True)}
    outcomes = [Outcome(job_id=c.id, attempt=c.attempt, lease_token=c.lease_token,
                        kind="completed", result_json=results[c.id],
                        worker={"worker_name": 'w "1"', "supervisor_name": "s\\x",
                                "pid": 42, "host": "h,1"}) for c in claimed]  # fmt: skip
    with dialect_for(db).write_transaction(db):
        statuses = apply_outcomes(db, outcomes)
    assert statuses == ["completed"] * len(claimed)
    for c in claimed:
        job = jobtui.poll(c.id)
        assert job.status == "completed" and job.result == json.loads(results[c.id])
    rows = db.execute_sql("SELECT DISTINCT worker_name, supervisor_name, pid, host "
                          "FROM job_attempts").fetchall()  # fmt: skip
    assert rows == [('w "1"', "s\\x", 42, "h,1")]


def test_a_lost_lease_or_a_second_completion_changes_nothing(db):
    _postgres(db)
    jobtui.enqueue_many("t", [{"args": [n]} for n in range(3)])
    first, second, third = _claim(db, 3)
    runs = [Outcome(job_id=c.id, attempt=c.attempt, lease_token=c.lease_token,
                    kind="completed", result_json="1") for c in (first, second, third)]  # fmt: skip
    stale = Outcome(job_id=second.id, attempt=second.attempt, lease_token="not-the-lease",
                    kind="completed", result_json="2")  # fmt: skip
    with dialect_for(db).write_transaction(db):
        assert apply_outcomes(db, [runs[0], stale, runs[2]]) == ["completed", None, "completed"]
    with dialect_for(db).write_transaction(db):  # already completed: the status fence holds
        assert apply_outcomes(db, [runs[0]]) == [None]
    assert jobtui.poll(second.id).status == "running"
    attempts = db.execute_sql("SELECT count(*) FROM job_attempts").fetchone()[0]
    assert attempts == 2


def test_the_runs_are_joined_once_on_a_table_without_statistics(db):
    """A bulk load just before a drain: the planner has no statistics for jobs. The runs
    must be matched to their rows by a hash (or an index), never each row against each
    run (the filter that used to read as "one row in 200" made it quadratic)."""
    _postgres(db)
    jobtui.enqueue_many("t", [{"args": [n]} for n in range(3000)])
    for _ in range(3):  # a drain under way: earlier turns' rows are dead versions now
        done = [Outcome(job_id=c.id, attempt=c.attempt, lease_token=c.lease_token,
                        kind="completed", result_json="1") for c in _claim(db, 60)]  # fmt: skip
        with dialect_for(db).write_transaction(db):
            apply_outcomes(db, done)
    claimed = _claim(db, 60)
    outcomes = [Outcome(job_id=c.id, attempt=c.attempt, lease_token=c.lease_token,
                        kind="completed", result_json="1") for c in claimed]  # fmt: skip
    with db.atomic() as txn:
        params = completion_params(outcomes, sql_timestamp(utcnow()))
        plan = "\n".join(row[0] for row in db.execute_sql(
            "EXPLAIN (ANALYZE) " + _COMPLETE_WITH_ATTEMPTS, params))  # fmt: skip
        txn.rollback()
    removed = sum(int(n) for n in re.findall(r"Rows Removed by Join Filter: (\d+)", plan))
    assert removed < len(outcomes), plan
    assert re.search(r"\(actual time=\S+ rows=60 loops=1\)", plan.split("CTE attempt_rows")[0])
