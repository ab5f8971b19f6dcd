"""What follows when a job ends: dependants promoted or cancelled, down the chain.

Called inside the transaction that ended the job, so a dependant never sees a half-made
decision, and a batch's callbacks are enqueued exactly once: on_failure with its first
failed job, the others with its last job's end.
"""

from __future__ import annotations

from collections.abc import Iterable

import peewee

from .base import as_datetime
from .clock import sql_timestamp, utcnow
from .dialect import Dialect, dialect_for
from .rollup import Tally, tally_ended

_PROMOTE = """UPDATE jobs SET status = 'pending', updated_at = :now
WHERE status = 'waiting'
  AND id IN (SELECT job_id FROM job_dependencies WHERE depends_on_id = :id)
  AND NOT EXISTS (
      SELECT 1 FROM job_dependencies d JOIN jobs j ON j.id = d.depends_on_id
      WHERE d.job_id = jobs.id AND j.status <> 'completed')"""

_WAITING_DEPENDANTS = """SELECT j.id FROM job_dependencies d JOIN jobs j ON j.id = d.job_id
WHERE d.depends_on_id = :id AND j.status IN ('waiting', 'pending', 'retrying')"""

_CANCEL_DEPENDANT = """UPDATE jobs SET status = 'cancelled', error_message = :reason,
    error_type = 'DependencyFailed', completed_at = :now, updated_at = :now
WHERE id = :id AND status IN ('waiting', 'pending', 'retrying')
RETURNING queue_name, job_type"""


def promote_dependants(db: peewee.Database, job_id: str) -> int:
    """Move to ``pending`` the waiting dependants of ``job_id`` whose dependencies all completed."""
    dialect = dialect_for(db)
    cursor = db.execute_sql(dialect.sql(_PROMOTE), {"id": job_id, "now": sql_timestamp(utcnow())})
    return cursor.rowcount


def cancel_dependants(
    db: peewee.Database, job_ids: Iterable[str], how: str, tally: Tally | None = None
) -> list[str]:
    """Cancel, transitively, the not-yet-running dependants of jobs that ``how`` ended.

    ``how`` reads in the reason: "dependency 0196… failed". Returns the cancelled ids.
    They are counted in ``tally`` (the caller's: all of a transaction's rollup rows are
    then written at once, in one lock order), else in the rollup here.
    """
    dialect = dialect_for(db)
    select_sql, cancel_sql = dialect.sql(_WAITING_DEPENDANTS), dialect.sql(_CANCEL_DEPENDANT)
    now_dt = utcnow()
    now = sql_timestamp(now_dt)
    cancelled: list[str] = []
    ended: list[tuple[str, str]] = []  # (queue, task) of each, for the rollup
    frontier = [(job_id, how) for job_id in job_ids]
    while frontier:
        parent, parent_how = frontier.pop()
        children = [row[0] for row in db.execute_sql(select_sql, {"id": parent}).fetchall()]
        for child in children:
            reason = f"dependency {parent} {parent_how}"
            row = db.execute_sql(cancel_sql, {"id": child, "reason": reason, "now": now}).fetchone()
            if row is not None:
                ended.append((row[0], row[1]))
                cancelled.append(child)
                frontier.append((child, "cancelled"))
    if ended:
        tally_ended(db, ended, now_dt, tally=tally)
    return cancelled


_LOCK_BATCH = "UPDATE batches SET total = total WHERE id = :id AND finished_at IS NULL"
_BATCH_COUNTS = "SELECT status, COUNT(*) FROM jobs WHERE batch_id = :id GROUP BY status"
_FINISH_BATCH = """UPDATE batches SET finished_at = :now, outcome = :outcome
WHERE id = :id AND finished_at IS NULL"""
_BATCH_CALLBACKS = "SELECT on_success, on_failure, on_complete FROM batches WHERE id = :id"
# The first failure marks the batch (its outcome is decided): on_failure fires once.
_MARK_FAILED = """UPDATE batches SET outcome = 'failure'
WHERE id = :id AND finished_at IS NULL AND outcome IS NULL"""
_FIRST_FAILED = """SELECT id, error_message FROM jobs
WHERE batch_id = :id AND status IN ('failed', 'cancelled')
ORDER BY COALESCE(failed_at, completed_at, updated_at), id LIMIT 1"""


def _enqueue_callback(
    db: peewee.Database, task: str, args: list, kwargs: dict | None = None
) -> None:
    """By name: insert_jobs applies the defaults (queue, priority ...) the task catalog
    holds for it."""
    from .enqueueing import insert_jobs

    options: dict = {"args": args}
    if kwargs:
        options["kwargs"] = kwargs
    insert_jobs(task, [options], database=db)


def _batch_failed(db: peewee.Database, dialect: Dialect, batch_id: str) -> None:
    """A job of the batch has ended failed or cancelled: enqueue ``on_failure`` (Laravel's
    ``catch``) now, once, with the first such job's id and error, rather than at the
    batch's end. The conditional update is the once: under the batch row's lock
    (``finish_batch``), the first transaction to see a failure marks the batch."""
    if db.execute_sql(dialect.sql(_MARK_FAILED), {"id": batch_id}).rowcount == 0:
        return
    on_failure = db.execute_sql(dialect.sql(_BATCH_CALLBACKS), {"id": batch_id}).fetchone()[1]
    if not on_failure:
        return
    row = db.execute_sql(dialect.sql(_FIRST_FAILED), {"id": batch_id}).fetchone()
    job_id, error = row if row is not None else (None, None)
    _enqueue_callback(db, on_failure, [batch_id, "failure"], {"job_id": job_id, "error": error})


