"""What follows when a job ends: dependants promoted or cancelled, down the chain.

Called inside the transaction that ended the job, so a dependant never sees a half-made
decision, and a batch's callbacks are enqueued exactly once, with the last job's end.
"""

from __future__ import annotations

from collections.abc import Iterable

import peewee

from .base import as_datetime
from .clock import sql_timestamp, utcnow
from .dialect import dialect_for
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


def finish_batch(db: peewee.Database, batch_id: str) -> str | None:
    """Enqueue a batch's callbacks once every job of it has ended; returns the outcome
    ("success" | "failure") when this call finished the batch, else None.

    The first statement locks the batch row (PostgreSQL) so two transactions ending the
    last two jobs at the same moment decide one after the other: the second one sees the
    first one's commit and the finished batch. SQLite's write lock serialises them anyway.
    """
    dialect = dialect_for(db)
    if db.execute_sql(dialect.sql(_LOCK_BATCH), {"id": batch_id}).rowcount == 0:
        return None  # finished already (or no such batch)
    counts = dict(db.execute_sql(dialect.sql(_BATCH_COUNTS), {"id": batch_id}).fetchall())
    if any(counts.get(status) for status in ("pending", "waiting", "running", "retrying")):
        return None
    outcome = "success" if set(counts) <= {"completed"} else "failure"
    done = db.execute_sql(dialect.sql(_FINISH_BATCH), {
        "id": batch_id, "outcome": outcome, "now": sql_timestamp(utcnow())})  # fmt: skip
    if done.rowcount == 0:
        return None
    on_success, on_failure, on_complete = db.execute_sql(
        dialect.sql(_BATCH_CALLBACKS), {"id": batch_id}
    ).fetchone()
    from .enqueueing import insert_jobs

    callbacks = [(on_success if outcome == "success" else on_failure, outcome),
                 (on_complete, "complete")]  # fmt: skip
    for task, label in callbacks:
        if task:  # by name: insert_jobs applies the defaults the task catalog holds
            insert_jobs(task, [{"args": [batch_id, label]}], database=db)
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
