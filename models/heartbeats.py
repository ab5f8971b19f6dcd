"""Supervisor and worker rows, and the leases of running jobs, written in one batch.

On PostgreSQL heartbeats are stamped with the database's clock (``now()``), so a reaper
on another host compares them with that same clock, never with its own (RELIABILITY.md,
"Liveness"). On SQLite every process shares the host's clock, and reapers also watch
whether a heartbeat *changed* during a lease of their own monotonic time, so a wall-clock
jump cannot expire a healthy lease.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import peewee

from .base import as_datetime, dumps
from .clock import sql_timestamp, utcnow
from .dialect import dialect_for
from .worker import Supervisor

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from typing import Any

_SUPERVISOR_UPSERT = """INSERT INTO supervisors (name, host, pid, process_started_at, started_at,
    heartbeat_at, state, tasks, queues, version, cpu_percent, rss_bytes, jobs_done, jobs_failed,
    heartbeat_interval_s, schema_version)
VALUES (:name, :host, :pid, :process_started_at, :now, {now}, :state, :tasks, :queues,
    :version, 0, 0, 0, 0, :heartbeat_interval_s, :schema_version)
ON CONFLICT (name) DO UPDATE SET host = excluded.host, pid = excluded.pid,
    process_started_at = excluded.process_started_at, started_at = excluded.started_at,
    heartbeat_at = excluded.heartbeat_at, state = excluded.state, tasks = excluded.tasks,
    queues = excluded.queues, version = excluded.version, cpu_percent = 0, rss_bytes = 0,
    jobs_done = 0, jobs_failed = 0, heartbeat_interval_s = excluded.heartbeat_interval_s,
    schema_version = excluded.schema_version"""

_SUPERVISOR_BEAT = """UPDATE supervisors SET heartbeat_at = {now}, state = :state,
    cpu_percent = :cpu_percent, rss_bytes = :rss_bytes, jobs_done = :jobs_done,
    jobs_failed = :jobs_failed
WHERE name = :name AND pid = :pid"""

_WORKER_UPSERT = """INSERT INTO workers (name, supervisor_name, host, pid, process_started_at,
    started_at, heartbeat_at, state, queue_name, current_job_id, cpu_percent, rss_bytes,
    jobs_done, jobs_failed)
VALUES (:name, :supervisor_name, :host, :pid, :process_started_at, :started_at, {now}, :state,
    :queue_name, :current_job_id, :cpu_percent, :rss_bytes, :jobs_done, :jobs_failed)
ON CONFLICT (name) DO UPDATE SET supervisor_name = excluded.supervisor_name,
    host = excluded.host, pid = excluded.pid, process_started_at = excluded.process_started_at,
    started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at,
    state = excluded.state, queue_name = excluded.queue_name,
    current_job_id = excluded.current_job_id, cpu_percent = excluded.cpu_percent,
    rss_bytes = excluded.rss_bytes, jobs_done = excluded.jobs_done,
    jobs_failed = excluded.jobs_failed"""

_LEASE = """UPDATE jobs SET heartbeat_at = {now}
WHERE id = :id AND attempt = :attempt AND lease_token = :token AND status = 'running'"""


_STALE = """SELECT id, attempt, supervisor_name, job_type FROM jobs WHERE status = 'running'
AND (supervisor_name IS NULL OR supervisor_name <> :me)
AND heartbeat_at < {now} - make_interval(secs => :lease)"""


#: A process whose heartbeat is older than 3 of its supervisor's heartbeat intervals is
#: stale; this is that for the default 5 s (rows of supervisors that stored no interval).
STALE_AFTER_S = 15.0


def stale_after_s(heartbeat_interval_s: float | None) -> float:
    """How old a heartbeat may be before its process counts as stale: 3 intervals."""
    return 3 * heartbeat_interval_s if heartbeat_interval_s else STALE_AFTER_S


def workers_serving(db: peewee.Database, now: datetime) -> dict[str, int]:
    """Workers serving each queue, from the live supervisors' registrations ("*": the
    workers that serve every queue)."""
    out: dict[str, int] = {}
    rows = Supervisor.select(Supervisor.queues, Supervisor.heartbeat_at,
                             Supervisor.heartbeat_interval_s).tuples().execute(db)  # fmt: skip
    for queues, beat, interval in rows:
        beat = as_datetime(beat)
        if beat is None or (now - beat).total_seconds() > stale_after_s(interval) or not queues:
            continue
        for label, size in dict(queues).items():
            for name in str(label).split(","):
                out[name] = out.get(name, 0) + int(size or 0)
    return out


def _sql(db: peewee.Database, statement: str) -> str:
    return dialect_for(db).with_db_now(statement)


def register_supervisor(db: peewee.Database, row: dict[str, Any]) -> None:
    """Create (or take over) the supervisor's row. The caller holds a write transaction."""
    params = {
        "heartbeat_interval_s": None,
        "schema_version": None,
        **row,
        "now": sql_timestamp(utcnow()),
        "tasks": dumps(row.get("tasks") or []),
        "queues": dumps(row.get("queues") or {}),
    }
    db.execute_sql(_sql(db, _SUPERVISOR_UPSERT), params)  # fmt: skip


