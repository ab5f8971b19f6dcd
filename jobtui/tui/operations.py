"""What the console's keys do to the database, and how much confirmation each needs.

No Textual: the screens call ``Operations`` from a worker thread and show the returned
``Outcome`` as a toast. Every write goes through ``jobtui.models.actions`` or
``jobtui.api.enqueue``, exactly as the CLI's, so the supervisor sees the console's actions
through the same rows (``cancel_requested``, ``queues.paused``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import peewee

from jobtui.models import actions, audit
from jobtui.models.errors import JobtuiError
from jobtui.models.status import parse_priority

#: At this many jobs (or "all matching") the operator types the count to confirm.
TYPED_CONFIRM_AT = 100
#: "All matching" acts on at most this many jobs at once.
MAX_BULK = 100_000


class Confirm(Enum):
    NONE = "none"  # reversible single action: do it, a toast reports it
    YES_NO = "yes_no"  # cancel/kill/delete of one job: a y/n modal with its summary
    COUNTS = "counts"  # a bulk action: a modal with the counts
    TYPED = "typed"  # 100+ jobs or "all matching": type the count


#: Actions that cannot be undone from the console (a retry or a priority change can).
DESTRUCTIVE = frozenset({"cancel", "kill", "delete"})
VERBS = {"cancel": "Cancel", "kill": "Kill", "delete": "Delete", "retry": "Retry",
         "priority_up": "Raise the priority of", "priority_down": "Lower the priority of"}  # fmt: skip


def confirmation_for(action: str, count: int, *, all_matching: bool = False) -> Confirm:
    """How the console confirms ``action`` on ``count`` jobs (the blast radius rule)."""
    if all_matching or count >= TYPED_CONFIRM_AT:
        return Confirm.TYPED
    if count > 1:
        return Confirm.COUNTS
    return Confirm.YES_NO if action in DESTRUCTIVE else Confirm.NONE


def describe_counts(statuses: Sequence[str]) -> str:
    """``3 jobs: 2 pending, 1 running``."""
    counts = Counter(statuses)
    noun = "job" if len(statuses) == 1 else "jobs"
    detail = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    return f"{len(statuses):,} {noun}" + (f": {detail}" if detail else "")


def _plural(n: int, noun: str = "job") -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


@dataclass(frozen=True)
class Outcome:
    message: str
    severity: str = "information"  # information, warning, error


@dataclass(frozen=True)
class EnqueueRequest:
    task: str
    args: tuple
    kwargs: dict
    queue: str | None
    priority: int | None
    delay: float | None


def parse_enqueue_form(task: str, arguments: str, queue: str = "", priority: str = "",
                       delay: str = "") -> EnqueueRequest:  # fmt: skip
    """Validate the enqueue form. ``arguments`` is JSON: an array (positional arguments),
    an object (keyword arguments) or ``{"args": [...], "kwargs": {...}}``. Raises
    ValueError with a message for the form."""
    task = task.strip()
    if not task:
        raise ValueError("task: name the task, e.g. jobtui.demo.send_email")
    args: list = []
    kwargs: dict = {}
    if arguments.strip():
        try:
            value = json.loads(arguments)
        except ValueError as exc:
            raise ValueError(f"arguments: not valid JSON ({exc})") from None
        if isinstance(value, list):
            args = value
        elif isinstance(value, dict) and set(value) <= {"args", "kwargs"} and value:
            args, kwargs = list(value.get("args") or []), dict(value.get("kwargs") or {})
        elif isinstance(value, dict):
            kwargs = value
        else:
            raise ValueError("arguments: a JSON array (args) or object (kwargs)")
    number = parse_priority(priority) if priority.strip() else None
    try:
        seconds = float(delay) if delay.strip() else None
    except ValueError:
        raise ValueError(f"delay: {delay!r} is not a number of seconds") from None
    if seconds is not None and seconds < 0:
        raise ValueError("delay: must be >= 0 seconds")
    return EnqueueRequest(task=task, args=tuple(args), kwargs=kwargs,
                          queue=queue.strip() or None, priority=number, delay=seconds)  # fmt: skip


@dataclass(frozen=True)
class RetryRequest:
    """The edit-and-retry form, validated: None keeps the job's own value."""

    args: list | None
    kwargs: dict | None
    priority: int | None
    queue: str | None


