"""How a run ends, written for many runs in one transaction (the supervisor's group commit).

Each kind of ending is one fenced statement plus its attempt row:

- ``completed``: the result is stored; waiting dependants whose dependencies are now all
  complete become pending.
- ``failed``: ``retrying`` after the policy's backoff while retries remain and the error is
  not permanent, else ``failed`` (final: dependants are cancelled). ``consume_retry=False``
  is for the operator's explicit ``schedule_retry``.
- ``cancelled``: the run stopped on an operator's request; final, dependants cancelled.
- ``interrupted``: put back to ``pending`` by a shutdown; costs no retry.

A job that goes back in line keeps its place: no requeue writes ``run_at`` (the claim's
order after priority). A put-back job never ran, so it is next again; a retry waits until
``next_retry_at`` (the claim's filter, dialect.py) and then only its backoff, not the
jobs enqueued while it ran or waited (issue 13, item 3).

The fence is ``(id, attempt, lease_token)`` for the owner; a reaper that never held the
lease passes no token and fences on ``(id, attempt)`` — the attempt number alone already
tells one run from the next.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import peewee

from .attempt import AttemptOutcome
from .catalog import (
    UNSET_MAX_RETRIES,
    UNSET_RETRY_BACKOFF,
    UNSET_RETRY_DELAY,
    UNSET_RETRY_JITTER,
    UNSET_RETRY_MAX_DELAY,
)
from .clock import sql_timestamp, utcnow
from .dialect import Dialect, dialect_for, pg_array
from .retry import RetryPolicy
from .rollup import Tally
from .workflow import finish_batches, job_ended

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from typing import Any

FENCE = ("id = :id AND attempt = :attempt AND status = 'running'"
         " AND (:token IS NULL OR lease_token = :token)")  # fmt: skip

# what an ended run returns: for dependants and batches, and for the rollup (rollup.py)
#: When the run was due (its wait is counted from then): a retry's backoff end when that is
#: later than its place in line (run_at keeps the place, next_retry_at the backoff).
_DUE = ("CASE WHEN next_retry_at IS NOT NULL AND next_retry_at > run_at"
        " THEN next_retry_at ELSE run_at END")  # fmt: skip
_ENDED = f"started_at, batch_id, has_dependants, queue_name, job_type, {_DUE}"

# who ran it, and when it began if that was later than its claim
_RAN_BY = ("worker_name = COALESCE(:worker_name, worker_name),"
           " started_at = COALESCE(:started_at, started_at)")  # fmt: skip

_COMPLETED = f"""UPDATE jobs SET status = 'completed', result = :result, completed_at = :now,
    updated_at = :now, progress_percentage = 100, error_message = NULL, error_type = NULL,
    error_traceback = NULL, error_permanent = :no, cancel_requested = :no, {_RAN_BY}
WHERE {FENCE}
RETURNING {_ENDED}"""

_READ_POLICY = f"""SELECT retry_count, max_retries, retry_delay, retry_backoff,
    retry_max_delay, retry_jitter, started_at, batch_id, has_dependants, unset_options,
    queue_name, job_type, {_DUE}, crash_count
FROM jobs WHERE {FENCE}"""

_FAILED = f"""UPDATE jobs SET status = :status, retry_count = :retry_count,
    max_retries = :max_retries, crash_count = :crash_count,
    next_retry_at = :next_retry_at,
    failed_at = :failed_at, updated_at = :now, error_message = :error,
    error_type = :error_type, error_traceback = :traceback, error_permanent = :permanent,
    {_RAN_BY}
WHERE {FENCE}"""

_CANCELLED = f"""UPDATE jobs SET status = 'cancelled', completed_at = :now, updated_at = :now,
    error_message = :error, error_type = :error_type, error_traceback = :traceback, {_RAN_BY}
WHERE {FENCE}
RETURNING {_ENDED}"""

_INTERRUPTED = f"""UPDATE jobs SET status = 'pending', updated_at = :now,
    error_message = :error, cancel_requested = :no, started_at = COALESCE(:started_at, started_at)