def write_heartbeat(
    db: peewee.Database,
    supervisor: dict[str, Any],
    workers: Sequence[dict[str, Any]],
    fences: Iterable[tuple[str, int, str]],
) -> list[str]:
    """Refresh the supervisor's row, its workers' rows and its jobs' leases; drop rows of
    workers that are gone. Returns the ids of jobs whose lease was lost. The caller holds
    a write transaction."""
    now = sql_timestamp(utcnow())
    db.execute_sql(_sql(db, _SUPERVISOR_BEAT), {**supervisor, "now": now})
    upsert = _sql(db, _WORKER_UPSERT)
    for worker in workers:
        db.execute_sql(upsert, {**worker, "now": now})
    names = [w["name"] for w in workers]
    marks = ", ".join(f":w{i}" for i in range(len(names))) or "NULL"
    db.execute_sql(
        dialect_for(db).sql(
            f"DELETE FROM workers WHERE supervisor_name = :sup AND name NOT IN ({marks})"
        ),
        {"sup": supervisor["name"], **{f"w{i}": n for i, n in enumerate(names)}},
    )
    lease = _sql(db, _LEASE)
    fences = list(fences)
    free = dialect_for(db).unlocked_jobs(db, [job_id for job_id, _, _ in fences])
    lost = []
    for job_id, attempt, token in fences:
        if job_id not in free:
            continue  # locked by another transaction: renewed once it lets go
        params = {"id": job_id, "attempt": attempt, "token": token, "now": now}
        if db.execute_sql(lease, params).rowcount != 1:
            lost.append(job_id)
    return lost


def remove_supervisor(db: peewee.Database, name: str) -> None:
    """Delete a supervisor's row and its workers' rows (a clean stop, or a reaped one)."""
    dialect = dialect_for(db)
    db.execute_sql(dialect.sql("DELETE FROM workers WHERE supervisor_name = :name"), {"name": name})
    db.execute_sql(dialect.sql("DELETE FROM supervisors WHERE name = :name"), {"name": name})


def stale_running_jobs(
    db: peewee.Database, lease_s: float, exclude_supervisor: str
) -> list[tuple[str, int, str | None, str]]:
    """PostgreSQL: running jobs of other owners whose heartbeat is older than ``lease_s`` on
    the database's clock: (id, attempt, owner, job_type)."""
    dialect = dialect_for(db)
    if dialect.name == "sqlite":
        return []  # one host, one clock: the reaper's monotonic watch does this job
    rows = db.execute_sql(
        dialect.with_db_now(_STALE),
        {"me": exclude_supervisor, "lease": float(lease_s)},
    ).fetchall()
    return [(r[0], int(r[1]), r[2], r[3]) for r in rows]
