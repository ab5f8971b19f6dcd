"""Pruning ended jobs in small batches, never one a live job still depends on."""

from __future__ import annotations

from datetime import timedelta

import peewee

from .clock import sql_timestamp, utcnow
from .dialect import dialect_for
from .store import get_database

PRUNE_BATCH = 500

_PRUNE = """DELETE FROM jobs WHERE id IN (
    SELECT id FROM jobs
    WHERE status IN ({statuses}) AND updated_at < :cutoff
      AND NOT EXISTS (
          SELECT 1 FROM job_dependencies d JOIN jobs live ON live.id = d.job_id
          WHERE d.depends_on_id = jobs.id
            AND live.status IN ('pending', 'waiting', 'retrying', 'running'))
    LIMIT :batch)"""


def prune_jobs(
    *,
    older_than: timedelta,
    include_failed: bool = False,
    batch_size: int = PRUNE_BATCH,
    max_batches: int | None = None,
    retry_locked: bool = True,
    db: peewee.Database | None = None,
) -> int:
    """Delete completed and cancelled jobs (and failed ones with ``include_failed``) whose
    last change is older than ``older_than``; their attempts go with them. Returns the count.

    Each batch is its own short transaction, so supervisors and enqueues interleave;
    ``max_batches`` bounds the work of one call (the supervisor prunes a batch per turn).
    """
    from .claims import with_lock_retry

    db = get_database(db)
    dialect = dialect_for(db)
    statuses = "'completed', 'cancelled'" + (", 'failed'" if include_failed else "")
    sql = dialect.sql(_PRUNE.format(statuses=statuses))
    params = {"cutoff": sql_timestamp(utcnow() - older_than), "batch": int(batch_size)}
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
