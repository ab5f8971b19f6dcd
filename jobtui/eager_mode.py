"""Eager mode: ``enqueue`` runs the job inline, for an application's own tests.

As huey's immediate mode and Celery's eager mode do, but with jobtui's own semantics: the
job row is written, claimed, run with a real ``current_job()`` (progress is written to the
row), and its outcome goes through the same transitions a supervisor uses — retries are
counted and re-run at once (no backoff wait), ``PermanentError`` fails without retry.
Turn it on with ``JOBTUI_EAGER=1`` or ``with jobtui.eager(): ...``.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator
from dataclasses import dataclass

import peewee

from jobtui.execution import DEFAULT_MAX_RESULT_BYTES, execute_job, outcome_from_message
from jobtui.models.base import dumps
from jobtui.models.claims import record_progress, start_job
from jobtui.models.errors import InvalidTransition, JobFailed
from jobtui.models.job import Job
from jobtui.models.outcomes import write_outcomes
from jobtui.registry import registry

ENV_VAR = "JOBTUI_EAGER"


@dataclass(frozen=True)
class EagerSettings:
    propagate: bool = False  # re-raise a final failure as JobFailed in the caller
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES


_settings: contextvars.ContextVar[EagerSettings | None] = contextvars.ContextVar(
    "jobtui_eager", default=None
)


@contextlib.contextmanager
def eager(propagate: bool = False) -> Iterator[EagerSettings]:
    """Run every job enqueued inside the block inline, at enqueue time."""
    token = _settings.set(EagerSettings(propagate=propagate))
    try:
        yield _settings.get()  # type: ignore[misc]
    finally:
        _settings.reset(token)


def eager_settings() -> EagerSettings | None:
    """The eager settings in force, or None when jobs go to supervisors as usual."""
    found = _settings.get()
    if found is not None:
        return found
    data = getattr(os.environ, "_data", None)
    if _ENV_KEY is not None and type(data) is dict and _ENV_KEY not in data:  # unset
        return None
    if os.environ.get(ENV_VAR, "").strip().lower() in ("1", "true", "yes", "on"):
        return EagerSettings()
    return None


# Every enqueue asks; os.environ answers "unset" by raising and catching KeyError twice
# (a tenth of an enqueue's Python once its caches are cold). Its own dict, which every
# change to os.environ updates, answers with one look-up (POSIX, where its keys are the
# names' bytes; elsewhere os.environ is asked).
_ENV_KEY = os.fsencode(ENV_VAR) if os.name == "posix" else None


def run_eagerly(job_id: str, db: peewee.Database, settings: EagerSettings) -> None:
    """Claim and run ``job_id`` here until it completes, fails for good or is cancelled."""
    while True:
        try:
            job = start_job(job_id, worker_name=f"eager-{os.getpid()}", db=db)
        except InvalidTransition:
            return  # waiting on dependencies, or already ended: nothing to run now
        attempt, token = job.attempt, job.lease_token
        message = execute_job(
            registry,
            (job.id, job.job_type, dumps(job.parameters), attempt, job.queue_name),
            report_progress=lambda pct, msg, details, a=attempt, t=token: record_progress(
                job_id, a, t, pct, msg, details=details, db=db
            ),
            check_cancel=lambda: bool(
                Job.select(Job.cancel_requested).where(Job.id == job_id).scalar(db)
            ),
            max_result_bytes=settings.max_result_bytes,
        )
        task = registry.get(job.job_type)
        outcome = outcome_from_message(
            message, token, worker={"worker_name": f"eager-{os.getpid()}", "pid": os.getpid()},
            task_policy=task.retry_policy if task is not None else None,
        )  # fmt: skip
        status = write_outcomes([outcome], db=db)[0]
        if status != "retrying":
            break
    if status == "failed" and settings.propagate:
        raise JobFailed(job_id, "failed", outcome.error)
