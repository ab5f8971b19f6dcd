"""Aggregates for the console: queue counts, the 60-minute strip, metrics, failure groups,
schedules. Plain functions over a database; no Textual.

Every query here is bounded whatever the size of the job table: queue names come from a
loose index scan, each (queue, status) count stops at ``COUNT_CAP``, throughput and
latency figures (the last hour, 24 hours, 7 days) are exact sums of the rollup table
(models/rollup.py), and failures are grouped from the newest ``FAILURE_SAMPLE`` failed
jobs. The data source runs them every few seconds, not on every tick.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import peewee

from jobtui.models.aging import queue_aging
from jobtui.models.alert import OLDEST_DUE_SQL, OLDEST_FAIR_HEAD_SQL, firing_alerts
from jobtui.models.base import as_datetime
from jobtui.models.clock import sql_timestamp
from jobtui.models.fairness import fair_key_counts
from jobtui.models.heartbeats import stale_after_s, workers_serving
from jobtui.models.held import FlowView
from jobtui.models.job import INDEXED_STATUSES, Job
from jobtui.models.queue import Queue
from jobtui.models.ready_reads import READY_PARTS, distinct_names_sql, queue_names
from jobtui.models.rollup_read import Figures, WindowFigures
from jobtui.models.schedule import Schedule
from jobtui.models.staging import TASK_PARTS
from jobtui.models.worker import Supervisor

from .snapshot import (
    COUNT_CAP,
    AuditRow,
    DelayedRow,
    FailureGroup,
    MetricRow,
    MetricsWindow,
    QueueRow,
    ScheduleRow,
    Strip,
)

STATUSES = ("pending", "waiting", "running", "retrying", "completed", "failed", "cancelled")
FAILURE_SAMPLE = 5_000
DELAYED_PER_QUEUE = 50

# Distinct task names by a loose index scan of (job_type, id): the task index's and the
# staged jobs' (models/staging.py: each part has its index).
_TASK_NAMES = distinct_names_sql(TASK_PARTS, "job_type")
# The oldest due claimable job of a queue: one seek into the claim index per priority level
# (priority precedes run_at in it, so a plain MIN(run_at) would read the whole backlog).
_OLDEST_DUE = OLDEST_DUE_SQL  # one queue's oldest due job (models/alert.py)
_OLDEST_FAIR_HEAD = OLDEST_FAIR_HEAD_SQL  # and its fair keys' (models/alert.py)


def distinct_names(db: peewee.Database, sql: str) -> list[str]:
    return [row[0] for row in db.execute_sql(sql).fetchall()]


def task_names(db: peewee.Database) -> list[str]:
    """Task names: those in the task catalog (published by every supervisor, running or
    not), those in the job table and those live supervisors registered."""
    from jobtui.models.catalog import catalog_task_names

    names = set(distinct_names(db, _TASK_NAMES)) | set(catalog_task_names(db))
    for (tasks,) in Supervisor.select(Supervisor.tasks).tuples().execute(db):
        if isinstance(tasks, dict):
            names.update(tasks)
        elif isinstance(tasks, list):
            names.update(t for t in tasks if isinstance(t, str))
    return sorted(names)


#: What the capped counts read, per status: the (status, queue_name) index, and for the
#: pending jobs each claim index (they are not in the status index: ready_reads.py).
_COUNTED = [(status, f"status = '{status}'") for status in INDEXED_STATUSES]
_COUNTED += [("pending", f"{half} AND status = 'pending'") for half in READY_PARTS]


def _count_sql(db: peewee.Database) -> str:
    p = db.param
    parts = [f"(SELECT COUNT(*) FROM (SELECT 1 FROM jobs WHERE {where} AND "
             f"queue_name = {p} LIMIT {COUNT_CAP}) AS c{n})" for n, (_, where) in enumerate(_COUNTED)]  # fmt: skip
    return "SELECT " + ", ".join(parts)


def _capped_counts(values: Sequence[int]) -> tuple[tuple[str, int], ...]:
    """The counts by status (in STATUSES order) from the values of ``_count_sql``, each at
    most COUNT_CAP (a status read from two indexes is their sum, capped again)."""
    counts = dict.fromkeys(STATUSES, 0)
    for (status, _), value in zip(_COUNTED, values, strict=True):
        counts[status] = min(COUNT_CAP, counts[status] + int(value))
    return tuple(counts.items())


def stale_limits(db: peewee.Database) -> dict[str, float]:
    """Each supervisor's stale limit (3 of its heartbeat intervals), by name."""
    rows = Supervisor.select(Supervisor.name, Supervisor.heartbeat_interval_s).tuples()
    return {name: stale_after_s(interval) for name, interval in rows.execute(db)}


