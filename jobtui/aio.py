"""The Python API for asyncio applications: the sync API's names, awaitable.

    from jobtui import aio

    job = await aio.enqueue(send_email, args=["a@example.com"])
    result = await aio.wait(job.id, timeout=30)
    async for snapshot in aio.watch(job.id): ...

Each call runs the sync function of ``jobtui.api`` on one of a few jobtui threads, each
with its own connection (``aio_runner``), so the event loop never blocks and every rule of
the sync path (catalog defaults, unique keys, fencing, batches) holds unchanged. ``wait``
and ``watch`` poll the job's row from those threads with a growing interval (10 ms to
0.5 s, back to 10 ms while the job moves) and wait on the loop in between; on PostgreSQL a
job-end notification (``models/ended.py``: every transaction that ends jobs sends one)
cuts that wait short, so a result arrives at once rather than up to 0.5 s late.

Passing the application's own Peewee database joins no open transaction of the caller (the
calls run on other threads); ``async with batch()`` is the way to write jobs together.
``import jobtui`` never imports this module, nor does the supervisor.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from datetime import datetime

from jobtui import api
from jobtui.aio_batch import AsyncBatch, current_async_batch
from jobtui.aio_runner import run, stop_runner
from jobtui.models.ended import listener_for
from jobtui.models.errors import DatabaseUnavailable, JobFailed, JobNotFound
from jobtui.models.job import Job
from jobtui.registry import Task

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from jobtui.api import Database
    from jobtui.service import JobService, NotHeld

WAIT_POLL_MIN_S = api.WAIT_POLL_MIN_S
WAIT_POLL_MAX_S = api.WAIT_POLL_MAX_S
FINAL_STATES = ("completed", "failed", "cancelled")


async def _call(database: Database, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """Run a writing call: inside ``async with batch()`` on the batch's own thread (its
    transaction), else on a jobtui thread."""
    handle = current_async_batch()
    if handle is not None:
        return await handle.run(fn, *args, **kwargs)
    return await run(database, fn, *args, **kwargs)


async def enqueue(
    task: Task | str,
    args: Iterable[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    *,
    database: Database = None,
    session: Any = None,
    **options: Any,
) -> Job | None:
    """``jobtui.enqueue``, awaitable: the Job (None when ``should_enqueue`` declines).

    ``session=`` (a SQLAlchemy AsyncSession) writes the job in that session's transaction,
    on its connection (jobtui.integrations.sqlalchemy)."""
    if session is not None:
        return await _in_session(session, api.enqueue, task, args, kwargs, **options)
    return await _call(database, api.enqueue, task, args, kwargs, database=database, **options)


async def _in_session(session: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """Run ``fn(..., session=sync_session)`` on an AsyncSession's own connection."""
    from jobtui.integrations.sqlalchemy import run_in_session

    return await run_in_session(session, fn, *args, **kwargs)


async def enqueue_many(
    task: Task | str,
    items: Iterable[Mapping[str, Any]],
    *,
    database: Database = None,
    session: Any = None,
    **options: Any,
) -> list[Job]:
    """``jobtui.enqueue_many``, awaitable: one transaction, the jobs in item order
    (``session=``: an AsyncSession's, as for ``enqueue``)."""
    items = list(items)  # a generator is read here, on the loop, not on another thread
    if session is not None:
        return await _in_session(session, api.enqueue_many, task, items, **options)
    return await _call(database, api.enqueue_many, task, items, database=database, **options)


async def poll(job_id: str, *, database: Database = None) -> Job:
    """The job's current state (a fresh read); JobNotFound if there is no such job."""
    return await run(database, api.poll, job_id, database=database, read=True)


def _snapshot(job: Job) -> tuple[Any, ...]:
    return (job.status, job.progress_percentage, job.progress_message, job.progress_details)


async def watch(
    job_id: str, timeout: float | None = None, *, database: Database = None
) -> AsyncIterator[Job]:
    """Yield the job (a fresh Job row) now and each time its status or progress
    (percentage, message, details) changes; stop after it reaches a final state.

    TimeoutError when ``timeout`` seconds pass before that; a database that cannot be
    reached meanwhile (a restart) is waited for, as the sync ``wait`` does. Polls from a
    jobtui thread with a growing interval, sleeping on the loop in between (a
    server-sent-events endpoint can stream it); a state overwritten within one interval
    is not seen, as a progress bar needs only the latest."""
    try:
        listener = await run(database, listener_for, database, read=True)  # off the loop
    except DatabaseUnavailable:  # an outage: the polls below wait it out
        listener = None
    if listener is None:
        async for job in _watch(job_id, timeout, database, None):
            yield job
        return
    loop, ended = asyncio.get_running_loop(), asyncio.Event()
    listener.subscribe(loop, ended)
    try:
        async for job in _watch(job_id, timeout, database, ended):
            yield job
    finally:
        listener.unsubscribe(loop, ended)


