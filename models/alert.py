"""Queue alerts (issue 15): a queue whose oldest due job has waited too long, or whose
runs fail too often, is *in alert* until it recovers, and each episode is told once.

One row per (kind, queue) in ``alerts`` holds its state. Every supervisor given alert
rules measures the queues and moves a row from ok to firing (or back) with one
conditional UPDATE (``... WHERE firing = <the old state>``): however many supervisors see
the same crossing at once, exactly one statement changes the row, and only the supervisor
whose statement did sends the notification. The console, ``jobtui status`` and
``jobtui queues`` read the firing rows.

Measures: ``wait`` is the age of the queue's oldest due job (pending, or retrying with
its backoff over), seconds; ``failure_rate`` is the share of the runs that ended in the
last ``FAILURE_WINDOW`` that failed (for good or to be retried), percent, read from the
rollup (rollup.py), never from the job table.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import peewee

from .base import BaseModel, UTCDateTime, as_datetime, now_default
from .clock import sql_timestamp
from .dialect import dialect_for
from .ready_reads import READY_STAGED, ready_queue_names
from .staging import NOT_STAGED

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from typing import Any

WAIT = "wait"
FAILURE_RATE = "failure_rate"
KINDS = (WAIT, FAILURE_RATE)
FAILURE_WINDOW = timedelta(minutes=5)


class Alert(BaseModel):
    """The alert state of one (kind, queue): firing or not, since when, how many episodes."""

    kind = peewee.CharField(max_length=32)
    queue_name = peewee.CharField(max_length=200)
    firing = peewee.BooleanField(default=False)
    episode = peewee.IntegerField(default=0)  # episodes begun so far
    value = peewee.DoubleField(null=True)  # the measure when the state last changed
    threshold = peewee.DoubleField(null=True)
    since = UTCDateTime(null=True)  # when the latest episode began
    recovered_at = UTCDateTime(null=True)
    updated_at = UTCDateTime(default=now_default)

    class Meta:
        table_name = "alerts"
        primary_key = peewee.CompositeKey("kind", "queue_name")


_ENSURE = """INSERT INTO alerts (kind, queue_name, firing, episode, updated_at)
VALUES (:kind, :queue, :no, 0, :now) ON CONFLICT DO NOTHING"""
_FIRE = """UPDATE alerts SET firing = :yes, episode = episode + 1, value = :value,
    threshold = :threshold, since = :now, recovered_at = NULL, updated_at = :now
WHERE kind = :kind AND queue_name = :queue AND firing = :no"""
_RECOVER = """UPDATE alerts SET firing = :no, value = :value, threshold = :threshold,
    recovered_at = :now, updated_at = :now
WHERE kind = :kind AND queue_name = :queue AND firing = :yes"""
_EPISODE = "SELECT episode, since FROM alerts WHERE kind = :kind AND queue_name = :queue"


def change_alert(db: peewee.Database, kind: str, queue: str, firing: bool, value: float,
                 threshold: float, now: datetime) -> tuple[int, datetime | None] | None:  # fmt: skip
    """Move (kind, queue) to ``firing`` (True: an episode begins; False: it recovers).
    Returns (episode, since) when this call made the change, None when the row was in
    that state already (another supervisor won, or nothing changed)."""
    dialect = dialect_for(db)
    params = {"kind": kind, "queue": queue, "yes": True, "no": False, "value": value,
              "threshold": threshold, "now": sql_timestamp(now)}  # fmt: skip
    with dialect.write_transaction(db):
        if firing:
            db.execute_sql(dialect.sql(_ENSURE), params)
        changed = db.execute_sql(dialect.sql(_FIRE if firing else _RECOVER), params).rowcount
        if changed != 1:
            return None
        episode, since = db.execute_sql(dialect.sql(_EPISODE), params).fetchone()
    return int(episode), as_datetime(since)


def firing_alerts(db: peewee.Database) -> dict[str, dict[str, dict[str, Any]]]:
    """Queue -> kind -> {since, value, threshold, episode} of every alert now firing."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    if not db.table_exists("alerts"):  # a console on a database not yet migrated
        return out
    rows = db.execute_sql(dialect_for(db).sql(
        "SELECT queue_name, kind, since, value, threshold, episode FROM alerts "
        "WHERE firing = :yes"), {"yes": True}).fetchall()  # fmt: skip
    for queue, kind, since, value, threshold, episode in rows:
        out.setdefault(queue, {})[kind] = {"since": as_datetime(since), "value": value,
                                           "threshold": threshold, "episode": episode}  # fmt: skip
    return out


