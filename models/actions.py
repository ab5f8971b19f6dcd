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


def retry_jobs(ids: Sequence[str], *, db: peewee.Database | None = None) -> ActionResult:
    """Put failed or cancelled jobs back to run now, with ``retry_count`` reset to 0."""
    from .claims import with_lock_retry

    db = get_database(db)
    ids = list(dict.fromkeys(ids))
    now = sql_timestamp(utcnow())
    sql = """UPDATE jobs SET
        status = CASE WHEN EXISTS (
            SELECT 1 FROM job_dependencies d JOIN jobs j ON j.id = d.depends_on_id
            WHERE d.job_id = jobs.id AND j.status <> 'completed') THEN 'waiting' ELSE 'pending' END,
        retry_count = 0, run_at = :now, next_retry_at = NULL, scheduled_for = NULL,
        error_permanent = :no, cancel_requested = :no, cancel_reason = NULL,
        kill_requested = NULL, failed_at = NULL, completed_at = NULL,
        progress_percentage = 0, progress_message = NULL, progress_details = NULL,
        updated_at = :now
    WHERE id = :id AND status IN ('failed', 'cancelled')"""

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
