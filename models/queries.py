"""Reads for the CLI, the API and the console: no writes, no transactions held open."""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Sequence
from datetime import datetime

import peewee

from .alert import firing_alerts
from .base import as_datetime
from .clock import iso_utc, sql_timestamp, utcnow
from .errors import JobNotFound
from .heartbeats import workers_serving
from .job import Job
from .queue import Queue
from .ready_reads import READY_PARTS, status_counts
from .rollup_read import queue_hour
from .staging import TASK_PARTS
from .status import ALL_STATUSES
from .store import get_database
from .worker import Supervisor, Worker

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from typing import Any


def get_job(job_id: str, *, db: peewee.Database | None = None) -> Job:
    """The job with this id (a unique prefix of it is accepted too), or JobNotFound."""
    get_database(db)
    job = Job.get_or_none(Job.id == job_id)
    if job is None and 4 <= len(job_id) < 36:
        matches = list(Job.select().where(Job.id.startswith(job_id)).limit(2))
        if len(matches) == 1:
            job = matches[0]
        elif len(matches) > 1:
            raise JobNotFound(f"job id prefix {job_id!r} is ambiguous")
    if job is None:
        raise JobNotFound(f"no job {job_id}")
    return job


def has_tag(tag: str) -> peewee.Node:
    """The job's tags (a JSON list in a text column) hold ``tag``: its JSON text holds the
    tag as a JSON string, quotes included, so ``urgent`` never matches ``not-urgent``."""
    pattern = "%" + re.sub(r"([\\%_])", r"\\\1", json.dumps(tag)) + "%"
    return peewee.NodeList(
        (Job.tags, peewee.SQL("LIKE"), peewee.Value(pattern), peewee.SQL("ESCAPE '\\'"))
    )


def has_reference(
    reference: str, match_id: Callable[[peewee.Field, str], peewee.Node] = operator.eq
) -> peewee.Node:
    """The job is about ``reference``: ``type`` (any id of that type) or ``type:id``, the
    id compared by ``match_id`` (equality; the console passes its glob match)."""
    kind, sep, ident = reference.partition(":")
    condition = Job.reference_type == kind
    if sep and ident:
        condition &= match_id(Job.reference_id, ident)
    return condition


def list_jobs(
    *,
    status: str | Sequence[str] | None = None,
    queue: str | None = None,
    task: str | None = None,
    user_id: str | None = None,
    tag: str | None = None,
    reference: str | None = None,
    batch_id: str | None = None,
    limit: int = 50,
    db: peewee.Database | None = None,
) -> list[Job]:
    """Jobs, newest first (ids are time-ordered), filtered by status, queue, task, user,
    tag, reference (``type`` or ``type:id``) and batch."""
    database = get_database(db)
    query = Job.select()
    if batch_id:
        query = query.where(Job.batch_id == batch_id)
    if user_id:
        query = query.where(Job.user_id == user_id)
    if tag:
        query = query.where(has_tag(tag))
    if reference:
        query = query.where(has_reference(reference))
    if queue:
        query = query.where(Job.queue_name == queue)
    # a task's jobs are in two indexes, each in id order: the task index and, while a
    # SQLite enqueue's job waits for its promotion, jobs_staged (staging.py)
    queries = [query]
    if task:
        queries = [query.where(Job.job_type == task, peewee.SQL(part)) for part in TASK_PARTS]
    if not status:
        reads = [q.order_by(Job.id.desc()).limit(limit) for q in queries]
    else:
        # One read per status, merged: `status = 'failed'` walks the (status, id) index
        # newest first, where a list (`IN`) would not use it (its condition names each
        # status apart).
        statuses = [status] if isinstance(status, str) else list(dict.fromkeys(status))
        # a task, user, batch or reference has an index of its own in id order: walked,
        # it meets pending jobs as soon as any read of the claim indexes would
        by_other_index = bool(task or user_id or batch_id or reference)
        reads = [read for q in queries for s in statuses
                 for read in status_reads(q, s, limit, database, sort=not by_other_index)]  # fmt: skip
    if len(reads) == 1:
        return list(reads[0])
    found = [job for read in reads for job in read]
    found.sort(key=lambda job: job.id, reverse=True)
    return found[:limit]


#: Up to this many matching pending jobs, a newest-first read sorts them (read from the
#: claim indexes); beyond it, a walk of the id index meets them soon enough.
FEW_PENDING = 10_000


def status_reads(
    query: peewee.ModelSelect, status: str, limit: int, db: peewee.Database, *, sort: bool = True
) -> list[peewee.ModelSelect]:
    """``query``'s jobs in ``status``, newest first, as the reads that find them through an
    index. Pending jobs are not in the status index (ready_reads.py): when few match (and
    ``sort``: no other index walks them in id order), each claim index's are read and
    sorted (the id order hidden from the planner, so it does not walk the whole id index
    past every ended job); when many do, the id index is walked newest first, a walk that
    meets them soon."""
    walk = query.where(Job.status == status).order_by(Job.id.desc()).limit(limit)
    if status != "pending" or not sort:
        return [walk]
    halves = [query.where(peewee.SQL(half), Job.status == status) for half in READY_PARTS]
    matching = sum(half.limit(FEW_PENDING).count(db) for half in halves)
    if matching >= FEW_PENDING:
        return [walk]
    return [half.order_by(Job.id.concat("").desc()).limit(limit) for half in halves]


