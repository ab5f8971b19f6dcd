"""The console's data source: reads the job database into immutable snapshots. No Textual.

Each fetch runs inside ``db.connection_context()`` (Peewee keeps one connection per thread
and the console's worker threads come and go) in autocommit mode: no transaction stays
open between reads, so the console never holds back a writer or PostgreSQL's vacuum.

The jobs table is read one window at a time with keyset pagination on the id (UUIDv7:
``ORDER BY id DESC`` is newest first). A filter on states reads one branch per status
through the (status, id) index and merges them, so each branch stops after ``limit``
rows instead of sorting every match. Aggregates (queue counts, the last hour, failure
groups) are cached for ``stats_ttl_s`` seconds: they refresh every few seconds, not on
every tick.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import peewee

from jobtui.models.attempt import JobAttempt
from jobtui.models.base import as_datetime
from jobtui.models.db import redact_url
from jobtui.models.dependency import JobDependency
from jobtui.models.heartbeats import STALE_AFTER_S, stale_after_s
from jobtui.models.job import Job
from jobtui.models.joblog import LogPage, read_log
from jobtui.models.ready_reads import READY_PARTS
from jobtui.models.rollup_read import HOUR, WINDOWS, WindowFigures, read_window
from jobtui.models.scaling import describe_queues
from jobtui.models.stacks import StackUnavailable, take_stack
from jobtui.models.staging import TASK_PARTS
from jobtui.models.status import ALL_STATUSES
from jobtui.models.worker import Supervisor, Worker

from . import stats
from .clock import Clock, SystemClock
from .filter_sql import filter_conditions
from .filters import JobFilter, glob_to_like
from .held import with_held
from .snapshot import (
    COUNT_CAP,
    AttemptRow,
    AuditView,
    DetailView,
    FailuresView,
    HeaderInfo,
    JobDetail,
    JobRow,
    JobsPage,
    JobsQuery,
    JobsView,
    MetricsView,
    QueuesView,
    ScheduledView,
    WorkerDetailView,
    WorkerRow,
    WorkersView,
)

DETAIL_DEPENDANTS = 20
#: Chunks of a job log the Logs tab reads per poll (a worker sends a chunk at most every
#: 0.25 s, so this keeps up with any job; a long log fills in over a few polls).
LOG_PAGE_CHUNKS = 200
#: How much longer than the last hour the longer windows stay cached: their sums read
#: more rows (7 days: every hour row of the week) and a minute more changes them little.
METRICS_TTL_FACTOR = {
    "1h": 1,
    "24h": 6,
    "7d": 12,
}  # the job detail lists this many of the jobs waiting on a job

T = TypeVar("T")

JOB_COLUMNS = (
    Job.id, Job.queue_name, Job.job_type, Job.status, Job.priority, Job.attempt,
    Job.max_retries, Job.retry_count, Job.progress_percentage, Job.progress_message,
    Job.created_at, Job.started_at, Job.run_at, Job.worker_name, Job.error_type,
    Job.error_message, Job.cancel_requested, Job.next_retry_at,
)  # fmt: skip
ERROR_CHARS = 300
#: The usual window of the jobs table (the planner's cost estimate assumes it).
WINDOW_ROWS = 200
#: A filtered walk of the id index expected to read fewer rows than this is one query.
DENSE_WALK_ROWS = 20_000


def job_row(values: Sequence[Any]) -> JobRow:
    (job_id, queue, task, status, priority, attempt, max_retries, retry_count, progress,
     message, created, started, run_at, worker, error_type, error, cancel,
     next_retry_at) = values  # fmt: skip
    if next_retry_at is not None and (run_at is None or next_retry_at > run_at):
        run_at = next_retry_at  # due: a retry's backoff ends later than its place in line
    first_line = error.strip().splitlines()[0][:ERROR_CHARS] if error and error.strip() else None
    return JobRow(id=job_id, queue=queue, task=task, status=status, priority=int(priority or 0),
                  attempt=int(attempt or 0), max_retries=int(max_retries or 0),
                  retry_count=int(retry_count or 0), progress=float(progress or 0),
                  progress_message=message, created_at=created, started_at=started,
                  run_at=run_at, worker=worker, error_type=error_type, error=first_line,
                  cancel_requested=bool(cancel))  # fmt: skip


@dataclass(frozen=True)
class Branch:
    """One query of a merged read: a status (or none), and how to reach its rows."""

    status: peewee.Node | None
    walk_ids: bool = False  # hide the queue from the planner: walk (status, id)
    sort: bool = False  # read through (status, queue_name) and sort by id


def _sort_beats_walk(matching: int, everywhere: int, *, capped: bool = False) -> bool:
    """Whether to read the ``matching`` rows and sort them rather than walk an index past
    ``everywhere`` rows in id order (capped counts: ``capped`` says one hit the cap).
    Walking reads about limit / density rows; sorting reads every match (full rows into a
    temporary b-tree: about three times the cost)."""
    walk_cost = WINDOW_ROWS * everywhere / max(1, matching)
    return matching == 0 or (not capped and matching < COUNT_CAP and 3 * matching < walk_cost)


def _status_branches(state: str, *, sort: bool, walk_ids: bool = False) -> list[Branch]:
    """The branches that read the jobs in ``state``. Pending jobs are not in the status
    indexes (models/ready_reads.py): sorted, they are read from each claim index apart;
    walked, the id index is, with the status tested on each row."""
    if state == "pending" and sort:
        return [Branch((Job.status == state) & peewee.SQL(half), sort=True) for half in READY_PARTS]
    return [Branch(Job.status == state, walk_ids=walk_ids, sort=sort)]


def _task_parts(flt: JobFilter) -> list[peewee.Node | None]:
    """A filter naming tasks (no globs) reads the task index and jobs_staged apart (each in
    id order: models/staging.py); any other filter reads once."""
    if flt.tasks and not any(glob_to_like(t) for t in flt.tasks):
        return [peewee.SQL(part) for part in TASK_PARTS]
    return [None]


class DataSource:
    """Reads one database for the console. Safe to call from any thread, one call at a time
    per thread; every public method opens and closes its own connection context."""

    def __init__(self, db: peewee.Database, *, url: str = "", clock: Clock | None = None,
                 stats_ttl_s: float = 5.0) -> None:  # fmt: skip
        self.db = db
        self.label = redact_url(url) if url else str(getattr(db, "database", "database"))
        self.clock = clock or SystemClock()
        self.stats_ttl_s = stats_ttl_s
        self._cache: dict[str, tuple[float, Any]] = {}

    # ------------------------------------------------------------------ plumbing

    def _read(self, fn: Callable[[], T]) -> T:
        with self.db.connection_context():
            return fn()

    def _cached(self, key: str, fn: Callable[[], T], ttl_s: float | None = None) -> T:
        now = self.clock.monotonic()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < (self.stats_ttl_s if ttl_s is None else ttl_s):
            return hit[1]
        value = fn()
        self._cache[key] = (now, value)
        return value

    def invalidate(self) -> None:
        """Forget cached aggregates (after an action, so its effect shows at once)."""
        self._cache.clear()

    def _hour(self, now: datetime) -> WindowFigures:
        """The rollup's last hour (exact ends per minute, queue and task)."""
        return self._cached("hour", lambda: read_window(self.db, now, HOUR))

    def _queues(self, now: datetime):
        return self._cached("queues", lambda: stats.queue_rows(self.db, now, self._hour(now)))

    # ------------------------------------------------------------------ header

    def header(self) -> HeaderInfo:
        def read() -> HeaderInfo:
            now = self.clock.now()
            counts = {"supervisors": [0, 0], "workers": [0, 0]}
            limits = stats.stale_limits(self.db)
            for key, model, owner in (("supervisors", Supervisor, Supervisor.name),
                                      ("workers", Worker, Worker.supervisor)):  # fmt: skip
                for beat, name in model.select(model.heartbeat_at, owner).tuples().execute(self.db):
                    beat = as_datetime(beat)
                    limit = limits.get(name, STALE_AFTER_S)
                    stale = beat is None or (now - beat).total_seconds() > limit
                    counts[key][1 if stale else 0] += 1
            return HeaderInfo(self.label, *counts["supervisors"], *counts["workers"])

        return self._read(read)

    # ------------------------------------------------------------------ the jobs table

    def _plan(self, flt: JobFilter, now: datetime) -> list[Branch]:
        """How to read the jobs matching ``flt`` newest first without sorting them all.

        A filter on states reads one branch per status through the (status, id) index.
        A filter on queue names has no index that matches ``ORDER BY id``: per status, a
        sparse (queue, status) set is read through the (status, queue_name) index and
        sorted; a dense one by walking (status, id) newest first with the queue hidden
        from the planner (``queue_name || ''``), which fills a page after about
        limit / density rows. The capped counts of the queue pane decide."""
        states = flt.effective_states()
        if flt.queues and not any(glob_to_like(q) for q in flt.queues):
            rows = {q.name: q for q in self._queues(now)}
            if not (flt.states or flt.not_states):
                matching = sum(rows[q].count(s) for q in flt.queues if q in rows for s in states)
                everywhere = sum(q.count(s) for q in rows.values() for s in states)
                if WINDOW_ROWS * everywhere / max(1, matching) < DENSE_WALK_ROWS:
                    return [Branch(None, walk_ids=True)]  # dense: one walk of the id index
            branches = []
            for state in states:
                matching = sum(rows[q].count(state) for q in flt.queues if q in rows)
                # a walk of (status, id) reads that status's rows; pending ones are not in
                # it, so theirs walks the id index, past the rows of every status
                everywhere = sum(q.count(s) for q in rows.values()
                                 for s in (ALL_STATUSES if state == "pending" else (state,)))  # fmt: skip
                sort = _sort_beats_walk(matching, everywhere)
                branches += _status_branches(state, walk_ids=not sort, sort=sort)
            return branches
        if flt.states or flt.not_states:
            branches = []
            for state in states:
                if state != "pending":
                    branches.append(Branch(Job.status == state))  # a walk of (status, id)
                    continue
                # pending jobs: a walk of the id index when they are dense, else each
                # claim index's, sorted (capped counts decide, as for queues above)
                rows = self._queues(now)
                pending = sum(q.count(state) for q in rows)
                everywhere = sum(q.count(s) for q in rows for s in ALL_STATUSES)
                capped = any(q.count(state) >= COUNT_CAP for q in rows)
                sort = _sort_beats_walk(pending, everywhere, capped=capped)
                branches += _status_branches(state, sort=sort)
            return branches
        return [Branch(None)]

    def _scan(self, query: JobsQuery, now: datetime, *, columns: Sequence[peewee.Field],
              bound: peewee.Node | None, ascending: bool, limit: int) -> list[tuple]:  # fmt: skip
        """Rows in id order (ascending or not) from every branch, merged, at most ``limit``."""
        results = []
        for branch, part in ((b, p) for b in self._plan(query.filter, now)
                             for p in _task_parts(query.filter)):  # fmt: skip
            conditions = filter_conditions(query.filter, now, walk_ids=branch.walk_ids)
            if part is not None:
                conditions.append(part)
            if query.ids is not None:  # a failure group's jobs, filtered further
                conditions.append(Job.id.in_(list(query.ids)))
            if bound is not None:
                conditions.append(bound)
            if branch.status is not None:
                conditions.append(branch.status)
            key = Job.id.concat("") if branch.sort else Job.id
            select = Job.select(*columns)
            if conditions:
                select = select.where(*conditions)
            select = select.order_by(key.asc() if ascending else key.desc()).limit(limit)
            results.append(list(select.tuples().execute(self.db)))
        if len(results) == 1:
            return results[0][:limit]
        merged = heapq.merge(*results, key=lambda row: row[0], reverse=not ascending)
        return [row for _, row in zip(range(limit), merged, strict=False)]

    def _page(self, query: JobsQuery, now: datetime) -> JobsPage:
        ascending = query.oldest_first
        bound = None
        if query.top is not None:
            bound = Job.id >= query.top if ascending else Job.id <= query.top
        if len(self._plan(query.filter, now)) == 1:
            rows = self._scan(query, now, columns=JOB_COLUMNS, bound=bound,
                              ascending=ascending, limit=query.limit + 1)  # fmt: skip
        else:  # merge ids first, then read only the rows shown (not limit rows per branch)
            ids = [r[0] for r in self._scan(query, now, columns=(Job.id,), bound=bound,
                                            ascending=ascending, limit=query.limit + 1)]  # fmt: skip
            found = {r[0]: r for r in Job.select(*JOB_COLUMNS).where(Job.id.in_(ids))
                     .tuples().execute(self.db)}  # fmt: skip
            rows = [found[i] for i in ids if i in found]
        more_above = False
        if query.top is not None:
            beyond = Job.id < query.top if ascending else Job.id > query.top
            more_above = bool(self._scan(query, now, columns=(Job.id,), bound=beyond,
                                         ascending=not ascending, limit=1))  # fmt: skip
        shown = with_held(self.db, [job_row(r) for r in rows[: query.limit]], now)
        return JobsPage(rows=shown,
                        more_below=len(rows) > query.limit, more_above=more_above)  # fmt: skip

    def _matching(self, query: JobsQuery, now: datetime, page: JobsPage) -> int | None:
        """Jobs matching the filter, consistent with the page read at the same moment.

        A page that holds every match (no more rows either way) is the count itself: the
        cached count was read up to ``stats_ttl_s`` earlier and said "0 matching" beside
        three running rows. A cached count below the rows shown is stale too: recounted."""
        if query.filter.is_empty and query.ids is None:
            return None
        if not page.more_below and (query.top is None or not page.more_above):
            return len(page.rows)
        key = f"count:{query.filter.describe()}:{hash(query.ids)}"

        def count() -> int:
            return len(self._scan(query, now, columns=(Job.id,), bound=None, ascending=False,
                                  limit=COUNT_CAP))  # fmt: skip

        found = self._cached(key, count)
        if found < len(page.rows) + int(page.more_below):
            found = count()
            self._cache[key] = (self.clock.monotonic(), found)
        return found

    def _worker_rows(self, now: datetime) -> list[WorkerRow]:
        sups = list(Supervisor.select().execute(self.db))
        workers = list(Worker.select().execute(self.db))
        current = self._current_jobs(workers)

        def age(moment: datetime | None) -> float | None:
            return None if moment is None else max(0.0, (now - moment).total_seconds())

        limits = {s.name: stale_after_s(s.heartbeat_interval_s) for s in sups}
        rows = []
        for s in sups:
            rows.append(WorkerRow(
                kind="supervisor", name=s.name, supervisor=None, host=s.host, pid=s.pid,
                state=s.state, queue=describe_queues(s.queues, s.autoscale) or None,
                current_job_id=None, current_task=None, progress=None,
                cpu_percent=float(s.cpu_percent or 0), rss_bytes=int(s.rss_bytes or 0),
                uptime_s=age(s.started_at), heartbeat_age_s=age(s.heartbeat_at),
                jobs_done=int(s.jobs_done or 0), jobs_failed=int(s.jobs_failed or 0),
                stale_after_s=limits[s.name]))  # fmt: skip
        for w in workers:
            job_id, task, progress = current.get(w.name, (None, None, None))
            state = w.state
            if state in ("busy", "idle"):  # the jobs table is newer than the heartbeat
                state = "busy" if job_id else "idle"
            rows.append(WorkerRow(
                kind="worker", name=w.name, supervisor=w.supervisor_name, host=w.host, pid=w.pid,
                state=state, queue=w.queue_name, current_job_id=job_id,
                current_task=task, progress=None if progress is None else float(progress),
                cpu_percent=float(w.cpu_percent or 0), rss_bytes=int(w.rss_bytes or 0),
                uptime_s=age(w.started_at), heartbeat_age_s=age(w.heartbeat_at),
                jobs_done=int(w.jobs_done or 0), jobs_failed=int(w.jobs_failed or 0),
                stale_after_s=limits.get(w.supervisor_name, STALE_AFTER_S)))  # fmt: skip
        # stale first, then each supervisor followed by its workers
        rows.sort(key=lambda r: (not r.stale, r.supervisor or r.name, r.kind != "supervisor",
                                 r.name))  # fmt: skip
        return rows

    def _current_jobs(self, workers: list[Worker]) -> dict[str, tuple[str, str, Any]]:
        """Each worker's job as the jobs table has it now: {worker: (id, task, progress)}.

        A worker row is written once per heartbeat, so between two beats it still names a
        job that has completed (it said ``busy`` beside a completed job) and misses one
        started since. The running jobs (few, on the status index) are the truth: the
        heartbeat's job while it still runs there, else the newest job the worker began."""
        names = {w.name for w in workers}
        where = Job.worker_name.in_(list(names)) & Job.started_at.is_null(False)
        beat_ids = [w.current_job_id for w in workers if w.current_job_id]
        if beat_ids:
            where |= Job.id.in_(beat_ids)
        columns = (Job.id, Job.job_type, Job.progress_percentage, Job.worker_name, Job.started_at)
        rows = list(Job.select(*columns).where(Job.status == "running", where)
                    .order_by(Job.started_at).tuples().execute(self.db)) if names else []  # fmt: skip
        by_id = {row[0]: row for row in rows}
        newest = {row[3]: row for row in rows if row[4] is not None}  # ordered: last wins
        out = {}
        for w in workers:
            row = by_id.get(w.current_job_id or "")
            if row is None or row[3] not in (None, w.name):  # ended, or retried elsewhere
                row = newest.get(w.name)
            if row is not None:
                out[w.name] = row[:3]
        return out

    def jobs_view(self, query: JobsQuery, *, with_panes: bool = True) -> JobsView:
        def read() -> JobsView:
            now = self.clock.now()
            page = self._page(query, now)
            queues = strip = None
            workers: tuple[WorkerRow, ...] = ()
            if with_panes:
                queue_rows = self._queues(now)
                queues = tuple(queue_rows)
                strip = stats.build_strip(self._hour(now), queue_rows)
                workers = tuple(self._worker_rows(now))
            return JobsView(now=now, page=page, queues=queues, strip=strip, workers=workers,
                            matching=self._matching(query, now, page))  # fmt: skip

        return self._read(read)

    def rows_before(self, query: JobsQuery, count: int) -> list[str]:
        """Ids of up to ``count`` rows just above ``query.top`` in display order, nearest
        first (empty when following the head)."""
        if query.top is None:
            return []

        def read() -> list[str]:
            ascending = not query.oldest_first
            bound = Job.id > query.top if ascending else Job.id < query.top
            rows = self._scan(query, self.clock.now(), columns=(Job.id,), bound=bound,
                              ascending=ascending, limit=count)  # fmt: skip
            return [r[0] for r in rows]

        return self._read(read)

    def last_page_top(self, query: JobsQuery) -> str | None:
        """The ``top`` that shows the last ``query.limit`` rows (the oldest, newest first)."""

        def read() -> str | None:
            rows = self._scan(query, self.clock.now(), columns=(Job.id,), bound=None,
                              ascending=not query.oldest_first, limit=query.limit)  # fmt: skip
            return rows[-1][0] if rows else None

        return self._read(read)

    def matching_jobs(self, query: JobsQuery, limit: int) -> list[tuple[str, str]]:
        """(id, status) of up to ``limit`` jobs matching the query, newest first."""
        return self._read(lambda: [tuple(r) for r in self._scan(
            query, self.clock.now(), columns=(Job.id, Job.status), bound=None, ascending=False,
            limit=limit)])  # fmt: skip

    def statuses(self, ids: Sequence[str]) -> dict[str, str]:
        """The current status of each job that still exists."""

        def read() -> dict[str, str]:
            out: dict[str, str] = {}
            for start in range(0, len(ids), 500):
                part = list(ids[start : start + 500])
                out.update(Job.select(Job.id, Job.status).where(Job.id.in_(part)).tuples()
                           .execute(self.db))  # fmt: skip
            return out

        return self._read(read)

    # ------------------------------------------------------------------ other views

    def queues_view(self) -> QueuesView:
        def read() -> QueuesView:
            now = self.clock.now()
            return QueuesView(now=now, queues=tuple(self._queues(now)))

        return self._read(read)

    def workers_view(self) -> WorkersView:
        return self._read(
            lambda: WorkersView(
                now=self.clock.now(), rows=tuple(self._worker_rows(self.clock.now()))
            )
        )

    def failures_view(self) -> FailuresView:
        def read() -> FailuresView:
            groups, sampled, capped = self._cached(
                "failures", lambda: stats.failure_groups(self.db)
            )
            return FailuresView(now=self.clock.now(), groups=tuple(groups), sampled=sampled,
                                capped=capped)  # fmt: skip

        return self._read(read)

    def scheduled_view(self) -> ScheduledView:
        def read() -> ScheduledView:
            now = self.clock.now()
            queues = [q.name for q in self._queues(now)]
            delayed = self._cached("delayed", lambda: stats.delayed_rows(self.db, now, queues))
            return ScheduledView(
                now=now,
                schedules=tuple(stats.schedule_rows(self.db, now)),
                delayed=tuple(d for d in delayed if d.run_at is None or d.run_at > now),
            )

        return self._read(read)

    def metrics_view(self) -> MetricsView:
        def read() -> MetricsView:
            now = self.clock.now()
            windows = tuple(
                self._cached(f"metrics:{window.label}",
                             lambda w=window: stats.metrics_window(read_window(self.db, now, w)),
                             self.stats_ttl_s * METRICS_TTL_FACTOR[window.label])
                for window in WINDOWS
            )  # fmt: skip
            return MetricsView(now=now, windows=windows)

        return self._read(read)

    def task_names(self) -> list[str]:
        return self._read(lambda: stats.task_names(self.db))

    def audit_view(self) -> AuditView:
        def read() -> AuditView:
            return AuditView(now=self.clock.now(), rows=stats.audit_rows(self.db))

        return self._read(read)

    # ------------------------------------------------------------------ detail screens

    def job_detail(self, job_id: str) -> DetailView:
        def read() -> DetailView:
            now = self.clock.now()
            job = Job.select().where(Job.id == job_id).first(self.db)
            if job is None:
                return DetailView(now=now, job=None)
            attempts = [AttemptRow(attempt=a.attempt, started_at=a.started_at,
                                   ended_at=a.ended_at, worker=a.worker_name, host=a.host,
                                   pid=a.pid, outcome=a.outcome, error_type=a.error_type,
                                   error=a.error_message, traceback=a.error_traceback,
                                   parameters=a.parameters)
                        for a in JobAttempt.select().where(JobAttempt.job == job_id)
                        .order_by(JobAttempt.attempt).execute(self.db)]  # fmt: skip
            depends = tuple(d.depends_on_id for d in JobDependency.select(
                JobDependency.depends_on_id).where(JobDependency.job_id == job_id)
                .execute(self.db))  # fmt: skip
            dependants = tuple(d.job_id for d in JobDependency.select(JobDependency.job)
                               .where(JobDependency.depends_on == job_id)
                               .limit(DETAIL_DEPENDANTS).execute(self.db))  # fmt: skip
            reference = None
            if job.reference_type or job.reference_id:
                reference = f"{job.reference_type or ''}:{job.reference_id or ''}"
            row = with_held(self.db, [job_row([getattr(job, f.name) for f in JOB_COLUMNS])], now)[0]
            return DetailView(now=now, job=JobDetail(
                row=row, title=job.title, description=job.description,
                parameters=job.parameters, result=job.result, traceback=job.error_traceback,
                completed_at=job.completed_at, failed_at=job.failed_at,
                scheduled_for=job.scheduled_for, next_retry_at=job.next_retry_at,
                updated_at=job.updated_at, timeout=job.timeout, user_id=job.user_id,
                reference=reference, tags=tuple(job.tags or ()), metadata=job.metadata,
                batch_id=job.batch_id, schedule_name=job.schedule_name,
                unique_key=job.unique_key, depends_on=depends, supervisor=job.supervisor_name,
                attempts=tuple(attempts), dependants=dependants,
                batch_progress=self._batch_progress(job.batch_id),
                deadline=job.deadline, cancel_reason=job.cancel_reason,
                kill_requested=bool(job.kill_requested),
                progress_details=job.progress_details, rate_key=job.rate_key,
                concurrency_key=job.concurrency_key, fair_key=job.fair_key,
                base_priority=job.base_priority))  # fmt: skip

        return self._read(read)

    def job_log(self, job_id: str, after: tuple[int, int]) -> LogPage:
        """The job's log lines after ``after`` (the Logs tab tails it with the cursor)."""
        return self._read(lambda: read_log(job_id, after=after, limit=LOG_PAGE_CHUNKS, db=self.db))

    def job_stack(self, job_id: str) -> dict[str, Any]:
        """The running job's live stack, asked of its supervisor (waits up to 10 s);
        ``{"error": ...}`` when it cannot be had."""

        def read() -> dict[str, Any]:
            try:
                return take_stack(job_id, db=self.db)
            except StackUnavailable as exc:
                return {"error": str(exc)}

        return self._read(read)

    def _batch_progress(self, batch_id: str | None) -> str | None:
        """How far a job's batch has got, as ``jobtui status`` counts it."""
        if batch_id is None:
            return None
        from jobtui.batching import batch_status
        from jobtui.models.errors import JobNotFound

        try:
            status = batch_status(batch_id, database=self.db)
        except JobNotFound:
            return None
        text = f"{status['done']}/{status['total']} ended"
        return f"{text}, {status['outcome']}" if status["outcome"] else text

    def worker_detail(self, name: str) -> WorkerDetailView:
        def read() -> WorkerDetailView:
            now = self.clock.now()
            rows = self._worker_rows(now)
            found = next((r for r in rows if r.name == name), None)
            if found is None:
                return WorkerDetailView(now=now, worker=None)
            job = None
            if found.current_job_id:
                values = Job.select(*JOB_COLUMNS).where(Job.id == found.current_job_id).tuples()
                first = values.execute(self.db)
                job = next((job_row(v) for v in first), None)
            children = tuple(r for r in rows if r.supervisor == found.name)
            return WorkerDetailView(now=now, worker=found, job=job, workers=children)

        return self._read(read)
