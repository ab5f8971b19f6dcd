"""``current_job()``: what a running task can know and do about its own job.

The worker process (or eager mode) installs a ``JobContext`` around each run; the task
reads its id, attempt and parameters, reports progress and checks ``cancel_requested``.
How progress travels (the worker's pipe, or a fenced write in eager mode) is the
reporter's business, so tasks never touch the database for it.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from dataclasses import dataclass, field

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from typing import Any

PROGRESS_MESSAGE_MAX = 500  # what a job row keeps of a progress message (models/claims.py)

_current: contextvars.ContextVar[JobContext | None] = contextvars.ContextVar(
    "jobtui_current_job", default=None
)


@dataclass
class JobContext:
    """The running job, as its task sees it. ``(id, attempt)`` is an idempotency key."""

    id: str
    attempt: int
    job_type: str
    parameters: dict[str, Any]
    queue_name: str = "default"
    #: Sends (percentage, message) somewhere that writes it, fenced, to the job.
    report_progress: Callable[[float, str | None], None] = field(default=lambda p, m: None)
    #: Answers whether an operator asked this job to stop.
    check_cancel: Callable[[], bool] = field(default=lambda: False)

    @property
    def args(self) -> list[Any]:
        return list(self.parameters.get("args") or [])

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.parameters.get("kwargs") or {})

    def progress(self, percentage: float, message: str | None = None) -> None:
        """Report progress (0–100, clamped) with an optional message."""
        text = None if message is None else str(message)[:PROGRESS_MESSAGE_MAX]
        self.report_progress(max(0.0, min(100.0, float(percentage))), text)

    @property
    def cancel_requested(self) -> bool:
        """True once an operator cancelled this job: stop soon, it will end ``cancelled``."""
        return self.check_cancel()


def current_job() -> JobContext:
    """The job the calling code runs in; RuntimeError outside a job."""
    context = _current.get()
    if context is None:
        raise RuntimeError("current_job() is only available inside a running job")
    return context


def bind_job(context: JobContext | None) -> contextvars.Token:
    """Install ``context`` for the code that runs next (the worker calls this)."""
    return _current.set(context)


def unbind_job(token: contextvars.Token) -> None:
    _current.reset(token)
