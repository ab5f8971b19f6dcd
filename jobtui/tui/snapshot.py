"""Immutable snapshots of what each console view shows, and the data source's interface.

The data source (source.py) builds these in a worker thread; the screens only render them.
Every snapshot carries the time it was read at (``now``), so rendering never asks the clock.
No Textual here: tests build snapshots by hand and feed them to the app.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from jobtui.models.heartbeats import STALE_AFTER_S  # 3 default heartbeat intervals
from jobtui.models.joblog import LogPage

from .filters import JobFilter

#: Counts are capped at this many (shown as "10k+"): counting a million rows every few
#: seconds would cost more than the number is worth.
COUNT_CAP = 10_000


@dataclass(frozen=True)
class HeaderInfo:
    database: str
    supervisors_alive: int = 0
    supervisors_stale: int = 0
    workers_alive: int = 0
    workers_stale: int = 0


@dataclass(frozen=True)
class JobRow:
    id: str
    queue: str
    task: str
    status: str
    priority: int
    attempt: int
    max_retries: int
    retry_count: int
    progress: float
    progress_message: str | None
    created_at: datetime | None
    started_at: datetime | None
    run_at: datetime | None
    worker: str | None
    error_type: str | None
    error: str | None
    cancel_requested: bool = False
    held: str | None = None  # what holds it back when due: "rate 10/s on queue emails"

    def summary(self) -> str:
        return f"{self.id}\n{self.task} on {self.queue} ({self.status}, try {self.attempt})"


@dataclass(frozen=True)
class JobsPage:
    """One window of the jobs table, in display order, and whether more lies beyond it."""

    rows: tuple[JobRow, ...]
    more_below: bool = False
    more_above: bool = False


@dataclass(frozen=True)
class QueueRow:
    name: str
    counts: tuple[tuple[str, int], ...]  # (status, count), counts capped at COUNT_CAP
    latency_s: float | None  # age of the oldest due pending job
    paused: bool = False
    concurrency: int | None = None  # workers serving it (or its cap)
    done_last_hour: int = 0
    failed_last_hour: int = 0
    #: the alerts it is in (models/alert.py): (kind, value, threshold)
    alerts: tuple[tuple[str, float, float], ...] = ()
    limit: int | None = None  # its concurrency limit across the fleet (jobtui limit)
    rate: str | None = None  # its rate ("10/s"; jobtui rate)
    fair_keys: int = 0  # fair keys with claimable jobs (served round-robin)
    priority_aging_s: float | None = None  # its own aging period (None: the supervisors')

    def count(self, status: str) -> int:
        return dict(self.counts).get(status, 0)


@dataclass(frozen=True)
class Strip:
    """The last 60 minutes, oldest minute first."""

    done_per_min: tuple[int, ...] = (0,) * 60
    failed_per_min: tuple[int, ...] = (0,) * 60
    wait_p95_s: float | None = None
    oldest_pending_s: float | None = None


@dataclass(frozen=True)
class WorkerRow:
    kind: str  # "supervisor" or "worker"
    name: str
    supervisor: str | None
    host: str
    pid: int
    state: str
    queue: str | None
    current_job_id: str | None
    current_task: str | None
    progress: float | None
    cpu_percent: float
    rss_bytes: int
    uptime_s: float | None
    heartbeat_age_s: float | None
    jobs_done: int
    jobs_failed: int

    stale_after_s: float = STALE_AFTER_S  # 3 of its supervisor's heartbeat intervals

    @property
    def stale(self) -> bool:
        return self.heartbeat_age_s is not None and self.heartbeat_age_s > self.stale_after_s


@dataclass(frozen=True)
class FailureGroup:
    key: str
    error_type: str
    message: str  # the fingerprint: the message with ids and numbers blanked
    sample: str  # one real message of the group
    count: int
    first_seen: datetime | None
    last_seen: datetime | None
    tasks: tuple[str, ...]
    queues: tuple[str, ...]
    job_ids: tuple[str, ...]


@dataclass(frozen=True)
class ScheduleRow:
    name: str
    cron: str
    task: str
    timezone: str
    enabled: bool
    next_runs: tuple[datetime, ...]
    last_fire_at: datetime | None
    last_job_id: str | None
    last_outcome: str | None  # the last job's status, None when there is none (or it is gone)


@dataclass(frozen=True)
class DelayedRow:
    id: str
    task: str
    queue: str
    status: str  # pending (scheduled) or retrying (backing off)
    run_at: datetime | None
    priority: int
    retry_count: int


@dataclass(frozen=True)
class MetricRow:
    queue: str
    task: str  # "" for the queue's total
    done: int
    failed: int
    wait_p50_s: float | None
    wait_p95_s: float | None
    run_p50_s: float | None
    run_p95_s: float | None
    retried: int = 0  # failed runs that were retried
    cancelled: int = 0
    per_min: float = 0.0  # done + failed per minute over the window
    done_series: tuple[int, ...] = ()  # per slot of the window, oldest first
    failed_series: tuple[int, ...] = ()

    @property
    def failure_rate(self) -> float | None:
        ended = self.done + self.failed
        return None if ended == 0 else self.failed / ended


@dataclass(frozen=True)
class AttemptRow:
    attempt: int
    started_at: datetime | None
    ended_at: datetime | None
    worker: str | None
    host: str | None
    pid: int | None
    outcome: str
    error_type: str | None
    error: str | None
    traceback: str | None
    #: the parameters it ran with, when an operator edited them since (None: the job's)
    parameters: Any = None

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class JobDetail:
    row: JobRow
    title: str | None
    description: str | None
    parameters: Any
    result: Any
    traceback: str | None
    completed_at: datetime | None
    failed_at: datetime | None
    scheduled_for: datetime | None
    next_retry_at: datetime | None
    updated_at: datetime | None
    timeout: float | None
    user_id: str | None
    reference: str | None
    tags: tuple[str, ...]
    metadata: Any
    batch_id: str | None
    schedule_name: str | None
    unique_key: str | None
    depends_on: tuple[str, ...]
    supervisor: str | None
    attempts: tuple[AttemptRow, ...] = ()
    batch_progress: str | None = None  # "3/10 ended", and how the batch ended if it has
    dependants: tuple[str, ...] = ()  # jobs that wait on this one (the first few)
    deadline: datetime | None = None  # not started by then: cancelled as expired
    rate_key: str | None = None
    concurrency_key: str | None = None
    cancel_reason: str | None = None  # while a cancel request of a running job is open
    kill_requested: bool = False  # that request is a kill: no asking first
    progress_details: Any = None  # the task's details dict (seed 002), as reported
    fair_key: str | None = None  # the tenant whose line it waits in (fairness.py)
    base_priority: int | None = None  # the priority it was given, when aging raised it


@dataclass(frozen=True)
class JobsView:
    now: datetime
    page: JobsPage
    queues: tuple[QueueRow, ...] | None  # None: not re-read this tick, keep the last
    strip: Strip | None
    workers: tuple[WorkerRow, ...]
    matching: int | None = None  # jobs matching the filter (capped at COUNT_CAP), if counted


@dataclass(frozen=True)
class QueuesView:
    now: datetime
    queues: tuple[QueueRow, ...]


@dataclass(frozen=True)
class WorkersView:
    now: datetime
    rows: tuple[WorkerRow, ...]


@dataclass(frozen=True)
class FailuresView:
    now: datetime
    groups: tuple[FailureGroup, ...]
    sampled: int  # failed jobs read
    capped: bool  # more failed jobs exist than were read


@dataclass(frozen=True)
class ScheduledView:
    now: datetime
    schedules: tuple[ScheduleRow, ...]
    delayed: tuple[DelayedRow, ...]


@dataclass(frozen=True)
class MetricsWindow:
    """One period ending now (the last hour, 24 hours or 7 days): exact figures per queue
    (task "") followed by its tasks, and the total over every queue."""

    label: str
    window_s: float
    slot_s: float  # the sparklines' slot
    rows: tuple[MetricRow, ...]
    total: MetricRow


@dataclass(frozen=True)
class MetricsView:
    now: datetime
    windows: tuple[MetricsWindow, ...]  # 1h, 24h, 7d


@dataclass(frozen=True)
class AuditRow:
    """One operator action (models/audit.py)."""

    id: int
    at: datetime
    actor: str
    host: str | None
    where: str
    action: str
    target: str
    arguments: Any
    count: int | None


@dataclass(frozen=True)
class AuditView:
    now: datetime
    rows: tuple[AuditRow, ...]


@dataclass(frozen=True)
class DetailView:
    now: datetime
    job: JobDetail | None  # None: the job is gone (deleted or pruned)


@dataclass(frozen=True)
class WorkerDetailView:
    now: datetime
    worker: WorkerRow | None  # None: the worker is gone
    job: JobRow | None = None
    workers: tuple[WorkerRow, ...] = field(default=())  # a supervisor's workers


@dataclass(frozen=True)
class JobsQuery:
    """Which window of the jobs table to read.

    ``top`` is the id of the first row to show (inclusive), None to follow the newest (or,
    with ``oldest_first``, the oldest) job. ``ids`` pins the table to a set of jobs (a
    failure group's) instead of the whole table.
    """

    filter: JobFilter = field(default_factory=JobFilter)
    top: str | None = None
    oldest_first: bool = False
    limit: int = 200
    ids: tuple[str, ...] | None = None


class Source(Protocol):
    """What the console reads. ``DataSource`` reads a database; tests pass fixed data."""

    def header(self) -> HeaderInfo: ...
    def jobs_view(self, query: JobsQuery, *, with_panes: bool = True) -> JobsView: ...
    def rows_before(self, query: JobsQuery, count: int) -> list[str]: ...
    def last_page_top(self, query: JobsQuery) -> str | None: ...
    def queues_view(self) -> QueuesView: ...
    def workers_view(self) -> WorkersView: ...
    def failures_view(self) -> FailuresView: ...
    def scheduled_view(self) -> ScheduledView: ...
    def metrics_view(self) -> MetricsView: ...
    def audit_view(self) -> AuditView: ...
    def job_detail(self, job_id: str) -> DetailView: ...
    def job_log(self, job_id: str, after: tuple[int, int]) -> LogPage: ...
    def job_stack(self, job_id: str) -> dict[str, Any]: ...
    def worker_detail(self, name: str) -> WorkerDetailView: ...
    def matching_ids(self, query: JobsQuery, limit: int) -> list[JobRow]: ...
    def task_names(self) -> list[str]: ...
    def invalidate(self) -> None: ...