WHERE {FENCE}
RETURNING {_ENDED}"""

_ATTEMPT = """INSERT INTO job_attempts (job_id, attempt, worker_name, supervisor_name, pid,
    host, started_at, ended_at, outcome, error_type, error_message, error_traceback)
VALUES (:id, :attempt, :worker_name, :supervisor_name, :pid, :host, :started_at, :now,
    :outcome, :error_type, :error, :traceback)"""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one run ended, as the supervisor (or the API) reports it."""

    job_id: str
    attempt: int
    lease_token: str | None
    kind: str  # completed | failed | cancelled | interrupted
    result_json: str | None = None
    error: str | None = None
    error_type: str | None = None
    traceback: str | None = None
    permanent: bool = False
    #: What the attempt row says: completed, failed, timed_out, crashed, cancelled, interrupted.
    attempt_outcome: str | None = None
    retry_delay_s: float | None = None  # overrides the policy's delay
    consume_retry: bool = True  # False: retry even with none left (explicit schedule_retry)
    #: The task's policy as the supervisor resolved it (task, --default-*, built-in): it
    #: decides what the job row left NULL or its enqueuer left unset (catalog.py).
    task_policy: RetryPolicy | None = None
    worker: dict[str, Any] = field(default_factory=dict)  # worker_name, supervisor_name, pid, host
    #: When the run began, if later than its claim (a prefetched job waits for its worker):
    #: written on the job and its attempt row. None keeps the claim's time.
    started_at: str | None = None
    #: The run killed its worker (a signal, an exit mid-job, a hang past the lease): how,
    #: in a few words ("SIGKILL, peak RSS 812 MB"). It counts towards quarantine.
    crash: str | None = None
    #: Crashes after which the job is quarantined (failed at once, retries or not); None
    #: or 0: never (the supervisor resolves the task's, then its --max-crashes).
    max_crashes: int | None = None


class _Statements:
    """The outcome statements in one dialect's parameter style, built once."""

    def __init__(self, dialect: Dialect) -> None:
        self.completed = dialect.sql(_COMPLETED)
        # PostgreSQL: lock the row, so an enqueue adding a dependant (it locks the row too)
        # is seen, committed, before has_dependants is read (SQLite's write lock does that).
        self.read_policy = dialect.sql(
            _READ_POLICY + (" FOR UPDATE" if dialect.name == "postgresql" else "")
        )
        self.failed = dialect.sql(_FAILED)
        self.cancelled = dialect.sql(_CANCELLED)
        self.interrupted = dialect.sql(_INTERRUPTED)
        self.attempt = dialect.sql(_ATTEMPT)


_statements: dict[str, _Statements] = {}

# Completed runs are the supervisor's hot path: all of a turn's in two statements (one
# UPDATE ... FROM a VALUES list, one multi-row INSERT of attempt rows) instead of two each.
_COMPLETE_MANY = """WITH v(id, attempt, token, result, worker_name, started_at) AS (VALUES {rows})
UPDATE jobs SET status = 'completed', result = v.result, completed_at = {p}, updated_at = {p},
    progress_percentage = 100, error_message = NULL, error_type = NULL,
    error_traceback = NULL, error_permanent = {p}, cancel_requested = {p},
    worker_name = COALESCE(v.worker_name, jobs.worker_name),
    started_at = COALESCE(v.started_at, jobs.started_at)
FROM v
WHERE jobs.id IN ({ids}) AND jobs.id = v.id AND jobs.attempt = v.attempt
    AND (jobs.status || '') = 'running' AND (v.token IS NULL OR jobs.lease_token = v.token)
RETURNING jobs.id, jobs.attempt, jobs.started_at, jobs.batch_id, jobs.has_dependants,
    jobs.queue_name, jobs.job_type, {due}"""

