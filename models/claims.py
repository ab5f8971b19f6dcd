"""Claims and the fenced writes of a running attempt.

A claim takes up to n due jobs in one statement (priority, due time, FIFO), increments each
job's ``attempt`` and writes a fresh ``lease_token``. Every later write for that run
(heartbeat, progress, outcome) carries ``(id, attempt, lease_token)`` and changes nothing
unless the job is still running under that very attempt, so a zombie worker or a
supervisor that lost its lease cannot overwrite a newer attempt (RELIABILITY.md, "Fence").

These are the hot paths: statements are prepared text, parameters plain values.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import peewee

from .attempt import AttemptOutcome
from .base import dumps
from .clock import sql_timestamp, utcnow
from .dialect import CLAIM_COLUMNS, Dialect, dialect_for
from .errors import InvalidTransition, JobNotFound
from .fairness import any_fair, claim_fair
from .flow import any_flow, claim_with_flow
from .limits import any_limits, rooms
from .outcomes import Outcome, write_outcomes
from .staging import promote_staged
from .store import classify_error, get_database

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from typing import Any, TypeVar

    T = TypeVar("T")

log = logging.getLogger(__name__)

LOCKED_RETRY_DEADLINE_S = 60.0
PROGRESS_MESSAGE_MAX = 500

_FENCE = "id = :id AND attempt = :attempt AND lease_token = :token AND status = 'running'"


_PROGRESS = f"""UPDATE jobs SET progress_percentage = :pct, progress_message = :msg,
    progress_details = :details, heartbeat_at = :now, updated_at = :now
WHERE {_FENCE}"""

_HEARTBEAT = f"UPDATE jobs SET heartbeat_at = :now WHERE {_FENCE}"

_START = f"""UPDATE jobs SET status = 'running', attempt = attempt + 1, lease_token = :token,
    started_at = :now, heartbeat_at = :now, updated_at = :now, worker_name = :worker_name,
    supervisor_name = :supervisor_name, progress_percentage = 0, progress_message = NULL,
    progress_details = NULL
