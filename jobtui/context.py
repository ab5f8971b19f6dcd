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
#: What a job row keeps of its progress details, as JSON: details are a dashboard of a few
#: counters ("rows": 1200, "phase": "load"), not a channel for data (that is the result).
PROGRESS_DETAILS_MAX_BYTES = 4096

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
    #: Sends (percentage, message, details as JSON or None) somewhere that writes it,
    #: fenced, to the job.
    report_progress: Callable[[float, str | None, str | None], None] = field(
        default=lambda p, m, d: None
    )
    #: Answers whether an operator asked this job to stop.
    check_cancel: Callable[[], bool] = field(default=lambda: False)
    #: The details reported so far: each ``progress`` call merges its own into them.
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def args(self) -> list[Any]:
        return list(self.parameters.get("args") or [])

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.parameters.get("kwargs") or {})

    def progress(self, percentage: float, message: str | None = None, **details: Any) -> None:
        """Report progress (0–100, clamped) with an optional message and details.

        Details are merged into those reported before (a key given ``None`` is removed),
        so a task may update one counter without repeating the others; the job row and
        the console show the merged dict. Values that are not JSON are shown as text.
        """
        text = None if message is None else str(message)[:PROGRESS_MESSAGE_MAX]
        for key, value in details.items():
            if value is None:
                self.details.pop(key, None)
            else:
                self.details[key] = value
        details_json = encode_details(self.details) if self.details else None
        self.report_progress(max(0.0, min(100.0, float(percentage))), text, details_json)

    @property
    def cancel_requested(self) -> bool:
        """True once an operator cancelled this job: stop soon, it will end ``cancelled``."""
        return self.check_cancel()


def encode_details(details: dict[str, Any]) -> str:
    """Details as the JSON a job row keeps: a value JSON cannot hold is shown as its text,
    and details over PROGRESS_DETAILS_MAX_BYTES are replaced by a note saying so (a
    progress report never fails the task)."""
    from jobtui.models.base import dumps

    def as_json(value: Any) -> Any:
        try:
            dumps(value)
            return value
        except (TypeError, ValueError):
            return str(value)

    text = dumps({str(key): as_json(value) for key, value in details.items()})
    size = len(text.encode("utf-8"))
    if size > PROGRESS_DETAILS_MAX_BYTES:
        note = f"details of {size:,} bytes dropped (over {PROGRESS_DETAILS_MAX_BYTES:,})"
        return dumps({"dropped": note})
    return text


class ProgressCallback:
    """Seed 002's ProgressCallback: what a task that declares a ``progress_callback``
    parameter is given. Calling it (or ``update``) reports progress for the job it was
    made for, exactly as ``current_job().progress`` does; it is written, fenced, to the
    job row by the supervisor, so the task never touches the database for it."""

    __slots__ = ("_context",)

    def __init__(self, context: JobContext) -> None:
        self._context = context

    def __call__(self, percentage: float, message: str | None = None, **details: Any) -> None:
        self._context.progress(percentage, message, **details)

    update = __call__

    def __repr__(self) -> str:
        return f"<ProgressCallback for job {self._context.id}>"


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