_ATTEMPTS_MANY = """INSERT INTO job_attempts (job_id, attempt, worker_name, supervisor_name,
    pid, host, started_at, ended_at, outcome, error_type, error_message, error_traceback)
VALUES {rows}"""

# Where one statement may change two tables (PostgreSQL's data-modifying WITH), the attempt
# rows go in with the completions: one round trip and one plan fewer per turn. Each column
# of the turn's runs is one array parameter (pg_array: a single string literal), so the
# statement's text is the same for any number of runs: the server lexes, analyses and
# plans a dozen parameters, not ten literals a run (a third of its CPU in a PostgreSQL
# drain went there; this statement took 21 % less time per job, bench/peers.py, issue 17).
# ``expect`` ('running' for every run) makes the status check a join clause: as a filter
# on jobs it read as "one row in 200" to a planner without statistics (a bulk load just
# before the drain), which then joined each job to each run (quadratic, 2.9 of 4.3 ms at
# 60 runs); as a join key the runs are hashed once.
_COMPLETE_WITH_ATTEMPTS = (
    """WITH v AS (SELECT * FROM unnest(%s::text[], %s::int[], %s::text[],
    %s::text[], %s::text[], %s::text[], %s::int[], %s::text[], %s::text[], %s::timestamp[],
    %s::text[]) AS v(id, attempt, token, result, worker_name, supervisor_name, pid, host,
    outcome, started_at, expect)),
done AS (UPDATE jobs SET status = 'completed', result = v.result, completed_at = %s,
    updated_at = %s, progress_percentage = 100, error_message = NULL, error_type = NULL,
    error_traceback = NULL, error_permanent = false, cancel_requested = false,
    worker_name = COALESCE(v.worker_name, jobs.worker_name),
    started_at = COALESCE(v.started_at, jobs.started_at)
  FROM v
  WHERE jobs.id = ANY(%s::text[]) AND jobs.id = v.id AND jobs.attempt = v.attempt
    AND jobs.status = v.expect AND (v.token IS NULL OR jobs.lease_token = v.token)
  RETURNING jobs.id, jobs.attempt, jobs.started_at, jobs.batch_id, jobs.has_dependants,
    jobs.queue_name, jobs.job_type, """
    + _DUE
    + """ AS due, v.worker_name AS by_worker,
    v.supervisor_name, v.pid, v.host, v.outcome),
attempt_rows AS (INSERT INTO job_attempts (job_id, attempt, worker_name, supervisor_name, pid,
    host, started_at, ended_at, outcome, error_type, error_message, error_traceback)
  SELECT id, attempt, by_worker, supervisor_name, pid, host, started_at,
    CAST(%s AS TIMESTAMP), outcome, NULL, NULL, NULL FROM done)
SELECT id, attempt, started_at, batch_id, has_dependants, queue_name, job_type, due
FROM done"""
)


def completion_params(outcomes: Sequence[Outcome], stamp: str) -> list[Any]:
    """``_COMPLETE_WITH_ATTEMPTS``' parameters for these completed runs at ``stamp``."""
    workers = [o.worker for o in outcomes]
    ids = pg_array([o.job_id for o in outcomes])
    return [
        ids, pg_array([o.attempt for o in outcomes]),
        pg_array([o.lease_token for o in outcomes]),
        pg_array([o.result_json for o in outcomes]),
        pg_array([w.get("worker_name") for w in workers]),
        pg_array([w.get("supervisor_name") for w in workers]),
        pg_array([w.get("pid") for w in workers]), pg_array([w.get("host") for w in workers]),
        pg_array([o.attempt_outcome or AttemptOutcome.COMPLETED for o in outcomes]),
        pg_array([o.started_at for o in outcomes]),
        pg_array(["running"] * len(outcomes)), stamp, stamp, ids, stamp,
    ]  # fmt: skip


COMPLETE_CHUNK = 200  # rows per statement: well under SQLite's 32,766 parameters
_many_cache: dict[tuple[str, str, int], str] = {}


