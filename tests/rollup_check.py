"""The rollup's invariant, checked against the job table: for every (queue, task), the
rollup's completed, failed and cancelled counts equal the jobs in those states, its
retried count equals the failed runs that were retried, and its run histograms hold
every run that ended (interrupted ones aside). Shared by the contract and e2e tests."""

from __future__ import annotations

from collections import Counter

import peewee

from jobtui.models.rollup import RUN_COLUMNS, WAIT_COLUMNS

FAILED_RUNS = ("failed", "timed_out", "crashed")


def rollup_totals(db: peewee.Database) -> dict[tuple[str, str], tuple[int, ...]]:
    """(completed, failed, retried, cancelled, runs, waits) per (queue, task), all time."""
    runs, waits = " + ".join(RUN_COLUMNS), " + ".join(WAIT_COLUMNS)
    rows = db.execute_sql(
        f"SELECT queue_name, job_type, SUM(completed), SUM(failed), SUM(retried), "
        f"SUM(cancelled), SUM({runs}), SUM({waits}) FROM job_rollup "
        "GROUP BY queue_name, job_type"
    ).fetchall()
    return {(q, t): tuple(int(v) for v in values) for q, t, *values in rows
            if any(values)}  # fmt: skip


def table_totals(db: peewee.Database) -> dict[tuple[str, str], tuple[int, ...]]:
    """The same figures, counted from the jobs and their attempt rows."""
    status: Counter = Counter()
    for queue, task, state, count in db.execute_sql(
        "SELECT queue_name, job_type, status, COUNT(*) FROM jobs GROUP BY 1, 2, 3"
    ).fetchall():
        status[(queue, task, state)] = int(count)
    runs: Counter = Counter()
    failed_runs: Counter = Counter()
    failed_jobs_with_runs: Counter = Counter()
    for queue, task, outcome, count in db.execute_sql(
        "SELECT j.queue_name, j.job_type, a.outcome, COUNT(*) FROM job_attempts a "
        "JOIN jobs j ON j.id = a.job_id GROUP BY 1, 2, 3"
    ).fetchall():
        if outcome != "interrupted":
            runs[(queue, task)] += int(count)
        if outcome in FAILED_RUNS:
            failed_runs[(queue, task)] += int(count)
    for queue, task, count in db.execute_sql(
        "SELECT queue_name, job_type, COUNT(*) FROM jobs WHERE status = 'failed' AND EXISTS "
        "(SELECT 1 FROM job_attempts a WHERE a.job_id = jobs.id) GROUP BY 1, 2"
    ).fetchall():
        failed_jobs_with_runs[(queue, task)] = int(count)
    keys = {(q, t) for q, t, _ in status} | set(runs)
    out = {}
    for key in keys:
        values = (status[(*key, "completed")], status[(*key, "failed")],
                  failed_runs[key] - failed_jobs_with_runs[key], status[(*key, "cancelled")],
                  runs[key], runs[key])  # fmt: skip
        if any(values):
            out[key] = values
    return out
