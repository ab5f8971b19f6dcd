"""Staged enqueues on SQLite: a new job is written outside the claim and task indexes, and
the next claim moves every such job in at once (schema version 16, issue 17).

Why: on SQLite a single enqueue costs what it writes, b-tree by b-tree (the WAL is synced
by the byte before each checkpoint). A plain pending job was written into five: the
table, its id, the two claim indexes and the task index. Staged, it is written into three
(the table, its id, and ``jobs_staged``, which holds only staged jobs), and the claim
indexes and the task index get their entries from one ``UPDATE`` per claim, a batch that
writes each index page once for many jobs. Oban stages its scheduled jobs the same way.

A staged job is an ordinary pending job in every way a user sees: its status is
``pending``, and the flag is a bit of ``unset_options`` (internal, never shown). Reads of
pending jobs take the staged ones from their own index (``ready_reads.READY_PARTS``); only
the claim does not, and it promotes them first. So the cost is one index probe per claim
(``jobs_staged`` is empty between enqueues) and, for a job enqueued while no supervisor
runs, nothing until one starts: it promotes every staged job before its first claim.

Only SQLite stages: PostgreSQL's enqueue is not bound by page writes (its WAL is written
once per commit, not per page), and its claim must stay one statement. The terms below are
in the index definitions of both engines alike, so the queries are one text.
"""

from __future__ import annotations

import peewee

#: The bit of ``jobs.unset_options`` that marks a staged job (catalog.py has the others).
STAGED_BIT = 512
#: The condition of ``jobs_staged``, written alike wherever a query must use that index.
STAGED = f"(unset_options & {STAGED_BIT}) <> 0"
#: The term the claim indexes and the task index add: jobs not staged. A query through one
#: of them repeats it (SQLite uses a partial index only for a query that repeats its terms).
NOT_STAGED = f"(unset_options & {STAGED_BIT}) = 0"

#: Staged jobs by task in id order, as the task index holds the others: a read by task
#: (``TASK_PARTS``) walks each; a read by queue reads every staged job (few: a claim
#: promotes them all).
STAGED_INDEX = "jobs_staged"
STAGED_INDEX_SQL = (
    f"CREATE INDEX IF NOT EXISTS {STAGED_INDEX} ON jobs (job_type, id) WHERE {STAGED}"
)
#: `jobtui jobs --task T`, the console's task filter, the unknown-task sweep, a rated
#: task's claim: every job not staged.
TASK_INDEX = "jobs_job_type_id"
TASK_INDEX_SQL = (
    f"CREATE INDEX IF NOT EXISTS {TASK_INDEX} ON jobs (job_type, id) WHERE {NOT_STAGED}"
)
#: A read of jobs by task asks twice, once per index, and merges (each walks in id order).
TASK_PARTS = (NOT_STAGED, STAGED)

#: Jobs promoted per claim at most: a backlog staged while no supervisor ran is promoted
#: in full before the first claim (``promote_all``); between claims a supervisor sees what
#: was enqueued since its last turn, far fewer.
PROMOTE_BATCH = 10_000
_PROMOTE = f"""UPDATE jobs SET unset_options = unset_options - {STAGED_BIT}
WHERE id IN (SELECT id FROM jobs WHERE {STAGED} LIMIT {{limit}})"""
_PROMOTE_BATCH_SQL = _PROMOTE.format(limit=PROMOTE_BATCH)  # every claim's, built once
#: Every staged job at once (the downgrade, which must leave none).
PROMOTE_ALL_SQL = f"UPDATE jobs SET unset_options = unset_options - {STAGED_BIT} WHERE {STAGED}"


class UnsetOptionsField(peewee.IntegerField):
    """``jobs.unset_options`` as a model reads it: without the staged bit, which is the
    store's business, not the job's (so a job reads the same before and after its
    promotion). A whole-row save of a staged job writes it promoted, which is harmless."""

    def python_value(self, value: object) -> object:
        value = super().python_value(value)
        return value & ~STAGED_BIT if value else value


def stages(db: peewee.Database) -> bool:
    """Whether enqueues on ``db`` are staged (SQLite's only)."""
    from .dialect import dialect_for

    return dialect_for(db).name == "sqlite"


def promote_staged(db: peewee.Database, limit: int = PROMOTE_BATCH) -> int:
    """Move up to ``limit`` staged jobs into the claim and task indexes, inside the
    caller's write transaction; returns how many. One probe of an empty index when none."""
    if not stages(db):
        return 0
    sql = _PROMOTE_BATCH_SQL if limit == PROMOTE_BATCH else _PROMOTE.format(limit=int(limit))
    return db.execute_sql(sql).rowcount


def promote_all(db: peewee.Database, batch: int = PROMOTE_BATCH) -> int:
    """Promote every staged job, a batch per transaction (a backlog enqueued while no
    supervisor ran: a million jobs must not hold the write lock at once). Returns how many."""
    if not stages(db):
        return 0
    from .claims import with_lock_retry
    from .dialect import dialect_for

    dialect, total = dialect_for(db), 0

    def one_batch() -> int:
        with dialect.write_transaction(db):
            return promote_staged(db, batch)

    while True:
        moved = with_lock_retry(one_batch)
        total += moved
        if moved < batch:
            return total
