"""Claims under concurrency: many processes, each job claimed exactly once; and the
PostgreSQL LIMIT-inside-IN regression (RELIABILITY.md, fact 2; PostgreSQL bug #15715)."""

from __future__ import annotations

import multiprocessing

import pytest

import jobtui
from jobtui.models import Job, claim_jobs, complete_job, store
from jobtui.models.dialect import dialect_for

PROCESSES = 8
JOBS = 5_000


def _drain(url: str, batch: int, barrier, results) -> None:
    """One claimer process: claim small batches and complete them until none are left."""
    store.reset()
    claimed: list[str] = []
    errors: list[str] = []
    try:
        store.use_database(url)
        barrier.wait(30)
        empty_rounds = 0
        while empty_rounds < 3:
            try:
                jobs = claim_jobs(batch, worker_name=f"p{multiprocessing.current_process().pid}")
            except Exception as exc:  # noqa: BLE001 - any error is a test failure, reported
                errors.append(f"claim: {type(exc).__name__}: {exc}")
                continue
            if not jobs:
                empty_rounds += 1
                continue
            empty_rounds = 0
            for job in jobs:
                claimed.append(job.id)
                try:
                    complete_job(job.id, job.attempt, job.lease_token, None)
                except Exception as exc:  # noqa: BLE001
                    errors.append(f"complete: {type(exc).__name__}: {exc}")
    except Exception as exc:  # noqa: BLE001
        errors.append(f"setup: {type(exc).__name__}: {exc}")
    results.put((claimed, errors))


@pytest.mark.timeout(180)
def test_eight_processes_claim_each_of_5000_jobs_exactly_once(db, db_url):
    ids = [job.id for job in jobtui.enqueue_many("t", [{"args": [n]} for n in range(JOBS)])]
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    procs = [context.Process(target=_drain, args=(db_url, 1 + n % 4, barrier, results))
             for n in range(PROCESSES)]  # fmt: skip
    for proc in procs:
        proc.start()
    gathered = [results.get(timeout=150) for _ in procs]
    for proc in procs:
        proc.join(30)
    claimed = [job_id for ids_, _ in gathered for job_id in ids_]
    errors = [error for _, errs in gathered for error in errs]
    assert errors == []  # "database is locked" never reaches the caller
    assert len(claimed) == len(set(claimed)) == JOBS
    assert set(claimed) == set(ids)
    assert sum(1 for ids_, _ in gathered if ids_) >= 2  # the work really was shared
    assert Job.select().where(Job.status == "completed", Job.attempt == 1).count() == JOBS


NAIVE_CLAIM = """UPDATE jobs SET status = 'running' WHERE id IN (
    SELECT id FROM jobs WHERE status IN ('pending', 'retrying') AND queue_name = 'default'
    AND fair_key IS NULL AND (unset_options & 512) = 0
    ORDER BY priority DESC, run_at, id LIMIT 5 FOR UPDATE SKIP LOCKED)
RETURNING id"""

#: Settings that make PostgreSQL re-run the LIMIT subquery for every outer row.
NESTED_LOOP_ONLY = ("enable_hashjoin", "enable_mergejoin", "enable_material", "enable_hashagg",
                    "enable_sort", "enable_memoize")  # fmt: skip


def test_postgres_claim_never_takes_more_than_the_limit_under_nested_loops(db):
    if dialect_for(db).name != "postgresql":
        pytest.skip("PostgreSQL only: the LIMIT-inside-IN plan bug (fact 2)")
    jobtui.enqueue_many("t", [{"args": [n]} for n in range(2_000)])
    db.execute_sql("ANALYZE jobs")
    with db.atomic() as txn:
        for setting in NESTED_LOOP_ONLY:
            db.execute_sql(f"SET LOCAL {setting} = off")
        plan = "\n".join(row[0] for row in db.execute_sql("EXPLAIN " + NAIVE_CLAIM).fetchall())
        naive = len(db.execute_sql(NAIVE_CLAIM).fetchall())
        txn.rollback()
    assert "Nested Loop" in plan
    assert naive > 5, f"the naive form took {naive} rows; the plan was:\n{plan}"
    with db.atomic():
        for setting in NESTED_LOOP_ONLY:
            db.execute_sql(f"SET LOCAL {setting} = off")
        ours = claim_jobs(5, queues=["default"])
    assert len(ours) == 5
    assert Job.select().where(Job.status == "running").count() == 5


def test_postgres_claims_and_completions_never_trust_stale_statistics(db):
    """A bulk insert the planner has not analysed ("the table is empty") must not turn a
    claim into a sort of every pending row, nor a completion into a read of every
    'running' index entry: the claim walks its index, the completion goes by primary key."""
    if dialect_for(db).name != "postgresql":
        pytest.skip("PostgreSQL only: plans chosen on statistics")
    from jobtui.models.claims import claim_in_transaction
    from jobtui.models.clock import sql_timestamp, utcnow
    from jobtui.models.dialect import POSTGRESQL
    from jobtui.models.outcomes import _COMPLETE_WITH_ATTEMPTS, Outcome, completion_params

    db.execute_sql("ANALYZE jobs")  # statistics of an empty table...
    for _ in range(10):  # ...then 20,000 rows, 2,000 of another task
        jobtui.enqueue_many("t", [{"args": [n]} for n in range(1_800)])
        jobtui.enqueue_many("other", [{"args": [n]} for n in range(200)])
    with db.atomic() as txn:
        claimed = claim_in_transaction(db, 4, tasks=["t"])  # sets its planner option, LOCAL
        claim_body = POSTGRESQL.claim_statement(None).split(";\n", 1)[1]
        params = {"now": sql_timestamp(utcnow()), "tasks": ["t"], "limit": 4,
                  "worker_name": None, "supervisor_name": None, "queues": None,
                  "capped": False}  # fmt: skip
        plan = "\n".join(r[0] for r in db.execute_sql("EXPLAIN " + claim_body, params))
        assert "jobs_claim_order" in plan and "Sort" not in plan, plan
        outcomes = [Outcome(job_id=c.id, attempt=c.attempt, lease_token=c.lease_token,
                            kind="completed", result_json="1") for c in claimed]  # fmt: skip
        sql = _COMPLETE_WITH_ATTEMPTS
        params = completion_params(outcomes, sql_timestamp(utcnow()))
        plan = "\n".join(r[0] for r in db.execute_sql("EXPLAIN " + sql, params))
        assert "jobs_pkey" in plan and "jobs_status" not in plan, plan
        txn.rollback()