def _many(dialect: Dialect, template: str, width: int, count: int) -> str:
    key = (dialect.name, template, count)
    found = _many_cache.get(key)
    if found is None:
        p = "?" if dialect.name == "sqlite" else "%s"
        row = "(" + ", ".join([p] * width) + ")"
        # ``ids`` and ``status || ''``: the rows by primary key, whatever the statistics
        # say (a planner sure that few jobs run would read every 'running' index entry,
        # dead ones included, through a status index); ``due``: _DUE as it stands (the
        # VALUES list has neither of its columns, so they are the job's)
        found = template.format(
            rows=", ".join([row] * count), p=p, ids=", ".join([p] * count), due=_DUE
        )
        if len(_many_cache) < 1024:
            _many_cache[key] = found
    return found


def _complete_many(
    db: peewee.Database,
    outcomes: Sequence[Outcome],
    stamp: str,
    batches: set[str] | None,
    tally: Tally,
) -> dict[tuple[str, int], str]:
    """Write completed outcomes; {(job id, attempt): "completed"} for the runs that
    still held their lease (the rest changed nothing)."""
    dialect = dialect_for(db)
    if dialect.writable_ctes:
        params = completion_params(outcomes, stamp)
        rows = db.execute_sql(_COMPLETE_WITH_ATTEMPTS, params).fetchall()
        _follow_up(db, rows, batches, tally)
        return {(row[0], int(row[1])): "completed" for row in rows}
    params = []
    for o in outcomes:
        params += (o.job_id, o.attempt, o.lease_token, o.result_json, o.worker.get("worker_name"),
                   o.started_at)  # fmt: skip
    params += (stamp, stamp, False, False)
    params += (o.job_id for o in outcomes)
    rows = db.execute_sql(_many(dialect, _COMPLETE_MANY, 6, len(outcomes)), params).fetchall()
    if not rows:
        return {}
    by_run = {(o.job_id, o.attempt): o for o in outcomes}
    attempt_params: list[Any] = []
    for job_id, attempt, started_at, *_ in rows:
        o = by_run[(job_id, int(attempt))]
        w = o.worker
        attempt_params += (job_id, o.attempt, w.get("worker_name"), w.get("supervisor_name"),
                           w.get("pid"), w.get("host"), started_at, stamp,
                           o.attempt_outcome or AttemptOutcome.COMPLETED, None, None, None)  # fmt: skip
    db.execute_sql(_many(dialect, _ATTEMPTS_MANY, 12, len(rows)), attempt_params)
    _follow_up(db, rows, batches, tally)
    return {(row[0], int(row[1])): "completed" for row in rows}


def _follow_up(
    db: peewee.Database, rows: Sequence[Sequence[Any]], batches: set[str] | None, tally: Tally
) -> None:
    """Dependants, batches and the rollup of the jobs just completed: (id, attempt,
    started_at, batch_id, has_dependants, queue_name, job_type, due) rows: a retry's wait
    is counted from its backoff's end, as every other outcome's is."""
    for job_id, _, started_at, batch_id, has_dependants, queue, task, due in rows:
        tally.add(queue, task, "completed", started_at, due)
        if batch_id or has_dependants:
            job_ended(db, job_id, "completed", batch_id, batches_to_finish=batches, tally=tally)