def finish_batch(db: peewee.Database, batch_id: str) -> str | None:
    """Enqueue a batch's callbacks: ``on_failure`` at its first failed or cancelled job;
    ``on_success`` (every job completed) and ``on_complete`` once every job has ended.
    Returns the outcome ("success" | "failure") when this call finished the batch.

    The first statement locks the batch row (PostgreSQL) so two transactions ending the
    last two jobs at the same moment decide one after the other: the second one sees the
    first one's commit and the finished batch. SQLite's write lock serialises them anyway.
    """
    dialect = dialect_for(db)
    if db.execute_sql(dialect.sql(_LOCK_BATCH), {"id": batch_id}).rowcount == 0:
        return None  # finished already (or no such batch)
    counts = dict(db.execute_sql(dialect.sql(_BATCH_COUNTS), {"id": batch_id}).fetchall())
    if counts.get("failed") or counts.get("cancelled"):
        _batch_failed(db, dialect, batch_id)
    if any(counts.get(status) for status in ("pending", "waiting", "running", "retrying")):
        return None
    outcome = "success" if set(counts) <= {"completed"} else "failure"
    done = db.execute_sql(dialect.sql(_FINISH_BATCH), {
        "id": batch_id, "outcome": outcome, "now": sql_timestamp(utcnow())})  # fmt: skip
    if done.rowcount == 0:
        return None
    on_success, _, on_complete = db.execute_sql(
        dialect.sql(_BATCH_CALLBACKS), {"id": batch_id}
    ).fetchone()
    if on_success and outcome == "success":
        _enqueue_callback(db, on_success, [batch_id, "success"])
    if on_complete:
        _enqueue_callback(db, on_complete, [batch_id, "complete"])
    return outcome


def _batches_of(db: peewee.Database, job_ids: list[str]) -> set[str]:
    if not job_ids:
        return set()
    marks = ", ".join(f":j{i}" for i in range(len(job_ids)))
    rows = db.execute_sql(
        dialect_for(db).sql(
            f"SELECT DISTINCT batch_id FROM jobs WHERE id IN ({marks}) AND batch_id IS NOT NULL"
        ),
        {f"j{i}": job_id for i, job_id in enumerate(job_ids)},
    ).fetchall()
    return {row[0] for row in rows}


def job_ended(
    db: peewee.Database,
    job_id: str,
    status: str,
    batch_id: str | None = None,
    *,
    batches_to_finish: set[str] | None = None,
    tally: Tally | None = None,
) -> list[str]:
    """Everything that follows a job reaching a final status, inside the same transaction:
    dependants promoted (completed) or cancelled down the chain (failed, cancelled), and
    the batches of every job that ended here finished when complete. Returns the ids of
    the dependants cancelled.

    A caller ending many jobs in one transaction passes ``batches_to_finish`` and then
    calls ``finish_batches`` once: batch rows are locked in one order (sorted) by every
    transaction, so two supervisors ending jobs of the same batches never deadlock."""
    if status == "completed":
        promote_dependants(db, job_id)
        cascaded: list[str] = []
    else:
        cascaded = cancel_dependants(db, [job_id], status, tally)
    batches = _batches_of(db, cascaded)
    if batch_id:
        batches.add(batch_id)
    if batches_to_finish is not None:
        batches_to_finish |= batches
    else:
        finish_batches(db, batches)
    return cascaded


def finish_batches(db: peewee.Database, batches: Iterable[str]) -> None:
    """``finish_batch`` for each batch, in sorted order (the lock order)."""
    for batch in sorted(set(batches)):
        finish_batch(db, batch)


def jobs_ended(
    db: peewee.Database, job_ids: Iterable[str], status: str, tally: Tally | None = None
) -> list[str]:
    """``job_ended`` for many jobs that ended the same way (an operator's bulk cancel)."""
    job_ids = list(job_ids)
    cascaded: list[str] = []
    batches = _batches_of(db, job_ids)
    for job_id in job_ids:
        cascaded += cancel_dependants(db, [job_id], status, tally) if status != "completed" else []
        if status == "completed":
            promote_dependants(db, job_id)
    batches |= _batches_of(db, cascaded)
    for batch in sorted(batches):
        finish_batch(db, batch)
    return cascaded


_EXPIRE = """UPDATE jobs SET status = 'cancelled', error_message = 'expired: not started by its deadline',
    error_type = 'Expired', completed_at = :now, updated_at = :now
WHERE deadline IS NOT NULL AND deadline <= :now
  AND status IN ('pending', 'waiting', 'retrying')
RETURNING id, batch_id, queue_name, job_type"""


def expire_jobs(db: peewee.Database, now_stamp: str, tally: Tally | None = None) -> list[str]:
    """Cancel, as expired, the jobs not started by their deadline (huey's and Celery's
    ``expires``); their dependants and batches follow. The caller holds a write
    transaction. Returns the expired ids."""
    rows = db.execute_sql(dialect_for(db).sql(_EXPIRE), {"now": now_stamp}).fetchall()
    if rows:
        tally_ended(db, [(row[2], row[3]) for row in rows], as_datetime(now_stamp), tally=tally)
    batches: set[str] = set()
    for job_id, batch_id, *_ in rows:
        job_ended(db, job_id, "cancelled", batch_id, batches_to_finish=batches, tally=tally)
    finish_batches(db, batches)
    return [row[0] for row in rows]
