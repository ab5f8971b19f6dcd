"""Pruning ended jobs in small batches, never one a live job still depends on."""

from __future__ import annotations

from datetime import timedelta

import peewee

from .clock import sql_timestamp, utcnow
from .dialect import dialect_for
from .store import get_database

PRUNE_BATCH = 500

_PRUNE = """DELETE FROM jobs WHERE id IN ({arms}
    LIMIT :batch)"""
# One arm per status, each a walk of the (status, id) index: a status compared with a list
# (`IN`) would not use it, since that index's condition names each status apart (job.py).
_PRUNE_ARM = """SELECT id FROM jobs
    WHERE status = '{status}' AND updated_at < :cutoff{queue}
      AND NOT EXISTS (
          SELECT 1 FROM job_dependencies d JOIN jobs live ON live.id = d.job_id
          WHERE d.depends_on_id = jobs.id
            AND live.status IN ('pending', 'waiting', 'retrying', 'running'))"""


def prune_jobs(
    *,
    older_than: timedelta,
    include_failed: bool = False,
    queue: str | None = None,
    batch_size: int = PRUNE_BATCH,
    max_batches: int | None = None,
    retry_locked: bool = True,
    db: peewee.Database | None = None,
) -> int:
    """Delete completed and cancelled jobs (and failed ones with ``include_failed``) whose
    last change is older than ``older_than`` (of ``queue`` only, if given); their attempts
    go with them. Returns the count.

    Each batch is its own short transaction, so supervisors and enqueues interleave;
    ``max_batches`` bounds the work of one call (the supervisor prunes a batch per turn).
    """
    statuses = (
        ("completed", "cancelled", "failed") if include_failed else ("completed", "cancelled")
    )
    return _delete_ended(statuses, older_than, queue, batch_size, max_batches, retry_locked, db)


def purge_failed_jobs(
    *,
    queue: str | None = None,
    older_than: timedelta | None = None,
    db: peewee.Database | None = None,
) -> int:
    """Delete failed jobs only (the dead letters an operator has looked at), of ``queue``
    and last changed more than ``older_than`` ago if given; completed and cancelled jobs
    stay for the supervisor's retention. A failed job a live job still depends on stays
    too: deleting it would leave that job waiting on nothing. Returns the count."""
    return _delete_ended(("failed",), older_than, queue, PRUNE_BATCH, None, True, db)


def _delete_ended(
    statuses: tuple[str, ...],
    older_than: timedelta | None,
    queue: str | None,
    batch_size: int,
    max_batches: int | None,
    retry_locked: bool,
    db: peewee.Database | None,
) -> int:
    from .claims import with_lock_retry

    db = get_database(db)
    dialect = dialect_for(db)
    where_queue = "" if queue is None else " AND queue_name = :queue"
    arms = "\n    UNION ALL ".join(_PRUNE_ARM.format(status=s, queue=where_queue) for s in statuses)
    sql = dialect.sql(_PRUNE.format(arms=arms))
    # No age given: everything up to now (a moment ahead, so a job ended this instant counts).
    cutoff = utcnow() - older_than if older_than is not None else utcnow() + timedelta(seconds=1)
    params = {"cutoff": sql_timestamp(cutoff), "batch": int(batch_size), "queue": queue}
    total = batches = 0
    while True:

        def run() -> int:
            with dialect.write_transaction(db):
                return db.execute_sql(sql, params).rowcount

        deleted = with_lock_retry(run) if retry_locked else run()
        total += deleted
        batches += 1
        if deleted < batch_size or (max_batches is not None and batches >= max_batches):
            return total


_PRUNE_FIRES = """DELETE FROM schedule_fires WHERE id IN (
    SELECT id FROM schedule_fires WHERE fire_time < :cutoff LIMIT :batch)"""

#: Fire records are kept at least this long whatever the retention: a scheduler looks back
#: up to a day (catch-up "once"), and a record must outlive every tick it could refuse.
FIRES_KEPT_AT_LEAST = timedelta(days=2)


def prune_schedule_fires(
    *, older_than: timedelta, batch_size: int = PRUNE_BATCH, db: peewee.Database | None = None
) -> int:
    """Delete one batch of cron fire records older than ``older_than`` (at least two days):
    one row per tick would otherwise grow without end (86,400 a day for a per-second
    schedule). Returns the count deleted; the caller holds no transaction."""
    db = get_database(db)
    dialect = dialect_for(db)
    cutoff = utcnow() - max(older_than, FIRES_KEPT_AT_LEAST)
    with dialect.write_transaction(db):
        return db.execute_sql(dialect.sql(_PRUNE_FIRES),
                              {"cutoff": sql_timestamp(cutoff), "batch": int(batch_size)}
                              ).rowcount  # fmt: skip
