"""Operator actions on jobs and queues: cancel, retry, delete, priority, pause.

The CLI, the console and the Python API call these; the supervisor sees their effect
through the rows they change (``cancel_requested``, ``queues.paused``), never directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import peewee

from .clock import sql_timestamp, utcnow
from .dialect import dialect_for
from .rollup import Tally, tally_ended
from .store import get_database
from .workflow import cancel_dependants, jobs_ended

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from typing import Any

CHUNK = 500


@dataclass(frozen=True)
class ActionResult:
    """How many of the named jobs the action changed, and how."""

    changed: int = 0
    requested: int = 0  # running jobs asked to stop (cancel)
    cascaded: int = 0  # dependants cancelled in turn
    skipped: int = 0  # named jobs in a state the action does not apply to
    #: which jobs, for callers that report per id (``jobtui cancel --json``)
    changed_ids: tuple[str, ...] = ()
    requested_ids: tuple[str, ...] = ()
    cascaded_ids: tuple[str, ...] = ()

    def cancel_summary(self, *, kill: bool = False) -> str:
        """One line on a cancel, as the CLI and the console both report it."""

        def n(count: int, noun: str = "job") -> str:
            return f"{count} {noun}{'' if count == 1 else 's'}"

        parts = [f"cancelled {n(self.changed)}"]
        if self.requested:
            verb = "killing {}" if kill else "asked {} to stop"
            parts.append(verb.format(n(self.requested, "running job")))
        if self.cascaded:
            parts.append(f"cancelled {n(self.cascaded, 'dependant')}")
        if self.skipped:
            parts.append(f"{n(self.skipped)} already ended or stopping")
        return "; ".join(parts)


def _chunks(ids: Sequence[str]) -> Iterable[tuple[str, dict[str, str]]]:
    for start in range(0, len(ids), CHUNK):
        part = ids[start : start + CHUNK]
        marks = ", ".join(f":i{n}" for n in range(len(part)))
        yield marks, {f"i{n}": job_id for n, job_id in enumerate(part)}


def _run(db: peewee.Database, sql: str, params: dict) -> int:
    return db.execute_sql(dialect_for(db).sql(sql), params).rowcount


CANCEL_REASON = "cancelled by operator"  # the error of a job cancelled with no reason given
KILL_REASON = "killed by operator"


def cancel_jobs(
    ids: Sequence[str],
    *,
    reason: str | None = None,
    kill: bool = False,
    db: peewee.Database | None = None,
) -> ActionResult:
    """Cancel jobs: at once if not running; running ones get ``cancel_requested`` and the
    supervisor stops them (they end ``cancelled``, ``reason`` as their error). Waiting
    dependants are cancelled too.

    A running job is first asked to stop (``current_job().cancel_requested``) and killed
    after the supervisor's kill grace; ``kill`` skips the asking: its process tree gets
    SIGTERM at once (SIGKILL after the grace). A job already asked can still be killed."""
    from .claims import with_lock_retry

    db = get_database(db)
    ids = list(dict.fromkeys(ids))
    now_dt = utcnow()
    now = sql_timestamp(now_dt)
    reason = (reason or (KILL_REASON if kill else CANCEL_REASON))[:500]

    def run() -> ActionResult:
        cancelled: list[str] = []
        asked: list[str] = []
        tally = Tally(now_dt)  # one rollup write, in key order (rollup.tally_ended)
        with dialect_for(db).write_transaction(db):
            for marks, params in _chunks(ids):
                params.update(now=now, reason=reason)
                rows = db.execute_sql(dialect_for(db).sql(
                    f"""UPDATE jobs SET status = 'cancelled', error_message = :reason,
                    error_type = 'Cancelled', completed_at = :now, updated_at = :now
                    WHERE id IN ({marks}) AND status IN ('pending', 'waiting', 'retrying')
                    RETURNING id, queue_name, job_type"""), params).fetchall()  # fmt: skip
                cancelled += [row[0] for row in rows]
                tally_ended(db, [(row[1], row[2]) for row in rows], now_dt, tally=tally)
                rows = db.execute_sql(dialect_for(db).sql(
                    f"""UPDATE jobs SET cancel_requested = :yes,
                    cancel_reason = :reason, kill_requested = :kill, updated_at = :now
                    WHERE id IN ({marks}) AND status = 'running' AND (NOT cancel_requested
                    OR (:kill AND kill_requested IS NOT TRUE)) RETURNING id"""),
                    {**params, "yes": True, "kill": kill}).fetchall()  # fmt: skip
                asked += [row[0] for row in rows]
            cascaded = jobs_ended(db, cancelled, "cancelled", tally)
            tally.write(db)
        changed, requested = len(cancelled), len(asked)
        return ActionResult(changed, requested, len(cascaded), len(ids) - changed - requested,
                            tuple(cancelled), tuple(asked), tuple(cascaded))  # fmt: skip

    return with_lock_retry(run)


_RETRY_SQL = """UPDATE jobs SET{edits}
        status = CASE WHEN EXISTS (
            SELECT 1 FROM job_dependencies d JOIN jobs j ON j.id = d.depends_on_id
            WHERE d.job_id = jobs.id AND j.status <> 'completed') THEN 'waiting' ELSE 'pending' END,
        retry_count = 0, crash_count = 0, run_at = :now, next_retry_at = NULL, scheduled_for = NULL,
        error_permanent = :no, cancel_requested = :no, cancel_reason = NULL,
        kill_requested = NULL, failed_at = NULL, completed_at = NULL,
        progress_percentage = 0, progress_message = NULL, progress_details = NULL,
        updated_at = :now
    WHERE id = :id AND status IN ('failed', 'cancelled')"""
_EDITS = """ parameters = :parameters, priority = COALESCE(:priority, priority),
        queue_name = COALESCE(:queue, queue_name), unset_options = unset_options & :keep,"""
#: The parameters an attempt ran with are stamped on it before an edit replaces them.
_STAMP_ATTEMPTS = """UPDATE job_attempts SET parameters = :old
    WHERE job_id = :id AND parameters IS NULL"""


def retry_jobs(ids: Sequence[str], *, db: peewee.Database | None = None) -> ActionResult:
    """Put failed or cancelled jobs back to run now, with ``retry_count`` reset to 0 (and
    ``crash_count``: a quarantined job gets its full ``max_crashes`` again)."""
    from .claims import with_lock_retry

    db = get_database(db)
    ids = list(dict.fromkeys(ids))
    now = sql_timestamp(utcnow())
    sql = _RETRY_SQL.format(edits="")

    def run() -> ActionResult:
        changed: list[str] = []
        with dialect_for(db).write_transaction(db):
            for job_id in ids:
                try:
                    with db.atomic():  # a savepoint: a taken unique key skips this job only
                        if _run(db, sql, {"id": job_id, "now": now, "no": False}):
                            changed.append(job_id)
                except peewee.IntegrityError:
                    pass  # counted as skipped below
        return ActionResult(changed=len(changed), skipped=len(ids) - len(changed),
                            changed_ids=tuple(changed))  # fmt: skip

    return with_lock_retry(run)


@dataclass(frozen=True)
class RetryEdit:
    """What an edit-and-retry changes; None keeps the job's own value."""

    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None
    priority: int | None = None
    queue: str | None = None

    def checked(self) -> RetryEdit:
        """The edit, refused (InvalidJob) unless each part has the shape a job holds."""
        from .base import dumps
        from .errors import InvalidJob

        if self.args is not None and not isinstance(self.args, list | tuple):
            raise InvalidJob(f"args must be a JSON array, not {type(self.args).__name__}")
        if self.kwargs is not None and not (
            isinstance(self.kwargs, dict) and all(isinstance(k, str) for k in self.kwargs)
        ):
            raise InvalidJob("kwargs must be a JSON object (string keys)")  # fmt: skip
        if self.priority is not None and (
            isinstance(self.priority, bool) or not isinstance(self.priority, int)
        ):
            raise InvalidJob(f"priority must be an integer, not {self.priority!r}")  # fmt: skip
        if self.queue is not None and (
            not isinstance(self.queue, str) or not self.queue.strip() or len(self.queue) > 100
        ):
            raise InvalidJob("queue must be a name of 1 to 100 characters")  # fmt: skip
        try:
            dumps([self.args, self.kwargs])
        except (TypeError, ValueError) as exc:
            raise InvalidJob(f"the arguments are not JSON: {exc}") from None
        args = None if self.args is None else list(self.args)
        return RetryEdit(args, self.kwargs, self.priority, self.queue)