# The oldest due job per queue, of one half of the ready jobs (ready_reads.READY_PARTS).
_OLDEST_DUE = """SELECT queue_name, MIN(run_at) FROM jobs WHERE {half} AND run_at <= {p}
AND (next_retry_at IS NULL OR next_retry_at <= {p}) GROUP BY queue_name"""


def queue_stats(*, db: peewee.Database | None = None, now: datetime | None = None) -> dict:
    """Per queue: counts by status, latency (age of the oldest due pending job, seconds),
    whether it is paused, its concurrency limit across every supervisor (None: none), its
    rate (``"10/s"``; None: none), the
    workers of live supervisors that serve it, and the last hour's exact figures from the
    rollup (rollup.py): jobs completed and failed, ended per minute, average and p95 run
    time and p95 wait of the runs that ended (seconds; None without runs), and the alerts
    it is in (alert.py: kind -> since, value, threshold, episode; empty when none); the fair
    keys whose jobs share it round-robin (``fair_keys``: how many have claimable jobs) and its
    own priority aging period (``priority_aging_s``: None follows the supervisors'
    ``--priority-aging``, 0 is off)."""
    get_database(db)
    now = now or utcnow()
    stats: dict[str, dict[str, Any]] = {}

    def entry(name: str) -> dict[str, Any]:
        return stats.setdefault(name, {
            "counts": dict.fromkeys(ALL_STATUSES, 0), "latency_s": 0.0,
            "avg_run_s": None, "paused": False, "limit": None, "workers": 0,
            "completed_1h": 0, "failed_1h": 0, "per_min_1h": 0.0, "run_p95_s": None,
            "wait_p95_s": None, "alerts": {}, "rate": None,
            "fair_keys": 0, "priority_aging_s": None,
        })  # fmt: skip

    database = get_database(db)
    for queue, status, count in status_counts(database):
        entry(queue)["counts"][status] = count
    stamp = sql_timestamp(now)
    for half in READY_PARTS:  # each claim index's due jobs (ready_reads.py)
        oldest = database.execute_sql(_OLDEST_DUE.format(half=half, p=database.param),
                                      [stamp, stamp]).fetchall()  # fmt: skip
        for queue, first_due in oldest:
            first_due = as_datetime(first_due)
            if first_due is not None:
                wait = max(0.0, (now - first_due).total_seconds())
                entry(queue)["latency_s"] = max(entry(queue)["latency_s"], wait)
    for queue, hour in queue_hour(get_database(db), now).items():
        figures = entry(queue)
        figures.update(completed_1h=hour.completed, failed_1h=hour.failed,
                       per_min_1h=round(hour.per_min, 3), avg_run_s=hour.avg_run_s,
                       run_p95_s=hour.run_p(0.95), wait_p95_s=hour.wait_p(0.95))  # fmt: skip
    for row in Queue.select():
        entry(row.name)["paused"] = bool(row.paused)
        entry(row.name)["limit"] = row.concurrency
        entry(row.name)["priority_aging_s"] = row.priority_aging_s
    for name, kinds in firing_alerts(get_database(db)).items():
        entry(name)["alerts"] = {kind: {**state, "since": iso_utc(state["since"])}
                                 for kind, state in kinds.items()}  # fmt: skip
    from .held import FlowView

    for name, rate in FlowView(get_database(db)).rates_of("queue").items():
        if name in stats:  # a rate alone names no queue (status lists the rates apart)
            stats[name]["rate"] = rate
    # fairness: the fair keys with claimable jobs, per queue (fairness.py)
    from .fairness import fair_key_counts

    for queue, keys in fair_key_counts(get_database(db)).items():
        entry(queue)["fair_keys"] = keys
    serving = workers_serving(get_database(db), now)
    for name, queue in stats.items():
        queue["workers"] = serving.get(name, 0) + serving.get("*", 0)
    return dict(sorted(stats.items()))


def list_supervisors(*, db: peewee.Database | None = None) -> list[dict[str, Any]]:
    """Supervisors and their workers as plain dicts (for ``status`` and ``workers``)."""
    get_database(db)
    out = []
    workers_by_sup: dict[str, list[dict[str, Any]]] = {}
    for worker in Worker.select().order_by(Worker.name):
        workers_by_sup.setdefault(worker.supervisor_name, []).append(row_dict(worker))
    for sup in Supervisor.select().order_by(Supervisor.name):
        data = row_dict(sup)
        data["workers"] = workers_by_sup.get(sup.name, [])
        out.append(data)
    return out


def row_dict(row: peewee.Model) -> dict[str, Any]:
    """A model row as JSON-ready data (ISO 8601 UTC times)."""
    out = {}
    for field in row._meta.sorted_fields:
        value = row.__data__.get(field.name)
        out[field.name] = iso_utc(value) if isinstance(value, datetime) else value
    return out