def apply_outcomes(
    db: peewee.Database,
    outcomes: Sequence[Outcome],
    *,
    now: datetime | None = None,
    batches_to_finish: set[str] | None = None,
    retry_times: list[str] | None = None,
    tally: Tally | None = None,
) -> list[str | None]:
    """``apply_outcome`` for many runs of different jobs, in the caller's transaction:
    completed ones in bulk, the rest one by one. The new status of each, in order.

    The ends are counted in ``tally`` (the caller writes it before committing); without
    one, they are written to the rollup here, in one statement."""
    now_dt = now or utcnow()
    own = tally is None
    tally = Tally(now_dt) if tally is None else tally
    statuses: list[str | None] = [None] * len(outcomes)
    completed: list[int] = []
    for index, outcome in enumerate(outcomes):
        if outcome.kind == "completed":
            completed.append(index)
        else:
            statuses[index] = apply_outcome(db, outcome, now=now_dt,
                                            batches_to_finish=batches_to_finish,
                                            retry_times=retry_times, tally=tally)  # fmt: skip
    if completed:
        stamp = sql_timestamp(now_dt)
        for start in range(0, len(completed), COMPLETE_CHUNK):
            chunk = completed[start : start + COMPLETE_CHUNK]
            written = _complete_many(db, [outcomes[i] for i in chunk], stamp, batches_to_finish,
                                     tally)  # fmt: skip
            for i in chunk:
                statuses[i] = written.get((outcomes[i].job_id, outcomes[i].attempt))
    if own:
        tally.write(db)
    return statuses


def statements_for(dialect: Dialect) -> _Statements:
    found = _statements.get(dialect.name)
    if found is None:
        found = _statements[dialect.name] = _Statements(dialect)
    return found


_RETRY_BITS = (UNSET_RETRY_DELAY, UNSET_RETRY_BACKOFF, UNSET_RETRY_MAX_DELAY, UNSET_RETRY_JITTER)


def _decide_failure(
    row: Sequence[Any], outcome: Outcome, now: datetime
) -> tuple[str, int, Any, int]:
    """(status, retry count, next retry time, max_retries): options the job's enqueuer left
    unset follow the supervisor's resolved policy, its own ones the row."""
    retry_count, max_retries = int(row[0]), int(row[1])
    columns = list(row[2:6])
    task = outcome.task_policy
    unset = int(row[9] or 0) if len(row) > 9 else 0
    if task is not None and unset:
        if unset & UNSET_MAX_RETRIES and task.max_retries is not None:
            max_retries = int(task.max_retries)
        columns = [None if unset & bit else v for bit, v in zip(_RETRY_BITS, columns, strict=True)]
    if _quarantined(row, outcome):
        return "failed", retry_count, None, max_retries
    if outcome.consume_retry:
        retry = not outcome.permanent and retry_count < max_retries
    else:
        retry = True
    if not retry:
        return "failed", retry_count, None, max_retries
    policy = RetryPolicy.from_columns(*columns, task)
    delay = outcome.retry_delay_s
    if delay is None:
        delay = policy.delay_for(retry_count)
    new_count = retry_count + 1 if outcome.consume_retry else retry_count
    return "retrying", new_count, sql_timestamp(now + timedelta(seconds=delay)), max_retries


def _crash_count(row: Sequence[Any], outcome: Outcome) -> int:
    """The job's crash count once this run is counted (the read-policy row's last column)."""
    count = int(row[13] or 0) if len(row) > 13 else 0
    return count + 1 if outcome.crash else count


def _quarantined(row: Sequence[Any], outcome: Outcome) -> bool:
    """This crash is the job's ``max_crashes``-th: it ends failed, retries left or not."""
    limit = outcome.max_crashes
    return bool(outcome.crash and limit and _crash_count(row, outcome) >= limit)


def quarantine_message(crashes: int, crash: str) -> str:
    """The error of a quarantined job (the console and ``jobs`` look for its prefix)."""
    return f"{QUARANTINE_PREFIX} killed its worker {crashes} times ({crash})"


#: How a quarantined job's error begins; its error_type is ``QUARANTINED``.
QUARANTINE_PREFIX = "quarantined:"
QUARANTINED = "Quarantined"


