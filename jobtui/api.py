"""The Python API for applications: enqueue jobs, follow them, act on them.

Every call takes ``database=`` (a URL or a Peewee database); without it the configured
database is used (``JOBTUI_DATABASE`` or the XDG default). Passing the application's own
Peewee database to ``enqueue`` joins its open transaction: the job exists only if that
transaction commits.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

import peewee

from jobtui.batching import current_batch
from jobtui.eager_mode import eager_settings, run_eagerly
from jobtui.models import actions, audit, queries
from jobtui.models.borrowed import after_application_commit, is_borrowed
from jobtui.models.enqueueing import insert_jobs
from jobtui.models.errors import DatabaseUnavailable, JobFailed, JobNotFound
from jobtui.models.job import Job
from jobtui.models.scheduling import upsert_schedule
from jobtui.models.store import api_call, get_database
from jobtui.registry import Task, registry, resolve_fair_key, task_options

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from typing import Any

Database = peewee.Database | str | None

WAIT_POLL_MIN_S = 0.01
WAIT_POLL_MAX_S = 0.5


#: Loaded by an application that uses OpenTelemetry (jobtui/tracing.py).
_OTEL = "opentelemetry.trace"


def _traced_insert(
    names: str | list[str], items: list[dict[str, Any]], database: Database
) -> list[tuple[str, bool, Any]]:
    """``insert_jobs`` inside a PRODUCER span whose context each job stores (when a
    tracer provider is configured; else plainly)."""
    from jobtui import tracing

    first = names[0] if isinstance(names, list) and names else names
    span = tracing.producer(first, len(items)) if isinstance(first, str) else None
    if span is None:  # no provider, or a bad name (insert_jobs refuses it)
        return insert_jobs(names, items, database=database, with_rows=True)
    span.stamp(items)
    try:
        results = insert_jobs(names, items, database=database, with_rows=True)
    except BaseException as exc:
        span.failed(exc)
        raise
    span.written([r[0] for r in results],
                 [r[2]["queue_name"] if r[2] else None for r in results])  # fmt: skip
    return results


def _should_enqueue(target: Task | str, args: list[Any], kwargs: dict[str, Any]) -> bool:
    found = target if isinstance(target, Task) else registry.get(target)
    return (
        found is None or found.should_enqueue is None or bool(found.should_enqueue(*args, **kwargs))
    )


def _join_batch(options: dict[str, Any], database: Database) -> Database:
    """Inside ``with batch():`` a job joins the batch, in the batch's transaction."""
    handle = current_batch()
    if handle is None or options.get("batch_id"):
        return database
    options["batch_id"] = handle.id
    handle.jobs += 1
    return handle.database


