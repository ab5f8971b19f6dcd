"""The supervisor's side of the task catalog (models/catalog.py).

At start (a SIGHUP reload is a fresh start) the supervisor publishes the tasks it
registered, so enqueuers that cannot import them apply their defaults, and moves jobs
enqueued by name before any supervisor knew their task to the task's queue.

While it runs, ``TaskSettings`` answers, from memory, what a job's unset options are for
this supervisor: its registry's task options, then its ``--default-*``, then the built-in
ones. Nothing here queries per job: the claim stays one statement, and the outcome
statements already read the job's row.
"""

from __future__ import annotations

import logging
import time

import peewee

from jobtui.models.catalog import (
    DEFAULT_QUEUE,
    UNSET_TIMEOUT,
    catalog_row,
    publish_tasks,
    rehome_unresolved,
)
from jobtui.models.retry import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_RETRY_BACKOFF,
    DEFAULT_RETRY_DELAY_S,
    DEFAULT_RETRY_JITTER,
    DEFAULT_RETRY_MAX_DELAY_S,
    RetryPolicy,
)
from jobtui.registry import TaskRegistry

from .config import SupervisorConfig

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from jobtui.models.claims import ClaimedJob

log = logging.getLogger(__name__)

#: How often a running supervisor looks for jobs of its tasks still waiting for a queue
#: (enqueued by a process whose catalog copy predated our start): an empty index probe.
REHOME_INTERVAL_S = 10.0


def publish_catalog(
    db: peewee.Database,
    config: SupervisorConfig,
    registry: TaskRegistry,
    *,
    in_transaction: bool = False,
) -> None:
    """Write our tasks to the catalog and rehome their unresolved jobs, in one write
    transaction — the caller's with ``in_transaction`` (start-up: the one that writes our
    supervisor row, so nobody sees us running before our tasks' defaults)."""
    import contextlib

    from jobtui.models.dialect import dialect_for

    rows = []
    for name in registry.names():
        task = registry.get(name)
        if task is not None:
            rows.append(catalog_row(name, task.registered_defaults,
                                    getattr(task.func, "__module__", None)))  # fmt: skip
    scope = contextlib.nullcontext() if in_transaction else dialect_for(db).write_transaction(db)
    with scope:
        publish_tasks(db, config.name, config.host, rows)
        moved = rehome_unresolved(db, task_queues(registry))
    log.info("published %d task(s) to the task catalog", len(rows))
    if moved:
        log.info("moved %d job(s) enqueued before their task was known to its queue", moved)


def task_queues(registry: TaskRegistry) -> dict[str, str]:
    """Task name -> the queue its jobs go to when the enqueuer names none."""
    out = {}
    for name in registry.names():
        task = registry.get(name)
        if task is not None:
            out[name] = task.defaults.get("queue") or DEFAULT_QUEUE
    return out


class TaskSettings:
    """Each registered task's options as this supervisor resolves them: the task's, then
    ``--default-*``, then built-in. Owns the periodic rehoming too."""

    def __init__(self, registry: TaskRegistry, config: SupervisorConfig) -> None:
        self.default_timeout_s = config.default_timeout_s or None
        self.policies: dict[str, RetryPolicy] = {}
        self.timeouts: dict[str, float | None] = {}
        #: each task's max_crashes: its own, else --max-crashes (0: never quarantined)
        self.max_crashes: dict[str, int] = {}
        self.default_max_crashes = config.max_crashes
        for name in registry.names():
            task = registry.get(name)
            if task is None:
                continue
            d = task.defaults
            self.policies[name] = RetryPolicy(
                delay_s=_first(d.get("retry_delay"), config.default_retry_delay_s,
                               DEFAULT_RETRY_DELAY_S),
                backoff=_first(d.get("retry_backoff"), DEFAULT_RETRY_BACKOFF),
                max_delay_s=_first(d.get("retry_max_delay"), DEFAULT_RETRY_MAX_DELAY_S),
                jitter=bool(_first(d.get("retry_jitter"), DEFAULT_RETRY_JITTER)),
                max_retries=int(_first(d.get("max_retries"), config.default_max_retries,
                                       DEFAULT_MAX_RETRIES)),
            )  # fmt: skip
            self.timeouts[name] = d.get("timeout") or self.default_timeout_s
            own = getattr(task, "max_crashes", None)
            self.max_crashes[name] = config.max_crashes if own is None else int(own)
        self.queues = task_queues(registry)
        self.next_rehome = time.monotonic() + REHOME_INTERVAL_S

    def policy(self, job_type: str) -> RetryPolicy | None:
        """The retry policy (with max_retries) for a job of ``job_type``; None when the
        task is not ours (then the job row alone decides)."""
        return self.policies.get(job_type)

    def crash_limit(self, job_type: str) -> int:
        """Crashes after which a job of ``job_type`` is quarantined (0: never)."""
        return self.max_crashes.get(job_type, self.default_max_crashes)

    def timeout_for(self, job: ClaimedJob) -> float | None:
        """The run's timeout: the job's own when its enqueuer gave one, else the task's,
        else ``--default-timeout``; None for no limit."""
        own = job.timeout if not (job.unset_options & UNSET_TIMEOUT) else None
        if own:
            return own
        if job.job_type in self.timeouts:
            return self.timeouts[job.job_type]
        return job.timeout or self.default_timeout_s

    def rehome_tick(self, db: peewee.Database, now_mono: float) -> None:
        """Now and then, move jobs of our tasks enqueued before anyone published them."""
        if now_mono < self.next_rehome:
            return
        self.next_rehome = now_mono + REHOME_INTERVAL_S
        try:
            moved = rehome_unresolved(db, self.queues)
        except peewee.PeeweeException as exc:
            log.debug("rehoming postponed: %s", exc)
            return
        if moved:
            log.info("moved %d job(s) enqueued before their task was known to its queue", moved)


def _first(*values):
    for value in values:
        if value is not None:
            return value
    return None
