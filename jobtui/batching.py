"""``with batch(on_success=..., on_failure=..., on_complete=...) as b:`` — jobs as one group.

The block is one transaction: its jobs appear together when it exits, and an exception
inside it enqueues nothing. The callbacks are enqueued once each with
``args=[batch_id, "success" | "failure" | "complete"]``: on_failure at the first job that
ends failed or cancelled (kwargs: its ``job_id`` and ``error``), the others once every job
has ended (``models/workflow.finish_batch``, in the transaction that ends the job).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass

import peewee

from jobtui.models.batch import Batch
from jobtui.models.clock import utcnow
from jobtui.models.dialect import dialect_for
from jobtui.models.store import get_database, translated_errors
from jobtui.models.workflow import finish_batch
from jobtui.registry import Task

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from typing import Any

_current: contextvars.ContextVar[BatchHandle | None] = contextvars.ContextVar(
    "jobtui_batch", default=None
)


@dataclass
class BatchHandle:
    """The open batch: ``id`` names it; jobs enqueued in the block join it."""

    id: str
    database: peewee.Database
    jobs: int = 0


def _task_name(target: Task | str | None) -> str | None:
    if target is None:
        return None
    return target.name if isinstance(target, Task) else str(target)


def current_batch() -> BatchHandle | None:
    return _current.get()


@contextlib.contextmanager
def batch(
    on_success: Task | str | None = None,
    on_failure: Task | str | None = None,
    on_complete: Task | str | None = None,
    *,
    database: peewee.Database | str | None = None,
) -> Iterator[BatchHandle]:
    """Group the jobs enqueued inside the block; see the module docstring."""
    db = get_database(database)
    raised_inside: list[BaseException] = []  # the block's own errors pass untranslated
    with translated_errors(raised_inside), dialect_for(db).write_transaction(db):
        row = Batch.create(
            on_success=_task_name(on_success), on_failure=_task_name(on_failure),
            on_complete=_task_name(on_complete), total=0, created_at=utcnow(),
        )  # fmt: skip
        handle = BatchHandle(id=row.id, database=db)
        token = _current.set(handle)
        try:
            yield handle
        except BaseException as exc:
            raised_inside.append(exc)
            raise
        finally:
            _current.reset(token)
        total = _count_jobs(db, handle.id)
        Batch.update(total=total).where(Batch.id == handle.id).execute(db)
        if total == 0:
            finish_batch(db, handle.id)  # an empty batch succeeds at once


def _count_jobs(db: peewee.Database, batch_id: str) -> int:
    from jobtui.models.job import Job

    return Job.select().where(Job.batch_id == batch_id).count(db)


def batch_status(batch_id: str, *, database: peewee.Database | str | None = None) -> dict[str, Any]:
    """A batch's progress: total, counts by status, done (ended jobs), failed (ended not
    completed: failed or cancelled), finished, outcome."""
    from jobtui.models.errors import JobNotFound
    from jobtui.models.job import Job

    db = get_database(database)
    row = Batch.get_or_none(Batch.id == batch_id)
    if row is None:
        raise JobNotFound(f"no batch {batch_id}")
    counts: dict[str, int] = {}
    query = (Job.select(Job.status, peewee.fn.COUNT(Job.id)).where(Job.batch_id == batch_id)
             .group_by(Job.status).tuples())  # fmt: skip
    for status, count in query.execute(db):
        counts[status] = count
    done = sum(counts.get(s, 0) for s in ("completed", "failed", "cancelled"))
    failed = counts.get("failed", 0) + counts.get("cancelled", 0)  # ended not completed
    return {"id": row.id, "total": row.total, "done": done, "failed": failed, "counts": counts,
            "created_at": row.created_at, "finished_at": row.finished_at, "outcome": row.outcome,
            "on_success": row.on_success, "on_failure": row.on_failure,
            "on_complete": row.on_complete}  # fmt: skip


def open_batches(
    *, database: peewee.Database | str | None = None, limit: int = 20, finished: bool = False
) -> list[dict[str, Any]]:
    """Batches not finished yet (``finished``: all of them), newest first, with their
    progress (``jobtui status``, ``jobtui batch list``)."""
    get_database(database)
    rows = Batch.select(Batch.id).order_by(Batch.id.desc())
    if not finished:
        rows = rows.where(Batch.finished_at.is_null())
    return [batch_status(row.id, database=database) for row in rows.limit(limit)]