def queue_rows(db: peewee.Database, now: datetime, hour: WindowFigures) -> list[QueueRow]:
    """Per queue: capped counts by status, latency, paused, concurrency, and the last
    hour's ends (exact, from ``hour``: the rollup's last hour)."""
    controls = {name: (bool(paused), cap) for name, paused, cap in
                Queue.select(Queue.name, Queue.paused, Queue.concurrency).tuples().execute(db)}  # fmt: skip
    names = sorted(set(queue_names(db)) | set(controls))
    serving = workers_serving(db, now)
    ended = {q.queue: (q.completed, q.failed) for q in hour.queues}
    alerts = firing_alerts(db)
    names = sorted(set(names) | set(alerts))
    sql, oldest_sql, rows = _count_sql(db), _OLDEST_DUE.format(p=db.param), []
    fair_sql = _OLDEST_FAIR_HEAD.format(p=db.param)
    fair_queues = fair_key_counts(db)
    aging = queue_aging(db)
    stamp = sql_timestamp(now)
    rates = FlowView(db).rates_of("queue")
    for name in names:
        values = db.execute_sql(sql, [name] * len(_COUNTED)).fetchone()
        (oldest,) = db.execute_sql(
            oldest_sql, [name, name, name, stamp, stamp, name, stamp, stamp]
        ).fetchone()
        oldest = as_datetime(oldest)
        if name in fair_queues:
            (head,) = db.execute_sql(fair_sql, [stamp, stamp, name]).fetchone()
            head = as_datetime(head)
            oldest = head if oldest is None or (head is not None and head < oldest) else oldest
        paused, cap = controls.get(name, (False, None))
        workers = serving.get(name, 0) + serving.get("*", 0)
        concurrency = min(cap, workers) if cap is not None and workers else (cap or workers)
        rows.append(QueueRow(
            name=name, counts=_capped_counts(values),
            latency_s=None if oldest is None else max(0.0, (now - oldest).total_seconds()),
            paused=paused, concurrency=concurrency or None,
            done_last_hour=ended.get(name, (0, 0))[0],
            failed_last_hour=ended.get(name, (0, 0))[1], limit=cap, rate=rates.get(name),
            alerts=tuple((kind, float(state["value"] or 0), float(state["threshold"] or 0))
                         for kind, state in sorted(alerts.get(name, {}).items())),
            fair_keys=fair_queues.get(name, 0), priority_aging_s=aging.get(name),
        ))  # fmt: skip
    return rows


def id_floor(moment: datetime) -> str:
    """The smallest UUIDv7 string of ``moment``'s millisecond: ids compare as creation times."""
    ms = int((moment - datetime(1970, 1, 1)).total_seconds() * 1000)
    return str(uuid.UUID(int=(max(0, ms) & ((1 << 48) - 1)) << 80))


def build_strip(hour: WindowFigures, queues: Iterable[QueueRow]) -> Strip:
    """The Jobs view's 60-minute strip from the rollup's last hour (exact)."""
    total = hour.total
    latencies = [q.latency_s for q in queues if q.latency_s is not None]
    return Strip(done_per_min=total.done_series or (0,) * 60,
                 failed_per_min=total.failed_series or (0,) * 60,
                 wait_p95_s=total.wait_p(0.95),
                 oldest_pending_s=max(latencies) if latencies else None)  # fmt: skip