def parse_retry_form(args: str, kwargs: str, priority: str = "", queue: str = "") -> RetryRequest:
    """Validate the edit-and-retry form: ``args`` a JSON array, ``kwargs`` a JSON object
    (the form starts with the job's own). Raises ValueError with a message for the form."""

    def loaded(text: str, name: str, kind: type) -> Any:
        if not text.strip():
            return kind()
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"{name}: not valid JSON ({exc})") from None
        if not isinstance(value, kind):
            raise ValueError(f"{name}: a JSON {'array' if kind is list else 'object'}")
        return value

    return RetryRequest(args=loaded(args, "args", list), kwargs=loaded(kwargs, "kwargs", dict),
                        priority=parse_priority(priority) if priority.strip() else None,
                        queue=queue.strip() or None)  # fmt: skip


#: How long the console's scale waits for the supervisor (in a worker thread).
SCALE_WAIT_S = 15.0


class Operations:
    """The console's writes on one database. Call from a worker thread."""

    def __init__(self, db: peewee.Database) -> None:
        self.db = db

    def _run(self, fn) -> Outcome:
        try:
            with self.db.connection_context(), audit.scope(where="console"):
                return fn()
        except (JobtuiError, peewee.PeeweeException) as exc:
            return Outcome(f"failed: {exc}", "error")

    def _audited(self, action: str, target, work, **options):
        """``work`` and its audit row in one transaction (models/audit.py)."""
        return audit.audited(action, target, work, db=self.db, **options)

    def edit_retry(self, job_id: str, request: RetryRequest) -> Outcome:
        """Retry a failed or cancelled job with the form's parameters and options (the
        API's ``retry(job_id, args=...)``, audited as ``edit``)."""
        from jobtui.api import retry

        def run() -> Outcome:
            job = retry(job_id, args=request.args, kwargs=request.kwargs,
                        priority=request.priority, queue=request.queue, database=self.db)  # fmt: skip
            return Outcome(f"retrying {job.id} with edited parameters on {job.queue_name}")

        return self._run(run)

    def cancel(self, ids: Sequence[str]) -> Outcome:
        def run() -> Outcome:
            r = self._audited("cancel", ids, lambda: actions.cancel_jobs(ids, db=self.db))
            return Outcome(r.cancel_summary(), "information" if r.changed or r.requested
                           else "warning")  # fmt: skip

        return self._run(run)

    def kill(self, ids: Sequence[str], statuses: dict[str, str]) -> Outcome:
        """Stop running jobs now: their supervisor sends SIGTERM to each one's process tree
        at once (SIGKILL after its kill grace) without asking the task first, as ``c``
        does. Jobs that are not running are left alone."""
        running = [i for i in ids if statuses.get(i) == "running"]
        if not running:
            return Outcome("nothing to kill: no running job selected", "warning")

        def run() -> Outcome:
            r = self._audited("kill", running,
                              lambda: actions.cancel_jobs(running, kill=True, db=self.db))  # fmt: skip
            skipped = len(ids) - len(running)
            text = f"killing {_plural(r.requested, 'running job')}"
            return Outcome(text + (f" ({skipped} not running, left alone)" if skipped else ""))

        return self._run(run)

    def retry(self, ids: Sequence[str]) -> Outcome:
        def run() -> Outcome:
            r = self._audited("retry", ids, lambda: actions.retry_jobs(ids, db=self.db))
            text = f"retrying {_plural(r.changed)}"
            if r.skipped:
                text += f"; {_plural(r.skipped)} not failed or cancelled"
            return Outcome(text, "information" if r.changed else "warning")

        return self._run(run)

    def delete(self, ids: Sequence[str]) -> Outcome:
        def run() -> Outcome:
            r = self._audited("delete", ids, lambda: actions.delete_jobs(ids, db=self.db))
            text = f"deleted {_plural(r.changed)}"
            if r.skipped:
                text += f"; {_plural(r.skipped)} running (cancel first) or gone"
            if r.cascaded:
                text += f"; {_plural(r.cascaded, 'dependant')} cancelled"
            return Outcome(text, "information" if r.changed else "warning")

        return self._run(run)

    def change_priority(self, ids: Sequence[str], delta: int) -> Outcome:
        def run() -> Outcome:
            r = self._audited("priority", ids, lambda: actions.change_priority(
                ids, delta=delta, db=self.db), count=lambda r: r.changed,
                arguments={"delta": delta})  # fmt: skip
            if not r.changed:
                return Outcome("priority unchanged: the job has ended", "warning")
            return Outcome(f"priority {delta:+d} on {_plural(r.changed)}")

        return self._run(run)

    def set_paused(self, queue: str, paused: bool) -> Outcome:
        def run() -> Outcome:
            self._audited("pause" if paused else "resume", queue,
                          lambda: actions.set_queue_paused(queue, paused, db=self.db))  # fmt: skip
            return Outcome(f"queue {queue} {'paused' if paused else 'resumed'}")

        return self._run(run)

    def scale(self, queue: str, count: int, supervisor: str | None = None,
              timeout_s: float = SCALE_WAIT_S) -> Outcome:  # fmt: skip
        """Ask the supervisor serving ``queue`` for ``count`` workers and wait (in this
        worker thread) until it applied it: ``jobtui scale``."""
        from jobtui.models import scaling

        def run() -> Outcome:
            target = scaling.pick_supervisor(self.db, queue, supervisor)
            scaling.check_count(target, queue, count)
            name, was = target["name"], target["queues"].get(queue)
            self._audited("scale", queue, lambda: scaling.request_scale(self.db, name, queue, count),
                          arguments={"supervisor": name, "workers": count})  # fmt: skip
            applied = scaling.wait_applied(self.db, name, queue, count, timeout_s)
            if applied is None:
                return Outcome(f"asked {name} for {count} worker(s) on {queue}: not applied "
                               f"within {timeout_s:g} s (it applies when {name} reads it)",
                               "warning")  # fmt: skip
            later = " (the extra ones stop after their current job)" if was and count < was else ""
            return Outcome(f"{name}: queue {queue} {was if was is not None else 0} -> {count} "
                           f"worker(s){later}")  # fmt: skip

        return self._run(run)

    def set_schedule_enabled(self, name: str, enabled: bool) -> Outcome:
        from jobtui.models import scheduling

        def run() -> Outcome:
            self._audited("schedule resume" if enabled else "schedule pause", name,
                          lambda: scheduling.set_schedule_enabled(name, enabled, db=self.db))  # fmt: skip
            return Outcome(f"schedule {name} {'resumed' if enabled else 'paused'}")

        return self._run(run)

    def run_schedule_now(self, name: str) -> Outcome:
        from jobtui.models import scheduling

        def run() -> Outcome:
            job_id = self._audited("schedule run-now", name,
                                   lambda: scheduling.run_schedule_now(name, db=self.db),
                                   count=1, arguments=lambda job: {"job": job})  # fmt: skip
            return Outcome(f"schedule {name}: job {job_id} enqueued now")

        return self._run(run)

    def enqueue(self, request: EnqueueRequest) -> Outcome:
        from jobtui.api import enqueue

        def run() -> Outcome:
            options = {k: v for k, v in (("queue", request.queue), ("priority", request.priority),
                                         ("delay", request.delay)) if v is not None}  # fmt: skip
            job = enqueue(request.task, args=list(request.args), kwargs=request.kwargs,
                          database=self.db, **options)  # fmt: skip
            if job is None:
                return Outcome("not enqueued: the task's should_enqueue declined", "warning")
            return Outcome(f"enqueued {request.task} as {job.id} on {job.queue_name}")

        return self._run(run)