WHERE id = :id AND status IN ('pending', 'retrying')
RETURNING {", ".join(CLAIM_COLUMNS)}"""


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """One claimed run: what a worker needs, and the fence for every write about it."""

    id: str
    job_type: str
    parameters_json: str
    attempt: int
    lease_token: str
    retry_count: int
    max_retries: int
    timeout: float | None
    queue_name: str
    priority: int
    retry_delay: float | None
    retry_backoff: float | None
    retry_max_delay: float | None
    retry_jitter: bool | None
    started_at: Any
    run_at: Any  # when it was due: the claim order is priority, then this, then id
    #: options its enqueuer left unset (catalog.UNSET_*): the supervisor's defaults apply
    unset_options: int = 0
    #: the enqueuer's trace context (JSON of a W3C carrier), for the worker's span
    trace_context: str | None = None
    #: a retry's backoff end: it was due at the later of this and run_at (its wait counts
    #: from there, as the rollup's does)
    next_retry_at: Any = None

    @property
    def parameters(self) -> dict[str, Any]:
        return json.loads(self.parameters_json or "{}")

    @property
    def fence(self) -> tuple[str, int, str]:
        return (self.id, self.attempt, self.lease_token)


def clamp_percentage(value: float) -> float:
    return max(0.0, min(100.0, float(value)))


def clip_message(message: str | None) -> str | None:
    return None if message is None else str(message)[:PROGRESS_MESSAGE_MAX]


def _is_locked(exc: BaseException) -> bool:
    text = str(exc).lower()
    return (
        "database is locked" in text
        or "database table is locked" in text
        or "due to lock timeout" in text
    )  # PostgreSQL, where a lock_timeout is set


def with_lock_retry(fn: Callable[[], T], deadline_s: float = LOCKED_RETRY_DEADLINE_S) -> T:
    """Run ``fn``, retrying "database is locked" with backoff until ``deadline_s``.

    busy_timeout already waits inside SQLite; this covers the unfair tail of its busy
    handler (fact 7), so the caller never sees a lock error a moment of patience would fix.
    """
    give_up = time.monotonic() + deadline_s
    pause = 0.002
    while True:
        try:
            return fn()
        except peewee.OperationalError as exc:
            if not _is_locked(exc) or time.monotonic() >= give_up:
                raise classify_error(exc) from exc
            time.sleep(pause)
            pause = min(pause * 2, 0.25)


def _claim_params(
    dialect: Dialect,
    limit: int,
    queues: Sequence[str] | None,
    tasks: Sequence[str] | None,
    worker_name: str | None,
    supervisor_name: str | None,
    now: datetime | None,
) -> dict[str, Any]:
    return {
        **dialect.claim_queue_params(queues),
        "now": sql_timestamp(now or utcnow()),
        "tasks": dialect.list_param(tasks),
        "limit": int(limit),
        "worker_name": worker_name,
        "supervisor_name": supervisor_name,
        "capped": False,  # limited queues are claimed apart (limits.py)
    }


def _claimed(rows: list[tuple], in_order: bool = False) -> list[ClaimedJob]:
    """The claimed rows as jobs, in the order they are to start: the claim's own order
    (``in_order``: a fair claim's round-robin), else priority, due time, FIFO."""
    claimed = [ClaimedJob(*row) for row in rows]
    if not in_order:
        claimed.sort(key=lambda job: (-job.priority, job.run_at, job.id))
    return claimed


def claim_in_transaction(
    db: peewee.Database,
    limit: int,
    *,
    queues: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
    worker_name: str | None = None,
    supervisor_name: str | None = None,
    now: datetime | None = None,
    limits: bool | None = None,
    flow: bool | None = False,
    held: list[datetime] | None = None,
    fair: bool | None = False,
) -> list[ClaimedJob]:
    """``claim_jobs`` inside the caller's write transaction (the supervisor's group commit).

    ``limits``: whether some queue may have a concurrency limit (None: look). Limited
    queues are claimed first, each up to its room (limits.py), then the rest.
    ``flow``: whether some rate or key limit may exist (None: look); then flow.py claims,
    and appends to ``held`` when a job it held back is due again.

    ``fair``: whether some fair-keyed job may be claimable (None: look); then keyed jobs
    are served round-robin across their keys (fairness.py).

    Staged jobs (staging.py) are promoted first: the claim reads only the claim indexes."""
    if limit <= 0:
        return []
    promote_staged(db)
    dialect = dialect_for(db)
    params = _claim_params(dialect, limit, queues, tasks, worker_name, supervisor_name, now)
    use_limits = bool(limits or (limits is None and any_limits(db)))
    bound = bool(flow or (flow is None and any_flow(db)))

    def rest(n: int) -> list[tuple]:
        if not bound:
            return _claim_plain(db, dialect, {**params, "limit": n}, queues, use_limits)
        rows, hold = claim_with_flow(db, dialect, n, params, queues, use_limits,
                                     now or utcnow())  # fmt: skip
        if hold is not None and held is not None:
            held.append(hold)
        return rows

    if fair or (fair is None and any_fair(db)):
        rows = claim_fair(db, dialect, limit, params, queues, use_limits, rest, bound)
        return _claimed(rows, in_order=True)
    return _claimed(rest(limit))


def _claim_plain(
    db: peewee.Database,
    dialect: Dialect,
    params: dict[str, Any],
    queues: Sequence[str] | None,
    limits: bool,
) -> list[tuple]:
    """The claim of jobs without a fair key: limited queues first, each up to its room,
    then the rest, in claim order."""
    limit = params["limit"]
    claimed: list[tuple] = []
    if limit <= 0:
        return claimed
    if limits:
        for name, room in rooms(db, dialect, queues):
            take = min(room, limit - len(claimed))
            if take <= 0:
                break
            capped = {**params, **dialect.claim_queue_params([name]), "limit": take,
                      "capped": True}  # fmt: skip
            claimed += db.execute_sql(dialect.claim_statement(1), capped).fetchall()
        params["limit"] = limit - len(claimed)
    if params["limit"] > 0:
        sql = dialect.claim_statement(None if queues is None else len(queues))
        claimed += db.execute_sql(sql, params).fetchall()
    return claimed


def claim_jobs(
    limit: int,
    *,
    queues: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
    worker_name: str | None = None,
    supervisor_name: str | None = None,
    now: datetime | None = None,
    db: peewee.Database | None = None,
) -> list[ClaimedJob]:
    """Claim up to ``limit`` due jobs of ``queues`` (all if None) for ``tasks`` (all if None).

    Highest priority first, then due time, then FIFO; never from a paused queue; never a
    job that is waiting on dependencies or not yet due. One transaction, one statement.
    """
    if limit <= 0:
        return []
    db = get_database(db)

    def run() -> list[ClaimedJob]:
        with dialect_for(db).write_transaction(db):
            return claim_in_transaction(db, limit, queues=queues, tasks=tasks,
                                        worker_name=worker_name, flow=None, fair=None,
                                        supervisor_name=supervisor_name, now=now)  # fmt: skip

    return with_lock_retry(run)


def start_job(
    job_id: str,
    *,
    worker_name: str | None = None,
    supervisor_name: str | None = None,
    db: peewee.Database | None = None,
) -> Any:
    """Claim one given job now, due or not (the seed's ``mark_as_started``)."""
    import secrets

    from .job import Job

    db = get_database(db)
    dialect = dialect_for(db)
    params = {
        "id": job_id, "token": secrets.token_hex(16), "now": sql_timestamp(utcnow()),
        "worker_name": worker_name, "supervisor_name": supervisor_name,
    }  # fmt: skip

    def run() -> list[tuple]:
        with dialect.write_transaction(db):
            return db.execute_sql(dialect.sql(_START), params).fetchall()

    if not with_lock_retry(run):
        job = Job.get_or_none(Job.id == job_id)
        if job is None:
            raise JobNotFound(f"no job {job_id}")
        raise InvalidTransition(f"job {job_id} is {job.status}: only a pending job can start")
    return Job.get_by_id(job_id)


def complete_job(
    job_id: str,
    attempt: int,
    lease_token: str | None,
    result: Any = None,
    *,
    result_json: str | None = None,
    worker: dict[str, Any] | None = None,
    db: peewee.Database | None = None,
) -> bool:
    """Record success for this attempt; False (and nothing written) if it lost its lease."""
    outcome = Outcome(job_id, attempt, lease_token, "completed",
                      result_json=result_json if result_json is not None else dumps(result),
                      worker=worker or {})  # fmt: skip
    ok = write_outcomes([outcome], db=db)[0] is not None
    if not ok:
        log.warning("dropped the result of job %s attempt %s: lease lost", job_id, attempt)
    return ok


def fail_job(
    job_id: str,
    attempt: int,
    lease_token: str | None,
    error: str,
    traceback: str | None = None,
    *,
    error_type: str | None = None,
    permanent: bool = False,
    outcome: str = AttemptOutcome.FAILED,
    retry_delay: float | None = None,
    force_retry: bool = False,
    worker: dict[str, Any] | None = None,
    db: peewee.Database | None = None,
) -> str | None:
    """Record a failed run: ``retrying`` while retries remain, else ``failed`` (final).

    Returns the new status, or None when this attempt had lost its lease (nothing written).
    ``retry_delay`` overrides the policy's delay; ``force_retry`` retries even when no
    retries remain (an explicit ``schedule_retry``).
    """
    status = write_outcomes([Outcome(
        job_id, attempt, lease_token, "failed", error=error, error_type=error_type,
        traceback=traceback, permanent=permanent, attempt_outcome=outcome,
        retry_delay_s=retry_delay, consume_retry=not force_retry, worker=worker or {},
    )], db=db)[0]  # fmt: skip
    if status is None:
        log.warning("dropped the failure of job %s attempt %s: lease lost", job_id, attempt)
    return status


def record_progress(
    job_id: str,
    attempt: int,
    lease_token: str | None,
    percentage: float,
    message: str | None = None,
    *,
    details: str | None = None,
    db: peewee.Database | None = None,
) -> bool:
    """Write progress for this attempt (``details``: JSON text, see
    ``jobtui.context.encode_details``; None clears them); False when it lost its lease."""
    db = get_database(db)
    dialect = dialect_for(db)
    params = {"id": job_id, "attempt": attempt, "token": lease_token,
              "pct": clamp_percentage(percentage), "msg": clip_message(message),
              "details": details, "now": sql_timestamp(utcnow())}  # fmt: skip
    return with_lock_retry(lambda: db.execute_sql(dialect.sql(_PROGRESS), params).rowcount == 1)


def record_heartbeats(
    fences: Iterable[tuple[str, int, str]], *, db: peewee.Database | None = None
) -> list[str]:
    """Extend the leases of running attempts in one transaction; returns the ids whose lease
    was lost (their workers must stop writing)."""
    db = get_database(db)
    fences = list(fences)
    return write_fenced(db, dialect_for(db).sql(_HEARTBEAT), fences) if fences else []


def write_fenced(db: peewee.Database, sql: str, fences: list[tuple[str, int, str]]) -> list[str]:
    """Run ``sql`` (fenced by :id, :attempt, :token; :now given) once per run in one
    transaction, retried while the database is locked; returns the ids whose run was no
    longer held (zero rows: the lease was lost)."""
    dialect, now = dialect_for(db), sql_timestamp(utcnow())

    def run() -> list[str]:
        lost = []
        with dialect.write_transaction(db):
            for job_id, attempt, token in fences:
                params = {"id": job_id, "attempt": attempt, "token": token, "now": now}
                if db.execute_sql(sql, params).rowcount != 1:
                    lost.append(job_id)
        return lost

    return with_lock_retry(run)