@api_call(read=False)
def enqueue(
    task: Task | str,
    args: Iterable[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    *,
    database: Database = None,
    session: Any = None,
    **options: Any,
) -> Job | None:
    """Enqueue one job of ``task`` (a task or its name); returns the Job.

    Options: queue, priority, delay, scheduled_for, max_retries, timeout, retry_delay,
    retry_backoff, retry_max_delay, retry_jitter, depends_on, reference, user_id,
    unique_key, tags, metadata, title, description, deadline, fair_key (the tenant
    whose line the job waits in: fairness across keys). Bad input raises
    ``InvalidJob`` and writes nothing. Returns the existing live job when ``unique_key``
    is taken, and None when the task's ``should_enqueue`` declines.

    ``session=`` (a SQLAlchemy Session or a Django connection) writes the job in that
    session's transaction, on its connection: it exists only if the application commits
    (jobtui.integrations).
    """
    if session is not None:
        from jobtui.integrations import session_database

        with session_database(session) as borrowed:
            return enqueue(task, args, kwargs, database=borrowed, **options)
    args, kwargs = list(args or []), dict(kwargs or {})
    if not _should_enqueue(task, args, kwargs):
        return None
    name, merged = task_options(task, options, database)
    resolve_fair_key(merged, args, kwargs)
    database = _join_batch(merged, database)
    item = {**merged, "args": args, "kwargs": kwargs}
    if _OTEL in sys.modules:  # the application uses OpenTelemetry: trace the enqueue
        job_id, created, row = _traced_insert(name, [item], database)[0]
    else:
        job_id, created, row = insert_jobs(name, [item], database=database, with_rows=True)[0]
    settings = eager_settings()
    if settings is not None and created and is_borrowed(database):
        # Eager mode in the application's transaction: the job exists once it commits.
        after_application_commit(database, lambda: run_eagerly(job_id, get_database(), settings))
    elif settings is not None and created:
        run_eagerly(job_id, get_database(database), settings)
    if row is not None and (settings is None or is_borrowed(database)):
        return Job.from_written(row)
    return Job.select().where(Job.id == job_id).get(get_database(database))


@api_call(read=False)
def enqueue_many(
    task: Task | str,
    items: Iterable[Mapping[str, Any]],
    *,
    database: Database = None,
    session: Any = None,
    **options: Any,
) -> list[Job]:
    """Enqueue many jobs of one task in one transaction; returns them in item order.

    Each item holds ``args``/``kwargs`` and may override ``options`` for its own job.
    ``session=`` writes them in the application's transaction, as for ``enqueue``.
    """
    if session is not None:
        from jobtui.integrations import session_database

        with session_database(session) as borrowed:
            return enqueue_many(task, items, database=borrowed, **options)
    results, db, eager = _insert_many(task, items, database, options)
    # Jobs are built from the rows written (no read back), but for those that changed
    # since (eager mode) or were there already (a taken unique_key).
    unread = [job_id for job_id, _, row in results if row is None or eager]
    found = {job.id: job for job in Job.select().where(Job.id.in_(unread)).execute(db)} if unread else {}  # fmt: skip
    return [found[job_id] if job_id in found else Job.from_written(row)
            for job_id, _, row in results]  # fmt: skip


@api_call(read=False)
def enqueue_many_ids(
    task: Task | str,
    items: Iterable[Mapping[str, Any]],
    *,
    database: Database = None,
    **options: Any,
) -> list[str]:
    """``enqueue_many`` returning only the ids: no read-back of the rows it wrote, which
    took half the time of a bulk enqueue (``jobtui enqueue --stdin``)."""
    return [job_id for job_id, _, _ in _insert_many(task, items, database, options)[0]]


def _insert_many(
    task: Task | str,
    items: Iterable[Mapping[str, Any]],
    database: Database,
    options: dict[str, Any],
) -> tuple[list[tuple[str, bool, Any]], peewee.Database | None, bool]:
    """What ``insert_jobs`` wrote, (id, created, row) in item order; the database it went
    to (a batch's own); and whether eager mode ran the jobs since."""
    rows = []
    for item in items:
        if not isinstance(item, Mapping):
            from jobtui.models.errors import InvalidJob

            raise InvalidJob(f"enqueue_many takes mappings with args/kwargs, got {item!r}")
        args, kwargs = list(item.get("args") or []), dict(item.get("kwargs") or {})
        if _should_enqueue(task, args, kwargs):
            name, merged = task_options(task, {**options, **item}, database)
            resolve_fair_key(merged, args, kwargs)
            rows.append((name, merged))
    if not rows:
        return [], None, False
    for _, merged in rows:
        database = _join_batch(merged, database)
    if _OTEL in sys.modules:  # the application uses OpenTelemetry: trace the enqueue
        results = _traced_insert([n for n, _ in rows], [o for _, o in rows], database)
    else:
        results = insert_jobs(
            [n for n, _ in rows], [o for _, o in rows], database=database, with_rows=True
        )
    db = get_database(database)
    settings = eager_settings()
    if settings is not None:
        for job_id, created, _ in results:
            if created:
                run_eagerly(job_id, db, settings)
    return results, db, settings is not None


@api_call(read=True)
def poll(job_id: str, *, database: Database = None) -> Job:
    """The job's current state (a fresh read); JobNotFound if there is no such job."""
    return queries.get_job(job_id, db=get_database(database))


@api_call(read=True)
def wait(
    job_id: str,
    timeout: float | None = None,
    *,
    on_progress: Callable[[float, str | None], Any] | None = None,
    database: Database = None,
) -> Any:
    """Block until the job ends; return its result, or raise JobFailed with its error.

    TimeoutError when ``timeout`` seconds pass first. Polls with a growing interval; on
    PostgreSQL a job-end notification (``models/ended.py``) cuts the pause short.
    ``on_progress(percent, message)`` is called each time the job's progress is seen to
    change (a script's progress bar); while it moves, polls stay frequent. A database
    that cannot be reached (a restart) is waited for like a slow job.
    """
    from jobtui.models.ended import listener_for

    deadline = None if timeout is None else time.monotonic() + timeout
    interval = WAIT_POLL_MIN_S
    seen: tuple[float, str | None] | None = None
    listener = listener_for(database)
    while True:
        generation = listener.generation if listener is not None else 0
        try:
            job = poll(job_id, database=database)
        except DatabaseUnavailable as exc:  # an outage: keep waiting, as for a slow job
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"job {job_id} unknown after {timeout:g} s: {exc}") from exc
            time.sleep(interval if deadline is None else
                       min(interval, max(0.0, deadline - time.monotonic())))  # fmt: skip
            interval = min(interval * 1.5, WAIT_POLL_MAX_S)
            continue
        progress = (float(job.progress_percentage or 0), job.progress_message)
        if on_progress is not None and progress != seen and (seen or progress[0] or progress[1]):
            on_progress(*progress)
            interval = WAIT_POLL_MIN_S  # it moves: look again soon
        seen = progress
        if job.status == "completed":
            return job.result
        if job.status in ("failed", "cancelled"):
            raise JobFailed(job.id, job.status, job.error_message)
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"job {job_id} still {job.status} after {timeout:g} s")
        pause = (
            interval if deadline is None else min(interval, max(0.0, deadline - time.monotonic()))
        )
        if listener is None:
            time.sleep(pause)
        elif listener.wait(generation, pause) != generation:
            continue  # a job ended somewhere: look now (the interval stays as it was)
        interval = min(interval * 1.5, WAIT_POLL_MAX_S)


