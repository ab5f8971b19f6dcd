"""What follows when a job ends: dependants promoted or cancelled, down the chain.

Called inside the transaction that ended the job, so a dependant never sees a half-made
decision. Batches finish in ``batch_finish`` (the workflows issue) through the same hook.
"""

from __future__ import annotations

from collections.abc import Iterable

import peewee

from .clock import sql_timestamp, utcnow
from .dialect import dialect_for

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
WHERE id = :id AND status IN ('waiting', 'pending', 'retrying')"""


def promote_dependants(db: peewee.Database, job_id: str) -> int:
    """Move to ``pending`` the waiting dependants of ``job_id`` whose dependencies all completed."""
    dialect = dialect_for(db)
    cursor = db.execute_sql(dialect.sql(_PROMOTE), {"id": job_id, "now": sql_timestamp(utcnow())})
    return cursor.rowcount


def cancel_dependants(db: peewee.Database, job_ids: Iterable[str], how: str) -> list[str]:
    """Cancel, transitively, the not-yet-running dependants of jobs that ``how`` ended.

    ``how`` reads in the reason: "dependency 0196… failed". Returns the cancelled ids.
    """
    dialect = dialect_for(db)
    select_sql, cancel_sql = dialect.sql(_WAITING_DEPENDANTS), dialect.sql(_CANCEL_DEPENDANT)
    now = sql_timestamp(utcnow())
    cancelled: list[str] = []
    frontier = [(job_id, how) for job_id in job_ids]
    while frontier:
        parent, parent_how = frontier.pop()
        children = [row[0] for row in db.execute_sql(select_sql, {"id": parent}).fetchall()]
        for child in children:
            reason = f"dependency {parent} {parent_how}"
            if db.execute_sql(cancel_sql, {"id": child, "reason": reason, "now": now}).rowcount:
                cancelled.append(child)
                frontier.append((child, "cancelled"))
    return cancelled
