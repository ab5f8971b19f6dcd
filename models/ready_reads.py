"""Reads of the ready jobs (pending and retrying) through the claim indexes.

The two `status` indexes leave pending jobs out (schema version 15, job.STATUS_INDEX_SQL):
an enqueue then writes five b-trees, not seven. Every pending job is in one of three indexes
instead, which hold the ready jobs by queue: ``jobs_claim_queue`` (and
``jobs_claim_order``) those without a fair key, ``jobs_fair_claim`` those with one, and
``jobs_staged`` those a SQLite enqueue staged and no claim has promoted yet (staging.py).
A partial index is only used for a query that repeats its condition, so a read of ready
or pending jobs asks once per index, with that index's own terms (``READY_NOT_FAIR``,
``READY_FAIR``, ``READY_STAGED``), and adds the parts; a read of every status adds the indexed statuses
(``job.STATUS_INDEX_WHERE``) to the pending ones. One text for both engines: PostgreSQL
proves the same implications.
"""

from __future__ import annotations

import peewee

from .job import INDEXED_STATUSES, STATUS_INDEX_WHERE
from .staging import NOT_STAGED, STAGED

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from collections.abc import Iterator

#: The condition of jobs_claim_queue and jobs_claim_order, written alike.
READY_NOT_FAIR = f"status IN ('pending', 'retrying') AND fair_key IS NULL AND {NOT_STAGED}"
#: The condition of jobs_fair_claim, written alike.
READY_FAIR = "status IN ('pending', 'retrying') AND fair_key IS NOT NULL"
#: Staged jobs (staging.py: never fair-keyed, so in neither claim index until promoted),
#: through jobs_staged.
READY_STAGED = f"{STAGED} AND status IN ('pending', 'retrying')"
#: The three parts of the ready jobs, each as its index reads it (disjoint).
READY_PARTS = (READY_NOT_FAIR, READY_FAIR, READY_STAGED)

# Distinct values of a column among the jobs matching each condition: a loose scan (one
# seek per value) of the index that condition names, each beginning with the column.
_NAMES_OF = """q{n}(name) AS (
    SELECT MIN({column}) FROM jobs WHERE {where}
    UNION ALL
    SELECT (SELECT MIN({column}) FROM jobs WHERE {where} AND {column} > q{n}.name)
    FROM q{n} WHERE q{n}.name IS NOT NULL)"""


def distinct_names_sql(conditions: tuple[str, ...], column: str = "queue_name") -> str:
    """The distinct ``column`` values (queue or task names) of the jobs matching any of
    ``conditions``, each read by a loose scan of the partial index it repeats."""
    ctes = ",\n".join(_NAMES_OF.format(n=n, where=w, column=column)
                      for n, w in enumerate(conditions))  # fmt: skip
    union = " UNION ".join(f"SELECT name FROM q{n}" for n in range(len(conditions)))
    return f"WITH RECURSIVE {ctes}\nSELECT name FROM ({union}) u WHERE name IS NOT NULL"


_READY_QUEUES = distinct_names_sql(READY_PARTS)
#: Every queue name in the job table: each indexed status's, then the ready jobs'.
_ALL_QUEUES = distinct_names_sql((*(f"status = '{s}'" for s in INDEXED_STATUSES), *READY_PARTS))
# Counts of the indexed statuses, per queue: one pass over the (status, queue_name) index.
_INDEXED_COUNTS = f"""SELECT queue_name, status, COUNT(*) FROM jobs WHERE {STATUS_INDEX_WHERE}
GROUP BY status, queue_name"""
# Counts of the pending jobs of one half, per queue: one pass over its claim index.
_PENDING_COUNTS = """SELECT queue_name, COUNT(*) FROM jobs WHERE {half} AND status = 'pending'
GROUP BY queue_name"""


def ready_queue_names(db: peewee.Database) -> list[str]:
    """The queues that have pending or retrying jobs, sorted (one index seek per queue)."""
    return sorted(row[0] for row in db.execute_sql(_READY_QUEUES).fetchall())


def queue_names(db: peewee.Database) -> list[str]:
    """Every queue the job table names, sorted: one index seek per queue and status, so
    the same cost on a table of any size."""
    return sorted(row[0] for row in db.execute_sql(_ALL_QUEUES).fetchall())


def queue_has_jobs(db: peewee.Database, queue: str) -> bool:
    """Whether any job, in any status, is in ``queue``: a probe per index."""
    for where in (STATUS_INDEX_WHERE, *READY_PARTS):
        sql = f"SELECT 1 FROM jobs WHERE {where} AND queue_name = {db.param} LIMIT 1"
        if db.execute_sql(sql, [queue]).fetchone() is not None:
            return True
    return False


def status_counts(db: peewee.Database) -> Iterator[tuple[str, str, int]]:
    """``(queue, status, count)`` for every status a queue has jobs in, exact: index
    passes only (the indexed statuses, then the pending jobs of each claim index)."""
    yield from db.execute_sql(_INDEXED_COUNTS).fetchall()
    pending: dict[str, int] = {}
    for half in READY_PARTS:
        for queue, count in db.execute_sql(_PENDING_COUNTS.format(half=half)).fetchall():
            pending[queue] = pending.get(queue, 0) + count
    for queue, count in pending.items():
        yield queue, "pending", count