@api_call(read=False)
def cancel(
    job_id: str,
    *,
    reason: str | None = None,
    kill: bool = False,
    actor: str | None = None,
    database: Database = None,
) -> Job:
    """Cancel a job; returns its state after the request. A running one is asked to stop
    (``current_job().cancel_requested``) and killed after its supervisor's kill grace;
    ``kill=True`` stops its processes at once instead. ``reason`` becomes its error.
    ``actor`` names who asked, for the audit log (default: the OS user)."""
    job = poll(job_id, database=database)
    db = get_database(database)
    audit.audited("kill" if kill else "cancel", job.id,
                  lambda: actions.cancel_jobs([job.id], reason=reason, kill=kill, db=db),
                  arguments={"reason": reason}, actor=actor, db=db)  # fmt: skip
    return poll(job.id, database=database)


@api_call(read=False)
def retry(
    job_id: str,
    *,
    args: Iterable[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    priority: int | None = None,
    queue: str | None = None,
    actor: str | None = None,
    database: Database = None,
) -> Job:
    """Run a failed or cancelled job again, with its retry count reset to 0.

    Edit and retry: ``args``, ``kwargs``, ``priority`` or ``queue`` replace the job's own
    (what is not given stays); the attempts so far keep the parameters they ran with.
    The arguments are checked against the task's signature when this process has the
    task registered (else their shape only): InvalidJob, nothing written. A job that is
    not failed or cancelled raises InvalidTransition when edited (a plain retry of one
    leaves it as it is). ``actor`` names who asked, for the audit log."""
    job = poll(job_id, database=database)
    db = get_database(database)
    if args is None and kwargs is None and priority is None and queue is None:
        audit.audited("retry", job.id, lambda: actions.retry_jobs([job.id], db=db),
                      actor=actor, db=db)  # fmt: skip
        return poll(job.id, database=database)
    edit = actions.RetryEdit(args, kwargs, priority, queue).checked()  # type: ignore[arg-type]  # fmt: skip
    _check_parameters(job, edit)
    given = {"args": edit.args, "kwargs": edit.kwargs, "priority": edit.priority,
             "queue": edit.queue}  # fmt: skip
    audit.audited("edit", job.id, lambda: actions.edit_and_retry(job.id, edit, db=db), count=1,
                  arguments=lambda was: {**given, "was": was}, actor=actor, db=db)  # fmt: skip
    return poll(job.id, database=database)


def _check_parameters(job: Job, edit: actions.RetryEdit) -> None:
    """The edited arguments against the task's signature, with the check a worker makes
    before the call (``execution.parameters_problem``), when the task is registered here."""
    from jobtui.models.errors import InvalidJob

    found = registry.get(job.job_type)
    if found is None:
        return
    from jobtui.execution import parameters_problem

    args = job.args if edit.args is None else edit.args
    kwargs = dict(job.kwargs if edit.kwargs is None else edit.kwargs)
    if found.takes_progress_callback(len(args)):
        kwargs["progress_callback"] = None  # the worker passes one
    problem = parameters_problem(found.func, list(args), kwargs)
    if problem is not None:
        raise InvalidJob(f"invalid parameters for {job.job_type}: {problem}")


@api_call(read=True)
def queue_stats(*, database: Database = None) -> dict[str, dict[str, Any]]:
    """Per queue: counts by status, latency (s), average run time (s), paused, its limit
    and the workers of live supervisors serving it."""
    return queries.queue_stats(db=get_database(database))


__all__ = [
    "JobNotFound", "cancel", "enqueue", "enqueue_many", "enqueue_many_ids", "poll", "queue_stats", "retry",
    "schedule", "wait",
]  # fmt: skip


@api_call(read=False)
def schedule(
    name: str,
    cron: str,
    task: Task | str,
    args: Iterable[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    *,
    timezone: str = "UTC",
    catch_up: str = "skip",
    enabled: bool = True,
    actor: str | None = None,
    database: Database = None,
    **options: Any,
) -> datetime:
    """Create or update (by name) a cron schedule of ``task``; returns its next fire time.

    Five fields, or six where the sixth is seconds, evaluated in ``timezone``. Each fire
    time makes one job however many supervisors run; ``catch_up`` is ``skip`` or ``once``.
    An invalid expression is refused with croniter's reason (InvalidJob).
    """
    name_of_task, merged = task_options(task, options, database)
    db = get_database(database)
    arguments = {"cron": cron, "task": name_of_task, "args": list(args or []) or None,
                 "kwargs": dict(kwargs or {}) or None, "timezone": timezone,
                 "enabled": enabled, **{k: v for k, v in options.items() if v is not None}}  # fmt: skip
    return audit.audited("schedule add", name, lambda: upsert_schedule(
        name, cron, name_of_task, args=list(args or []), kwargs=dict(kwargs or {}),
        options=merged, timezone=timezone, catch_up=catch_up, enabled=enabled, db=db,
    ), arguments=arguments, actor=actor, db=db)  # fmt: skip
