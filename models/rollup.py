"""Exact throughput and latency figures at any table size: per-minute counts and
wait/run-time histograms by queue and task, kept as the jobs end.

Counting ended jobs in the job table costs a scan of the period (a million rows for a
busy week), so the console used to sample the newest 20,000 and got whole queues wrong.
Instead, every transaction that ends jobs adds them to ``job_rollup`` in the same
transaction: the supervisor's group commit aggregates a turn's outcomes in memory
(``Tally``) and upserts one row per (minute, queue, task) it touched, in one statement.
Reads then sum at most a few thousand rows whatever the job table holds.

Minute rows older than ``FOLD_AFTER`` are folded into hour rows (``span_s`` 3600) and
rows older than ``KEEP_ROLLUP`` are pruned, both by the supervisor's upkeep
(``fold_rollup``, ``prune_rollup``), so the table stays small: the last hour reads
minute rows, 24 hours and 7 days mostly hour rows.

What counts, and where it is counted (every place a job ends):

- ``completed``, ``failed`` (final), ``retried`` (a failed run that will be retried),
  ``cancelled`` (a running job stopped, or a job cancelled before it ran: by an operator,
  as expired, or because a dependency failed) — each once, in the transaction that
  ended it.
- A run's wait (start − due) and run time (end − start) go into the histograms for every
  run that ended: completed, failed, retried, cancelled while running. A job put back by a
  shutdown (``interrupted``) is not an end and is not counted.

Histograms have ``HIST_BUCKETS`` log-scale buckets, √2 apart: bucket 0 holds values up to
1 ms, bucket i values in (2^((i-1)/2), 2^(i/2)] ms, the last one everything longer (about
18.6 h). Percentiles interpolate inside a bucket (``histogram_percentile``): within 41 %
by construction, about ±10 % in practice, and exact when every run fell in one bucket
(the mean is used then).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from itertools import compress
from operator import itemgetter

import peewee

from .base import BaseModel, as_datetime
from .clock import sql_timestamp
from .dialect import dialect_for
from .wakeup import ENDED_CHANNEL

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from typing import Any

HIST_BUCKETS = 54
#: Upper bound (seconds) of each bucket but the last: 1 ms · 2^(i/2).
BUCKET_BOUNDS_S = tuple(0.001 * 2 ** (i / 2) for i in range(HIST_BUCKETS - 1))
COUNTS = ("completed", "failed", "retried", "cancelled")
WAIT_COLUMNS = tuple(f"w{i}" for i in range(HIST_BUCKETS))
RUN_COLUMNS = tuple(f"r{i}" for i in range(HIST_BUCKETS))
#: The value columns of a row, in the order a Tally keeps them.
VALUE_COLUMNS = (*COUNTS, "wait_sum_s", "run_sum_s", *WAIT_COLUMNS, *RUN_COLUMNS)
KEY_COLUMNS = ("bucket_start", "span_s", "queue_name", "job_type")
_WIDTH = len(VALUE_COLUMNS)
_W0 = len(COUNTS) + 2  # index of w0 in a value vector
_R0 = _W0 + HIST_BUCKETS

MINUTE_S = 60
HOUR_S = 3600
#: Minute rows older than this become hour rows.
FOLD_AFTER = timedelta(hours=2)
#: Rollup rows older than this are pruned (the console shows at most 7 days).
KEEP_ROLLUP = timedelta(days=8)
FOLD_MINUTES_PER_CALL = 180
UPSERT_CHUNK = 200  # rows per statement: 118 parameters each, under SQLite's 32,766


#: Value columns default to 0 in the table: an upsert names only the columns it adds to.
_ZERO = [peewee.SQL("DEFAULT 0")]


class JobRollup(BaseModel):
    """One (minute or hour, queue, task): how many jobs ended how, and how long their
    runs waited and ran (sums and log-scale histograms)."""

    bucket_start = peewee.DateTimeField()  # UTC, truncated to the minute or the hour
    span_s = peewee.IntegerField()  # 60 or 3600
    queue_name = peewee.CharField(max_length=200)
    job_type = peewee.CharField(max_length=255)
    completed = peewee.BigIntegerField(default=0, constraints=_ZERO)
    failed = peewee.BigIntegerField(default=0, constraints=_ZERO)
    retried = peewee.BigIntegerField(default=0, constraints=_ZERO)
    cancelled = peewee.BigIntegerField(default=0, constraints=_ZERO)
    wait_sum_s = peewee.DoubleField(default=0.0, constraints=_ZERO)
    run_sum_s = peewee.DoubleField(default=0.0, constraints=_ZERO)

    class Meta:
        table_name = "job_rollup"
        primary_key = peewee.CompositeKey(*KEY_COLUMNS)


for _name in (*WAIT_COLUMNS, *RUN_COLUMNS):
    JobRollup._meta.add_field(_name, peewee.BigIntegerField(default=0, constraints=_ZERO))


def bucket_of(seconds: float) -> int:
    """The histogram bucket of a duration: 0 up to 1 ms, i for (2^((i-1)/2), 2^(i/2)] ms
    (the first bound not below it; past the last bound, the last bucket)."""
    return bisect_left(BUCKET_BOUNDS_S, seconds)


def histogram_percentile(
    counts: Sequence[int], fraction: float, total_s: float | None = None
) -> float | None:
    """The ``fraction`` percentile (0–1) of a bucket histogram, interpolated inside its
    bucket on a log scale (linearly in bucket 0); None for an empty histogram. A value
    in the last bucket is reported as that bucket's lower bound. With ``total_s`` (the
    sum of the values), a histogram whose values all fell in one bucket gives their mean,
    which lies in that bucket and is exact when they are alike."""
    total = sum(counts)
    if total <= 0:
        return None
    if total_s is not None and sum(1 for c in counts if c) == 1:
        return total_s / total
    rank = fraction * total
    seen = 0
    for index, count in enumerate(counts):
        if count <= 0:
            continue
        if seen + count >= rank:
            within = min(1.0, max(0.0, (rank - seen) / count))
            if index == 0:
                return BUCKET_BOUNDS_S[0] * within
            low = BUCKET_BOUNDS_S[index - 1]
            if index >= HIST_BUCKETS - 1:
                return low
            return low * 2.0 ** (within / 2)
        seen += count
    return BUCKET_BOUNDS_S[-1]


_KIND = {kind: index for index, kind in enumerate(COUNTS)}


def _moment(value: Any) -> datetime:
    """A timestamp as a driver returns it (SQLite: text; PostgreSQL: a datetime), fast:
    ``Tally.add`` runs for every job the supervisor ends."""
    if type(value) is str:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    return as_datetime(value)


class Tally:
    """The ends of one transaction, aggregated by (queue, task) for the minute of ``now``,
    written by ``write`` in the same transaction (one statement for all of them)."""

    __slots__ = ("groups", "now", "bucket")

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.bucket = sql_timestamp(now.replace(second=0, microsecond=0))
        self.groups: dict[tuple[str, str], list[float]] = {}

    def __bool__(self) -> bool:
        return bool(self.groups)

    def add(self, queue: str, task: str, kind: str, started_at: Any = None,
            run_at: Any = None) -> None:  # fmt: skip
        """One end: ``kind`` is one of COUNTS; a run that began (``started_at``) adds its
        wait (start − ``run_at``) and run time (now − start) to the histograms."""
        vector = self.groups.get((queue, task))
        if vector is None:
            vector = self.groups[(queue, task)] = [0] * _WIDTH
        vector[_KIND[kind]] += 1
        if started_at is None:
            return
        started = _moment(started_at)
        run = (self.now - started).total_seconds()
        run = run if run > 0.0 else 0.0
        vector[5] += run
        vector[_R0 + bucket_of(run)] += 1
        if run_at is not None:
            wait = (started - _moment(run_at)).total_seconds()
            wait = wait if wait > 0.0 else 0.0
            vector[4] += wait
            vector[_W0 + bucket_of(wait)] += 1

    def add_row(self, queue: str, task: str, values: Sequence[float]) -> None:
        """Add a whole value vector (folding minute rows into an hour)."""
        vector = self.groups.get((queue, task))
        if vector is None:
            self.groups[(queue, task)] = list(values)
        else:
            for index, value in enumerate(values):
                vector[index] += value

    def rows(self, span_s: int = MINUTE_S) -> list[tuple[Any, ...]]:
        """(bucket, span, queue, task, *values) rows, in key order (the lock order)."""
        return [(self.bucket, span_s, queue, task, *values)
                for (queue, task), values in sorted(self.groups.items())]  # fmt: skip

    def write(self, db: peewee.Database, span_s: int = MINUTE_S) -> None:
        """Upsert the tally into ``job_rollup`` inside the caller's transaction."""
        if self.groups:
            upsert_rows(db, self.rows(span_s))
            self.groups.clear()