def edit_and_retry(
    job_id: str, edit: RetryEdit, *, db: peewee.Database | None = None
) -> dict[str, Any]:
    """Retry one failed or cancelled job with new parameters or options (the operator's
    fix for a job that failed on its input). Its attempts so far keep the parameters they
    ran with (``job_attempts.parameters``); returns the parameters it had before.

    JobNotFound for no such job, InvalidTransition (nothing written) when it is not
    failed or cancelled, or its unique key is taken by a live job."""
    import json

    from .base import dumps
    from .catalog import UNSET_PRIORITY, UNSET_QUEUE, UNSET_QUEUE_UNRESOLVED
    from .claims import with_lock_retry
    from .errors import InvalidTransition, JobNotFound

    db = get_database(db)
    edit = edit.checked()
    cleared = (UNSET_PRIORITY if edit.priority is not None else 0) | (
        UNSET_QUEUE | UNSET_QUEUE_UNRESOLVED if edit.queue is not None else 0)  # fmt: skip
    dialect = dialect_for(db)

    def run() -> dict[str, Any]:
        with dialect.write_transaction(db):
            row = db.execute_sql(dialect.sql("SELECT status, parameters FROM jobs WHERE id = :id"),
                                 {"id": job_id}).fetchone()  # fmt: skip
            if row is None:
                raise JobNotFound(f"no job {job_id}")
            if row[0] not in ("failed", "cancelled"):
                raise InvalidTransition(
                    f"job {job_id} is {row[0]}: only a failed or cancelled job can be retried"
                )
            old = row[1] if isinstance(row[1], dict) else json.loads(row[1] or "{}")
            old = old if isinstance(old, dict) else {}
            new = {"args": old.get("args", []) if edit.args is None else edit.args,
                   "kwargs": old.get("kwargs", {}) if edit.kwargs is None else edit.kwargs}  # fmt: skip
            _run(db, _STAMP_ATTEMPTS, {"old": dumps(old), "id": job_id})
            params = {"id": job_id, "now": sql_timestamp(utcnow()), "no": False,
                      "parameters": dumps(new), "priority": edit.priority, "queue": edit.queue,
                      "keep": 0x7FFFFFFF ^ cleared}  # fmt: skip
            try:
                with db.atomic():
                    changed = _run(db, _RETRY_SQL.format(edits=_EDITS), params)
            except peewee.IntegrityError:
                raise InvalidTransition(
                    f"job {job_id}: its unique key is taken by a live job"
                ) from None
            if not changed:  # pragma: no cover - the row is locked since the read
                raise InvalidTransition(f"job {job_id} changed meanwhile: nothing done")
        return old

    return with_lock_retry(run)


