"""A large, realistic job table for the console benchmark, written fast.

One million rows go in with ``executemany`` in transactions of 50,000 through the sqlite3
module (jobtui's schema and pragmas, none of its Python per row): ids are UUIDv7 made from
each job's creation time, so ``ORDER BY id`` is creation order as in a real database.

The rollup table (models/rollup.py) gets what the supervisor would have written for the
jobs that ended in the last 8 days: minute rows for the last two hours, hour rows before.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import uuid
from datetime import datetime, timedelta

from jobtui.models import store
from jobtui.models.rollup import (
    COUNTS,
    FOLD_AFTER,
    HIST_BUCKETS,
    KEEP_ROLLUP,
    KEY_COLUMNS,
    VALUE_COLUMNS,
    bucket_of,
)

QUEUES = ("default", "emails", "orders", "sync", "reports", "media", "exports", "ingest",
          "maintenance", "billing")  # fmt: skip
TASKS = ("jobtui.demo.send_email", "jobtui.demo.process_order", "jobtui.demo.process_payment",
         "jobtui.demo.sync_inventory", "jobtui.demo.build_report", "jobtui.demo.resize_image",
         "jobtui.demo.export_data", "jobtui.demo.ingest_file", "jobtui.demo.generate_embeddings",
         "jobtui.demo.cleanup")  # fmt: skip
ERRORS = (("ConnectionError", "SMTP server refused the connection for user{n}@example.com"),
          ("TimeoutError", "embedding server timed out"),
          ("RuntimeError", "demo failure"),
          ("KeyError", "'sku-{n}'"))  # fmt: skip
# status weights (per 10,000): mostly history, a live head of pending/running work
STATUSES = (("completed", 9500), ("failed", 200), ("cancelled", 100), ("pending", 150),
            ("running", 20), ("retrying", 30))  # fmt: skip
COLUMNS = ("id", "job_type", "status", "parameters", "progress_percentage", "max_retries",
           "retry_count", "priority", "queue_name", "created_at", "updated_at", "run_at",
           "attempt", "cancel_requested", "error_permanent", "started_at", "completed_at",
           "failed_at", "error_message", "error_type", "worker_name")  # fmt: skip
CHUNK = 50_000


def uuid7_at(moment: datetime, rng: random.Random) -> str:
    ms = int((moment - datetime(1970, 1, 1)).total_seconds() * 1000)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rng.getrandbits(12) << 64
    value |= 0b10 << 62 | rng.getrandbits(62)
    return str(uuid.UUID(int=value))


def _stamp(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(sep=" ", timespec="microseconds")


def _row(n: int, created: datetime, rng: random.Random, status: str) -> tuple:
    queue = QUEUES[n % len(QUEUES)]
    task = TASKS[(n // 3) % len(TASKS)]
    started = completed = failed = None
    error = error_type = worker = None
    progress, attempt, retries = 0.0, 0, 0
    run_at = created
    if status in ("completed", "failed", "running", "cancelled"):
        started = created + timedelta(seconds=rng.uniform(0.01, 5))
        attempt = 1
    if status == "completed":
        completed = started + timedelta(seconds=rng.uniform(0.05, 30))
        progress = 100.0
    elif status == "failed":
        failed = started + timedelta(seconds=rng.uniform(0.05, 30))
        error_type, message = ERRORS[n % len(ERRORS)]
        error, retries, attempt = message.format(n=n % 50), 3, 4
    elif status == "running":
        progress, worker = rng.uniform(0, 99), f"w-{n % 8}"
    elif status == "cancelled":
        completed, error, error_type = started, "cancelled by operator", "Cancelled"
    elif status == "retrying":
        run_at = created + timedelta(seconds=60)
        error_type, error, retries, attempt = "TimeoutError", "embedding server timed out", 1, 1
    updated = completed or failed or started or created
    return (uuid7_at(created, rng), task, status, json.dumps({"args": [n], "kwargs": {}}),
            progress, 3, retries, (n % 5) * 5 - 10, queue, _stamp(created), _stamp(updated),
            _stamp(run_at), attempt, 0, 0, _stamp(started), _stamp(completed), _stamp(failed),
            error, error_type, worker)  # fmt: skip


def _count_end(rollup: dict, row: tuple, now: datetime) -> None:
    """Add a generated job that ended (completed, failed, cancelled) to the rollup."""
    status, ended = row[2], row[16] or row[17]
    if status not in ("completed", "failed", "cancelled") or ended is None:
        return
    ended_at = datetime.fromisoformat(ended)
    if now - ended_at > KEEP_ROLLUP:
        return
    if now - ended_at > FOLD_AFTER:
        bucket, span = ended_at.replace(minute=0, second=0, microsecond=0), 3600
    else:
        bucket, span = ended_at.replace(second=0, microsecond=0), 60
    key = (_stamp(bucket), span, row[8], row[1])
    vector = rollup.get(key)
    if vector is None:
        vector = rollup[key] = [0] * len(VALUE_COLUMNS)
    vector[COUNTS.index(status)] += 1
    if status == "cancelled" or row[15] is None:
        return
    started, due = datetime.fromisoformat(row[15]), datetime.fromisoformat(row[11])
    run, wait = (ended_at - started).total_seconds(), max(0.0, (started - due).total_seconds())
    vector[4] += wait
    vector[5] += run
    vector[6 + bucket_of(wait)] += 1
    vector[6 + HIST_BUCKETS + bucket_of(run)] += 1


def populate(path: str, jobs: int, *, now: datetime, days: float = 30, seed: int = 7) -> None:
    """Write ``jobs`` jobs created over the ``days`` before ``now`` into a new database."""
    if os.path.exists(path):
        os.remove(path)
    store.reset()
    store.use_database(f"sqlite:///{path}")  # jobtui's schema, indexes and settings
    store.reset()
    from jobtui.models.job import Job

    # columns this generator does not set but the schema requires: their model defaults
    extra = {name: field.db_value(field.default) for name, field in Job._meta.fields.items()
             if name not in COLUMNS and not field.null and field.default is not None
             and not callable(field.default)}  # fmt: skip
    insert = "INSERT INTO jobs ({}) VALUES ({})".format(
        ", ".join((*COLUMNS, *extra)), ", ".join("?" for _ in (*COLUMNS, *extra))
    )
    tail = tuple(extra.values())
    rng = random.Random(seed)
    names = [s for s, _ in STATUSES]
    weights = [w for _, w in STATUSES]
    start = now - timedelta(days=days)
    step = timedelta(days=days) / max(1, jobs)
    rollup: dict[tuple, list] = {}
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=wal")
    conn.execute("PRAGMA synchronous=off")
    try:
        for first in range(0, jobs, CHUNK):
            rows = []
            for n in range(first, min(jobs, first + CHUNK)):
                created = start + step * n
                # the last hour holds the live head: new work is pending/running
                status = rng.choices(names, weights)[0]
                if now - created < timedelta(minutes=2) and status == "completed":
                    status = "pending"
                rows.append(_row(n, created, rng, status) + tail)
                _count_end(rollup, rows[-1], now)
            conn.execute("BEGIN")
            conn.executemany(insert, rows)
            conn.execute("COMMIT")
        columns = (*KEY_COLUMNS, *VALUE_COLUMNS)
        conn.execute("BEGIN")
        conn.executemany(f"INSERT INTO job_rollup ({', '.join(columns)}) VALUES "
                         f"({', '.join('?' * len(columns))})",
                         [(*key, *values) for key, values in sorted(rollup.items())])  # fmt: skip
        conn.execute("COMMIT")
    finally:
        conn.close()