def apply_outcome(
    db: peewee.Database,
    outcome: Outcome,
    *,
    now: datetime | None = None,
    batches_to_finish: set[str] | None = None,
    retry_times: list[str] | None = None,
    tally: Tally | None = None,
) -> str | None:
    """Write one outcome inside the caller's transaction; returns the job's new status, or
    None when the run had lost its lease (nothing written). With ``batches_to_finish``,
    the job's batch is added to it for the caller's ``finish_batches`` (workflow.py); with
    ``retry_times``, a retry's due time is appended (the supervisor sets a timer for it).
    The end is counted in ``tally``, or, without one, written to the rollup here."""
    stmts = statements_for(dialect_for(db))
    now_dt = now or utcnow()
    stamp = sql_timestamp(now_dt)
    params: dict[str, Any] = {
        "id": outcome.job_id, "attempt": outcome.attempt, "token": outcome.lease_token,
        "now": stamp, "no": False, "error": outcome.error, "error_type": outcome.error_type,
        "traceback": outcome.traceback, "worker_name": outcome.worker.get("worker_name"),
        "started_at": outcome.started_at,
    }  # fmt: skip
    kind = outcome.kind
    if kind == "completed":
        params["result"] = outcome.result_json
        row = db.execute_sql(stmts.completed, params).fetchone()
        status, attempt_outcome = "completed", AttemptOutcome.COMPLETED
    elif kind == "failed":
        row = db.execute_sql(stmts.read_policy, params).fetchone()
        if row is not None:
            status, count, next_retry_at, max_retries = _decide_failure(row, outcome, now_dt)
            crashes, job_error = _crash_count(row, outcome), {}
            if _quarantined(row, outcome):  # the attempt row keeps the crash's own error
                job_error = {"error": quarantine_message(crashes, outcome.crash or ""),
                             "error_type": QUARANTINED}  # fmt: skip
            db.execute_sql(stmts.failed, {
                **params, **job_error, "status": status, "retry_count": count,
                "max_retries": max_retries, "crash_count": crashes,
                "next_retry_at": next_retry_at,
                "failed_at": stamp if status == "failed" else None,
                "permanent": bool(outcome.permanent),
            })  # fmt: skip
            row = (outcome.started_at or row[6], row[7], row[8], row[10], row[11], row[12])
            if next_retry_at is not None and retry_times is not None:
                retry_times.append(next_retry_at)
        attempt_outcome = AttemptOutcome.FAILED
    elif kind == "cancelled":
        row = db.execute_sql(stmts.cancelled, params).fetchone()
        status, attempt_outcome = "cancelled", AttemptOutcome.CANCELLED
    elif kind == "interrupted":
        row = db.execute_sql(stmts.interrupted, params).fetchone()
        status, attempt_outcome = "pending", AttemptOutcome.INTERRUPTED
    else:
        raise ValueError(f"unknown outcome kind {kind!r}")
    if row is None:
        return None
    own = Tally(now_dt) if tally is None else tally
    if status != "pending":  # a run put back by a shutdown has not ended
        own.add(row[3], row[4], "retried" if status == "retrying" else status, row[0], row[5])
    worker = outcome.worker
    db.execute_sql(stmts.attempt, {
        **params, "started_at": row[0], "outcome": outcome.attempt_outcome or attempt_outcome,
        "worker_name": worker.get("worker_name"), "supervisor_name": worker.get("supervisor_name"),
        "pid": worker.get("pid"), "host": worker.get("host"),
    })  # fmt: skip
    if status in ("completed", "failed", "cancelled") and (row[1] or row[2]):
        # dependants or a batch to follow up
        job_ended(db, outcome.job_id, status, row[1], batches_to_finish=batches_to_finish,
                  tally=own)  # fmt: skip
    if tally is None:
        own.write(db)
    return status


def write_outcomes(
    outcomes: Sequence[Outcome], *, db: peewee.Database | None = None
) -> list[str | None]:
    """Write outcomes in one transaction; the new status of each (None: lease lost)."""
    from .claims import with_lock_retry
    from .store import get_database

    db = get_database(db)
    dialect = dialect_for(db)

    def run() -> list[str | None]:
        with dialect.write_transaction(db):
            batches: set[str] = set()
            statuses = apply_outcomes(db, outcomes, batches_to_finish=batches)
            finish_batches(db, batches)
            return statuses

    return with_lock_retry(run) if outcomes else []
