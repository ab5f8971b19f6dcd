"""jobtui: a background-job queue for Python that you can watch and steer from a terminal.

    from jobtui import task, enqueue

    @task(queue="emails", max_retries=5)
    def send_email(to: str) -> dict: ...

    send_email.enqueue("a@example.com")

The names below load on first use (PEP 562), so ``import jobtui.supervisor`` or the CLI
pay only for what they touch — the daemon's memory is part of its contract.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "cancel": "jobtui.api", "enqueue": "jobtui.api", "enqueue_many": "jobtui.api",
    "poll": "jobtui.api", "queue_stats": "jobtui.api", "retry": "jobtui.api",
    "schedule": "jobtui.api", "wait": "jobtui.api",
    "batch": "jobtui.batching", "batch_status": "jobtui.batching",
    "JobContext": "jobtui.context", "ProgressCallback": "jobtui.context",
    "current_job": "jobtui.context",
    "eager": "jobtui.eager_mode",
    "InvalidJob": "jobtui.models.errors", "JobFailed": "jobtui.models.errors",
    "JobNotFound": "jobtui.models.errors", "JobtuiError": "jobtui.models.errors",
    "PermanentError": "jobtui.models.errors",
    "JobStatus": "jobtui.models.status", "Priority": "jobtui.models.status",
    "use_database": "jobtui.models.store",
    "Task": "jobtui.registry", "task": "jobtui.registry",
}  # fmt: skip

__all__ = [
    "InvalidJob", "JobContext", "JobFailed", "JobNotFound", "JobStatus", "JobtuiError",
    "PermanentError", "Priority", "ProgressCallback", "Task", "batch", "batch_status",
    "cancel", "current_job", "eager", "enqueue", "enqueue_many", "poll", "queue_stats",
    "retry", "schedule", "task", "use_database", "wait",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'jobtui' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, eagerly
    from jobtui.api import cancel, enqueue, enqueue_many, poll, queue_stats, retry, schedule, wait
    from jobtui.batching import batch, batch_status
    from jobtui.context import JobContext, ProgressCallback, current_job
    from jobtui.eager_mode import eager
    from jobtui.models.errors import InvalidJob, JobFailed, JobNotFound, JobtuiError, PermanentError
    from jobtui.models.status import JobStatus, Priority
    from jobtui.models.store import use_database
    from jobtui.registry import Task, task