def metric_row(figures: Figures) -> MetricRow:
    return MetricRow(queue=figures.queue, task=figures.task, done=figures.completed,
                     failed=figures.failed, wait_p50_s=figures.wait_p(0.5),
                     wait_p95_s=figures.wait_p(0.95), run_p50_s=figures.run_p(0.5),
                     run_p95_s=figures.run_p(0.95), retried=figures.retried,
                     cancelled=figures.cancelled, per_min=figures.per_min,
                     done_series=figures.done_series,
                     failed_series=figures.failed_series)  # fmt: skip


def metrics_window(figures: WindowFigures) -> MetricsWindow:
    """Per queue (task "") then its tasks, for one window."""
    rows: list[MetricRow] = []
    for queue in figures.queues:
        rows.append(metric_row(queue))
        rows += [metric_row(r) for r in figures.rows if r.queue == queue.queue]
    window = figures.window
    return MetricsWindow(label=window.label, window_s=float(window.seconds),
                         slot_s=float(window.slot_s), rows=tuple(rows),
                         total=metric_row(figures.total))  # fmt: skip


_FINGERPRINT_RULES = (
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I), "<id>"),
    (re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+"), "<email>"),
    (re.compile(r"0x[0-9a-f]+|\b[0-9a-f]{12,}\b", re.I), "<hex>"),
    (re.compile(r"'[^']*'|\"[^\"]*\""), "'…'"),
    (re.compile(r"\d+(\.\d+)?"), "<n>"),
)


def fingerprint(message: str | None) -> str:
    """The message's first line with ids, e-mails, hex, quoted values and numbers blanked,
    so failures that differ only in those group together."""
    text = (message or "").strip().splitlines()[0] if (message or "").strip() else ""
    for pattern, replacement in _FINGERPRINT_RULES:
        text = pattern.sub(replacement, text)
    return text[:200]


def failure_groups(db: peewee.Database) -> tuple[list[FailureGroup], int, bool]:
    """Failed jobs grouped by error type and message fingerprint, most frequent first."""
    query = (Job.select(Job.id, Job.job_type, Job.queue_name, Job.error_type,
                        Job.error_message, Job.failed_at, Job.updated_at)
             .where(Job.status == "failed").order_by(Job.id.desc())
             .limit(FAILURE_SAMPLE + 1).tuples())  # fmt: skip
    rows = list(query.execute(db))
    capped = len(rows) > FAILURE_SAMPLE
    rows = rows[:FAILURE_SAMPLE]
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for job_id, task, queue, error_type, message, failed_at, updated in rows:
        kind = error_type or "Error"
        key = (kind, fingerprint(message))
        seen = failed_at or updated
        group = groups.setdefault(key, {"ids": [], "tasks": {}, "queues": {}, "first": seen,
                                        "last": seen, "sample": (message or "").strip()})  # fmt: skip
        group["ids"].append(job_id)
        group["tasks"][task] = None
        group["queues"][queue] = None
        if seen is not None:
            group["first"] = seen if group["first"] is None else min(group["first"], seen)
            group["last"] = seen if group["last"] is None else max(group["last"], seen)
    out = [
        FailureGroup(
            key=hashlib.sha1(json.dumps(key).encode()).hexdigest()[:12],
            error_type=key[0],
            message=key[1],
            sample=g["sample"].splitlines()[0][:300] if g["sample"] else "",
            count=len(g["ids"]),
            first_seen=g["first"],
            last_seen=g["last"],
            tasks=tuple(g["tasks"]),
            queues=tuple(g["queues"]),
            job_ids=tuple(g["ids"]),
        )  # fmt: skip
        for key, g in groups.items()
    ]
    out.sort(key=lambda g: (-g.count, g.error_type, g.message))
    return out, len(rows), capped