async def _watch(
    job_id: str, timeout: float | None, database: Database, ended: asyncio.Event | None
) -> AsyncIterator[Job]:
    """``watch``'s loop; ``ended`` is set by a job-end notification (PostgreSQL), which cuts
    the pause short."""
    deadline = None if timeout is None else time.monotonic() + timeout
    interval = WAIT_POLL_MIN_S
    seen: tuple[Any, ...] | None = None
    while True:
        if ended is not None:
            ended.clear()  # before the read: an end during it wakes the next pause
        try:
            job = await poll(job_id, database=database)
        except DatabaseUnavailable as exc:  # an outage (a restart): wait, as for a slow job
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"job {job_id} unknown after {timeout:g} s: {exc}") from exc
            await asyncio.sleep(interval if deadline is None else
                                min(interval, max(0.0, deadline - time.monotonic())))  # fmt: skip
            interval = min(interval * 1.5, WAIT_POLL_MAX_S)
            continue
        snapshot = _snapshot(job)
        if snapshot != seen:
            seen = snapshot
            interval = WAIT_POLL_MIN_S  # it moves: look again soon
            yield job
        if job.status in FINAL_STATES:
            return
        pause = interval
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"job {job_id} still {job.status} after {timeout:g} s")
            pause = min(pause, left)
        if ended is None:
            await asyncio.sleep(pause)
        else:
            try:
                await asyncio.wait_for(ended.wait(), pause)
                continue  # a job ended somewhere: look now
            except TimeoutError:
                pass
        interval = min(interval * 1.5, WAIT_POLL_MAX_S)


async def wait(
    job_id: str,
    timeout: float | None = None,
    *,
    on_progress: Callable[[float, str | None], Any] | None = None,
    database: Database = None,
) -> Any:
    """Await the job's end; return its result, or raise JobFailed with its error.

    TimeoutError when ``timeout`` seconds pass first. ``on_progress(percent, message)``
    (a function or a coroutine function) is called each time the progress is seen to
    change, as in the sync ``wait``."""
    seen: tuple[float, str | None] | None = None
    job: Job | None = None
    async for job in watch(job_id, timeout, database=database):
        progress = (float(job.progress_percentage or 0), job.progress_message)
        if on_progress is not None and progress != seen and (seen or progress[0] or progress[1]):
            outcome = on_progress(*progress)
            if inspect.isawaitable(outcome):
                await outcome
        seen = progress
    assert job is not None
    if job.status == "completed":
        return job.result
    raise JobFailed(job.id, job.status, job.error_message)


async def cancel(
    job_id: str,
    *,
    reason: str | None = None,
    kill: bool = False,
    actor: str | None = None,
    database: Database = None,
) -> Job:
    """``jobtui.cancel``, awaitable: the job's state after the request."""
    return await run(database, api.cancel, job_id, reason=reason, kill=kill, actor=actor,
                     database=database)  # fmt: skip


async def retry(
    job_id: str,
    *,
    args: Iterable[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    priority: int | None = None,
    queue: str | None = None,
    actor: str | None = None,
    database: Database = None,
) -> Job:
    """``jobtui.retry``, awaitable: run a failed or cancelled job again, edited when
    ``args``, ``kwargs``, ``priority`` or ``queue`` is given."""
    return await run(database, api.retry, job_id, args=args, kwargs=kwargs, priority=priority,
                     queue=queue, actor=actor, database=database)  # fmt: skip


async def queue_stats(*, database: Database = None) -> dict[str, dict[str, Any]]:
    """``jobtui.queue_stats``, awaitable."""
    return await run(database, api.queue_stats, database=database, read=True)


async def schedule(
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
    """``jobtui.schedule``, awaitable: create or update a cron schedule; its next fire time."""
    return await run(
        database, api.schedule, name, cron, task, args, kwargs, timezone=timezone,
        catch_up=catch_up, enabled=enabled, actor=actor, database=database, **options,
    )  # fmt: skip


def batch(
    on_success: Task | str | None = None,
    on_failure: Task | str | None = None,
    on_complete: Task | str | None = None,
    *,
    database: Database = None,
) -> AsyncBatch:
    """``async with batch(...) as b:`` — ``jobtui.batch`` for coroutines: one transaction,
    its jobs appear at exit, an exception inside enqueues nothing. ``b.id`` names it."""
    return AsyncBatch(on_success, on_failure, on_complete, database=database)


async def close() -> None:
    """Stop jobtui's threads and close their connections (an application's shutdown;
    the next call starts them again)."""
    await asyncio.get_running_loop().run_in_executor(None, stop_runner)


def __getattr__(name: str) -> Any:
    """``jobtui.aio.JobService``: seed 001's service lives in ``jobtui.service``."""
    if name in ("JobService", "NotHeld"):
        from jobtui import service

        return getattr(service, name)
    raise AttributeError(f"module 'jobtui.aio' has no attribute {name!r}")


__all__ = [
    "JobFailed", "JobNotFound", "JobService", "NotHeld", "batch", "cancel", "close", "enqueue", "enqueue_many", "poll",
    "queue_stats", "retry", "schedule", "wait", "watch",
]  # fmt: skip