def delete_jobs(ids: Sequence[str], *, db: peewee.Database | None = None) -> ActionResult:
    """Delete jobs that are not running (cancel a running job first); their attempts go too.
    Dependants still waiting on a deleted job are cancelled."""
    from .claims import with_lock_retry

    db = get_database(db)
    ids = list(dict.fromkeys(ids))

    def run() -> ActionResult:
        deleted: list[str] = []
        unfinished: list[str] = []  # a deleted job that never completed fails its dependants
        with dialect_for(db).write_transaction(db):
            for marks, params in _chunks(ids):
                rows = db.execute_sql(dialect_for(db).sql(
                    f"SELECT id, status FROM jobs WHERE id IN ({marks}) AND status <> 'running'"),
                    params).fetchall()  # fmt: skip
                deleted += [row[0] for row in rows]
                unfinished += [row[0] for row in rows if row[1] != "completed"]
            cascaded = cancel_dependants(db, unfinished, "was deleted")
            for marks, params in _chunks(deleted):
                _run(db, f"DELETE FROM jobs WHERE id IN ({marks}) AND status <> 'running'", params)
        return ActionResult(len(deleted), 0, len(cascaded), len(ids) - len(deleted),
                            tuple(deleted), (), tuple(cascaded))  # fmt: skip

    return with_lock_retry(run)


def change_priority(
    ids: Sequence[str],
    *,
    priority: int | None = None,
    delta: int | None = None,
    db: peewee.Database | None = None,
) -> ActionResult:
    """Set (``priority``) or shift (``delta``) the priority of jobs not yet finished."""
    from .claims import with_lock_retry

    db = get_database(db)
    ids = list(dict.fromkeys(ids))
    value = ":value" if priority is not None else "priority + :value"
    # an aged job (aging.py): a new priority replaces what aging added; a shift moves the
    # priority it was given too
    base = "NULL" if priority is not None else "base_priority + :value"
    amount = int(priority if priority is not None else delta or 0)

    def run() -> ActionResult:
        changed = 0
        with dialect_for(db).write_transaction(db):
            for marks, params in _chunks(ids):
                params.update(value=amount, now=sql_timestamp(utcnow()))
                changed += _run(db, f"""UPDATE jobs SET priority = {value},
                    base_priority = {base}, updated_at = :now
                    WHERE id IN ({marks}) AND status IN ('pending', 'waiting', 'retrying',
                    'running')""", params)  # fmt: skip
        return ActionResult(changed=changed, skipped=len(ids) - changed)

    return with_lock_retry(run)


def set_queue_paused(name: str, paused: bool, *, db: peewee.Database | None = None) -> None:
    """Pause or resume a queue: supervisors stop (or resume) claiming from it."""
    set_queue_control(name, db=db, paused=paused)


def set_queue_control(name: str, *, db: peewee.Database | None = None, **values: Any) -> None:
    """Write a queue's control row (``paused``, ``concurrency``), creating it if needed."""
    from .claims import with_lock_retry
    from .queue import Queue

    db = get_database(db)
    update = {getattr(Queue, field): value for field, value in values.items()}

    def run() -> None:
        with dialect_for(db).write_transaction(db):
            Queue.insert(name=name, updated_at=utcnow(), **values).on_conflict(
                conflict_target=[Queue.name], update={**update, Queue.updated_at: utcnow()}
            ).execute(db)

    with_lock_retry(run)