_UPSERT = """INSERT INTO job_rollup ({columns}) VALUES {rows}
ON CONFLICT (bucket_start, span_s, queue_name, job_type) DO UPDATE SET {sums}"""
_upsert_cache: dict[tuple[str, int, tuple[int, ...]], str] = {}


def _upsert_sql(dialect_name: str, count: int, used: tuple[int, ...]) -> str:
    """The upsert of ``count`` rows naming only the value columns ``used`` (indexes into
    VALUE_COLUMNS): a turn's ends touch a dozen of the 114, and on PostgreSQL a statement
    is planned on every call, so its size is paid each turn."""
    key = (dialect_name, count, used)
    found = _upsert_cache.get(key)
    if found is None:
        mark = "?" if dialect_name == "sqlite" else "%s"
        columns = [VALUE_COLUMNS[i] for i in used]
        row = "(" + ", ".join([mark] * (len(KEY_COLUMNS) + len(columns))) + ")"
        sums = ", ".join(f"{c} = job_rollup.{c} + excluded.{c}" for c in columns)
        found = _UPSERT.format(columns=", ".join((*KEY_COLUMNS, *columns)),
                               rows=", ".join([row] * count), sums=sums)  # fmt: skip
        if not columns:  # rows of zeros: nothing to add
            found = found.split(" DO UPDATE")[0] + " DO NOTHING"
        if dialect_name == "postgresql":  # the waiters' wake-up rides along (ended.py)
            found = f"WITH up AS ({found}) SELECT pg_notify('{ENDED_CHANNEL}', '')"
        if len(_upsert_cache) >= 512:
            _upsert_cache.clear()
        _upsert_cache[key] = found
    return found