#: The oldest due job of one queue, by a loose index scan over its priorities (the claim
#: index is (queue, priority desc, run_at)): a few index probes, whatever the queue holds.
# Jobs with a fair key are not in that index (fairness.py): each key's next job is one
# seek into jobs_fair_claim, and the oldest of those counts too. Staged jobs (staging.py)
# are in neither: the oldest due of them, through jobs_staged, is the second arm.
# Parameters: queue three times, the moment twice; for the staged queue, the moment twice.
_OLDEST_DUE = """WITH RECURSIVE p(v) AS (
    SELECT (SELECT MAX(priority) FROM jobs WHERE queue_name = {p}
            AND status IN ('pending', 'retrying') AND fair_key IS NULL
            AND {not_staged})
    UNION ALL
    SELECT (SELECT MAX(priority) FROM jobs WHERE queue_name = {p}
            AND status IN ('pending', 'retrying') AND fair_key IS NULL
            AND {not_staged} AND priority < p.v)
    FROM p WHERE p.v IS NOT NULL),
claimable(m) AS (SELECT MIN((SELECT MIN(run_at) FROM jobs WHERE queue_name = {p}
            AND status IN ('pending', 'retrying') AND fair_key IS NULL
            AND {not_staged} AND priority = p.v
            AND run_at <= {p} AND (next_retry_at IS NULL OR next_retry_at <= {p}))) AS m
FROM p WHERE p.v IS NOT NULL)
SELECT MIN(m) FROM (SELECT m FROM claimable UNION ALL
    SELECT MIN(run_at) FROM jobs WHERE {ready_staged} AND queue_name = {p} AND run_at <= {p}
        AND (next_retry_at IS NULL OR next_retry_at <= {p})) AS both_arms"""
OLDEST_DUE_SQL = _OLDEST_DUE.replace("{not_staged}", NOT_STAGED).replace(
    "{ready_staged}", READY_STAGED
)
OLDEST_FAIR_HEAD_SQL = """SELECT MIN((SELECT j.run_at FROM jobs j WHERE j.queue_name = k.queue_name
        AND j.fair_key = k.fair_key AND j.fair_key IS NOT NULL
        AND j.status IN ('pending', 'retrying') AND j.run_at <= {p}
        AND (j.next_retry_at IS NULL OR j.next_retry_at <= {p})
        ORDER BY j.priority DESC, j.run_at, j.id LIMIT 1))
FROM fair_keys k WHERE k.queue_name = {p}"""


def oldest_due(db: peewee.Database, queue: str, now: datetime) -> datetime | None:
    """When the oldest job of ``queue`` that is due by ``now`` became due (None: none is)."""
    stamp = sql_timestamp(now)
    (oldest,) = db.execute_sql(OLDEST_DUE_SQL.format(p=db.param),
                               [queue, queue, queue, stamp, stamp, queue, stamp, stamp]).fetchone()  # fmt: skip
    (fair,) = db.execute_sql(OLDEST_FAIR_HEAD_SQL.format(p=db.param),
                             [stamp, stamp, queue]).fetchone()  # fmt: skip
    found = [as_datetime(v) for v in (oldest, fair) if v is not None]
    return min(found) if found else None


def queue_waits(db: peewee.Database, queues: list[str] | None, now: datetime) -> dict[str, float]:
    """Seconds the oldest due job of each queue (``None``: every queue with pending or
    retrying jobs) has waited; 0 for a queue with none due."""
    if queues is None:
        queues = ready_queue_names(db)
    waits = {}
    for queue in queues:
        first = oldest_due(db, queue, now)
        waits[queue] = 0.0 if first is None else max(0.0, (now - first).total_seconds())
    return waits


_FAILURES = """SELECT queue_name, SUM(completed), SUM(failed), SUM(retried) FROM job_rollup
WHERE span_s = 60 AND bucket_start >= {p} GROUP BY queue_name"""


def failure_rates(db: peewee.Database, now: datetime) -> dict[str, tuple[float, int]]:
    """Per queue with runs that ended in the last ``FAILURE_WINDOW`` (by rollup minute,
    the current one included): (percent of them that failed, how many ended)."""
    start = now.replace(second=0, microsecond=0) - FAILURE_WINDOW + timedelta(minutes=1)
    out = {}
    for queue, done, failed, retried in db.execute_sql(
        _FAILURES.format(p=db.param), [sql_timestamp(start)]
    ).fetchall():
        bad = int(failed or 0) + int(retried or 0)
        ended = bad + int(done or 0)
        if ended:
            out[queue] = (100.0 * bad / ended, ended)
    return out