def next_runs(cron: str, timezone: str, after: datetime, count: int = 3) -> tuple[datetime, ...]:
    """The next ``count`` fire times (naive UTC) of a cron expression in ``timezone``."""
    from datetime import UTC
    from zoneinfo import ZoneInfo

    from croniter import croniter

    try:
        zone = ZoneInfo(timezone)
        start = after.replace(tzinfo=UTC).astimezone(zone)
        it = croniter(cron, start)
        return tuple(it.get_next(datetime).astimezone(UTC).replace(tzinfo=None)
                     for _ in range(count))  # fmt: skip
    except Exception:  # noqa: BLE001 - a bad stored expression shows no runs, never crashes
        return ()


def schedule_rows(db: peewee.Database, now: datetime) -> list[ScheduleRow]:
    schedules = list(Schedule.select().order_by(Schedule.name).execute(db))
    last_ids = [s.last_job_id for s in schedules if s.last_job_id]
    outcomes = dict(Job.select(Job.id, Job.status).where(Job.id.in_(last_ids)).tuples()
                    .execute(db)) if last_ids else {}  # fmt: skip
    return [
        ScheduleRow(
            name=s.name,
            cron=s.cron,
            task=s.job_type,
            timezone=s.timezone,
            enabled=bool(s.enabled),
            next_runs=next_runs(s.cron, s.timezone, now) if s.enabled else (),  # paused
            last_fire_at=s.last_fire_at,
            last_job_id=s.last_job_id,
            last_outcome=outcomes.get(s.last_job_id),
        )  # fmt: skip
        for s in schedules
    ]


def delayed_rows(db: peewee.Database, now: datetime, queues: Iterable[str]) -> list[DelayedRow]:
    """Jobs due later (scheduled, or backing off before a retry), soonest first; read per
    queue through the claim indexes (pending jobs: ready_reads.py) and the status index."""
    stamp, rows = sql_timestamp(now), []
    columns = (Job.id, Job.job_type, Job.queue_name, Job.status, Job.run_at, Job.priority,
               Job.retry_count)  # fmt: skip
    retry_columns = (*columns[:4], Job.next_retry_at, *columns[5:])
    for queue in queues:
        pending = []  # each claim index's soonest, merged: 50 per queue, as for retries
        for half in READY_PARTS:
            query = (Job.select(*columns)
                     .where(peewee.SQL(half), Job.status == "pending", Job.queue_name == queue,
                            Job.run_at > stamp)
                     .order_by(Job.run_at).limit(DELAYED_PER_QUEUE).tuples())  # fmt: skip
            pending += [DelayedRow(*row) for row in query.execute(db)]
        pending.sort(key=lambda r: (r.run_at or now, r.id))
        rows += pending[:DELAYED_PER_QUEUE]
        # a retry keeps its place in line (run_at) and waits out its backoff (next_retry_at)
        query = (Job.select(*retry_columns)
                 .where(Job.status == "retrying", Job.queue_name == queue,
                        Job.next_retry_at > stamp)
                 .order_by(Job.next_retry_at).limit(DELAYED_PER_QUEUE).tuples())  # fmt: skip
        rows += [DelayedRow(*row) for row in query.execute(db)]
    rows.sort(key=lambda r: (r.run_at or now, r.id))
    return rows[: DELAYED_PER_QUEUE * 2]


#: The Audit view shows this many of the newest operator actions.
AUDIT_ROWS = 200


def audit_rows(db: peewee.Database) -> tuple[AuditRow, ...]:
    """The newest operator actions (one read down the audit log's time index)."""
    from jobtui.models.audit import list_audit

    return tuple(AuditRow(id=r.id, at=r.at, actor=r.actor, host=r.host, where=r.where,
                          action=r.action, target=r.target, arguments=r.arguments, count=r.count)
                 for r in list_audit(limit=AUDIT_ROWS, db=db))  # fmt: skip