def upsert_rows(db: peewee.Database, rows: Sequence[Sequence[Any]]) -> None:
    """Add rows (key columns then VALUE_COLUMNS, unique keys) to ``job_rollup``."""
    name = dialect_for(db).name
    width = len(KEY_COLUMNS)
    for start in range(0, len(rows), UPSERT_CHUNK):
        chunk = rows[start : start + UPSERT_CHUNK]
        columns = zip(*(row[width:] for row in chunk), strict=True)  # one tuple per column
        used = tuple(compress(range(_WIDTH), map(any, columns)))
        pick = itemgetter(*range(width), *(width + i for i in used))
        params = [value for row in chunk for value in pick(row)]
        db.execute_sql(_upsert_sql(name, len(chunk), used), params)


def tally_ended(db: peewee.Database, rows: Iterable[Sequence[Any]], now: datetime,
                kind: str = "cancelled", tally: Tally | None = None) -> None:  # fmt: skip
    """Count jobs that ended outside a run, from (queue, task) rows: cancelled by an
    operator, as expired, or because a dependency failed. Inside the caller's transaction:
    into its ``tally`` (written later with the rest), else written here.

    On PostgreSQL every rollup row a transaction touches stays locked until it commits;
    one write per transaction, its rows in key order, keeps two supervisors from
    deadlocking on them."""
    own = Tally(now) if tally is None else tally
    for queue, task in rows:
        own.add(queue, task, kind)
    if tally is None:
        own.write(db)


# ---------------------------------------------------------------------- upkeep

_FOLD_MINUTES = """SELECT DISTINCT bucket_start FROM job_rollup
WHERE span_s = 60 AND bucket_start < :cut ORDER BY bucket_start LIMIT :limit"""
_TAKE_MINUTES = """DELETE FROM job_rollup WHERE span_s = 60 AND bucket_start IN ({marks})
RETURNING {columns}"""


def fold_rollup(db: peewee.Database, now: datetime) -> int:
    """Fold minute rows older than FOLD_AFTER into hour rows, in one transaction; the
    minute rows moved. The rows are taken with DELETE … RETURNING, so two supervisors
    folding at once never count a row twice (the second finds them gone)."""
    dialect = dialect_for(db)
    cut = sql_timestamp(now - FOLD_AFTER)
    with dialect.write_transaction(db):
        minutes = [row[0] for row in db.execute_sql(dialect.sql(_FOLD_MINUTES), {
            "cut": cut, "limit": FOLD_MINUTES_PER_CALL}).fetchall()]  # fmt: skip
        if not minutes:
            return 0
        marks = ", ".join(f":m{i}" for i in range(len(minutes)))
        sql = dialect.sql(_TAKE_MINUTES.format(marks=marks, columns=", ".join(
            ("bucket_start", "queue_name", "job_type", *VALUE_COLUMNS))))  # fmt: skip
        taken = db.execute_sql(sql, {f"m{i}": m for i, m in enumerate(minutes)}).fetchall()
        hours: dict[datetime, Tally] = {}
        for bucket, queue, task, *values in taken:
            hour = as_datetime(bucket).replace(minute=0, second=0, microsecond=0)
            tally = hours.get(hour)
            if tally is None:
                tally = hours[hour] = Tally(hour)
            tally.add_row(queue, task, values)
        rows = [row for hour in sorted(hours) for row in hours[hour].rows(HOUR_S)]
        upsert_rows(db, rows)
        return len(taken)


def prune_rollup(db: peewee.Database, now: datetime, keep: timedelta = KEEP_ROLLUP) -> int:
    """Delete rollup rows older than ``keep``; the count."""
    dialect = dialect_for(db)
    with dialect.write_transaction(db):
        cursor = db.execute_sql(dialect.sql("DELETE FROM job_rollup WHERE bucket_start < :cut"),
                                {"cut": sql_timestamp(now - keep)})  # fmt: skip
        return cursor.rowcount
