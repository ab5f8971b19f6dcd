"""jobtui: a background-job queue for Python that you can watch and steer from a terminal.

from jobtui import task, enqueue

@task(queue="emails", max_retries=5)
def send_email(to: str) -> dict: ...

send_email.enqueue("a@example.com")
"""

from __future__ import annotations

from jobtui.api import (
    cancel,
    enqueue,
    enqueue_many,
    poll,
    queue_stats,
    retry,
    schedule,
    wait,
)
from jobtui.batching import batch, batch_status
from jobtui.context import JobContext, current_job
from jobtui.eager import eager
from jobtui.models.errors import (
    InvalidJob,
    JobFailed,
    JobNotFound,
    JobtuiError,
    PermanentError,
)
from jobtui.models.status import JobStatus, Priority
from jobtui.models.store import use_database
from jobtui.registry import Task, task

__version__ = "0.1.0"

__all__ = [
    "InvalidJob", "JobContext", "JobFailed", "JobNotFound", "JobStatus", "JobtuiError",
    "PermanentError", "Priority", "Task", "batch", "batch_status", "cancel", "current_job", "eager", "enqueue", "enqueue_many",
    "poll", "queue_stats", "retry", "schedule", "task", "use_database", "wait",
]  # fmt: skip
