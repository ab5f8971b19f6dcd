"""Schema downgrades: the reverse of every forward step, for rolling back a deploy.

``DOWN_STEPS[n]`` takes a database from schema version n back to n-1: it drops what
``migrations.STEPS[n]`` added (columns, tables, indexes) and recreates what it dropped.
Each reverse is declared, not coded, so the confirmation prompt lists exactly what will
be dropped. A new forward step needs its reverse here; the schema walk test
(tests/contract/test_schema_downgrade.py) fails until it has one.

A downgrade runs in one transaction holding the schema lock (PostgreSQL's DDL is
transactional; SQLite's ``ALTER TABLE ... DROP COLUMN`` is too), so it either completes
or leaves the database as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import peewee

from .dialect import dialect_for
from .errors import JobtuiError
from .job import (
    CLAIM_INDEX_SQL_V7,
    CLAIM_INDEX_SQL_V14,
    CLAIM_INDEX_SQL_V15,
    SPARSE_INDEX_SQL_V13,
    SPARSE_INDEXES,
    STATUS_INDEX_SQL_V14,
    STATUS_INDEXES,
)
from .migrations import SCHEMA_VERSION, read_schema_version
from .staging import PROMOTE_ALL_SQL, STAGED_INDEX, TASK_INDEX

#: The task index as it was up to 15 (every job in it), for downgrade 16.
TASK_INDEX_SQL_V15 = 'CREATE INDEX IF NOT EXISTS "jobs_job_type_id" ON "jobs" ("job_type", "id")'


class DowngradeRefused(JobtuiError):
    """The schema cannot be downgraded to that version."""


@dataclass(frozen=True)
class DownStep:
    """What undoing one forward step drops (and recreates)."""

    #: (table, column) pairs to drop: their data is lost
    columns: tuple[tuple[str, str], ...] = ()
    #: tables to drop, with their rows
    tables: tuple[str, ...] = ()
    #: indexes to drop (before the columns they cover)
    indexes: tuple[str, ...] = ()
    #: CREATE INDEX statements for what the forward step dropped
    creates: tuple[str, ...] = ()
    #: statements run first, that make the rows fit the older schema (and what they do)
    rewrites: tuple[str, ...] = ()
    rewrites_said: str = ""

    def describe(self) -> str:
        """One line for the confirmation prompt: what this step loses."""
        parts = [f"table {t} (and its rows)" for t in self.tables]
        parts += [f"column {t}.{c}" for t, c in self.columns]
        parts += [f"index {i}" for i in self.indexes]
        said = "drops " + ", ".join(parts) if parts else "drops nothing"
        if self.creates:
            said += f"; recreates {len(self.creates)} index(es)"
        if self.rewrites_said:
            said += f"; first {self.rewrites_said}"
        return said

    def run(self, db: peewee.Database) -> None:
        for statement in self.rewrites:
            db.execute_sql(statement)
        for index in self.indexes:
            db.execute_sql(f"DROP INDEX IF EXISTS {index}")
        for table in self.tables:
            db.execute_sql(f"DROP TABLE IF EXISTS {table}")
        for table, column in self.columns:
            db.execute_sql(f"ALTER TABLE {table} DROP COLUMN {column}")
        for statement in self.creates:
            db.execute_sql(statement)


#: DOWN_STEPS[n] takes a database from schema version n back to n-1.
DOWN_STEPS: dict[int, DownStep] = {
    2: DownStep(
        creates=("CREATE INDEX IF NOT EXISTS job_attempts_job_id ON job_attempts (job_id)",)
    ),  # fmt: skip
    3: DownStep(
        columns=(
            ("jobs", "cancel_reason"),
            ("jobs", "kill_requested"),
            ("supervisors", "heartbeat_interval_s"),
        )
    ),  # fmt: skip
    4: DownStep(columns=(("jobs", "progress_details"),)),
    5: DownStep(
        indexes=("jobs_unresolved_queue",),
        tables=("task_catalog",),
        columns=(("jobs", "unset_options"),),
    ),
    6: DownStep(tables=("job_rollup",)),
    7: DownStep(columns=(("supervisors", "schema_version"),)),
    8: DownStep(tables=("audit_log",), columns=(("job_attempts", "parameters"),)),
    9: DownStep(
        columns=(
            ("jobs", "crash_count"),
            ("supervisors", "scale_request"),
            ("supervisors", "autoscale"),
        )
    ),
    10: DownStep(tables=("alerts",), columns=(("jobs", "trace_context"),)),
    11: DownStep(tables=("job_logs", "job_stack_requests")),
    12: DownStep(
        indexes=("jobs_claim_keyed",),
        tables=("rates", "key_limits"),
        columns=(("jobs", "rate_key"), ("jobs", "concurrency_key")),
    ),
    13: DownStep(
        indexes=("jobs_fair_claim", "jobs_claim_queue", "jobs_claim_order"),
        tables=("fair_keys",),
        columns=(
            ("jobs", "fair_key"),
            ("jobs", "base_priority"),
            ("queues", "priority_aging_s"),
            ("queues", "aged_at"),
        ),
        creates=CLAIM_INDEX_SQL_V7,
    ),  # fmt: skip
    14: DownStep(indexes=SPARSE_INDEXES, creates=SPARSE_INDEX_SQL_V13),
    15: DownStep(
        indexes=(*STATUS_INDEXES, "jobs_claim_queue", "jobs_fair_claim"),
        creates=(*STATUS_INDEX_SQL_V14, *CLAIM_INDEX_SQL_V14),
    ),
    16: DownStep(
        rewrites=(PROMOTE_ALL_SQL,),
        rewrites_said="moves staged jobs into the claim and task indexes",
        indexes=(STAGED_INDEX, "jobs_claim_queue", "jobs_claim_order", TASK_INDEX),
        creates=(*CLAIM_INDEX_SQL_V15, TASK_INDEX_SQL_V15),
    ),
}


def downgrade_plan(current: int, target: int) -> list[tuple[int, DownStep]]:
    """The steps from ``current`` down to ``target``, newest first; refuses a target this
    jobtui cannot reach (not below ``current``, under 1, or steps it does not know)."""
    if target < 1:
        raise DowngradeRefused(f"there is no schema version {target}: versions start at 1")
    if target > current:
        raise DowngradeRefused(
            f"the database is at schema version {current}; {target} is newer: "
            "jobtui db upgrade goes forward"
        )
    if current > SCHEMA_VERSION:
        raise DowngradeRefused(
            f"the database has schema version {current}, newer than this jobtui knows "
            f"({SCHEMA_VERSION}): run the downgrade with the jobtui that wrote it — only "
            "it knows how to undo its steps"
        )
    missing = [n for n in range(current, target, -1) if n not in DOWN_STEPS]
    if missing:
        raise DowngradeRefused(f"schema step(s) {missing} have no reverse: cannot downgrade")
    return [(n, DOWN_STEPS[n]) for n in range(current, target, -1)]


def downgrade_schema(
    db: peewee.Database,
    target: int,
    check: Callable[[peewee.Database, int], None] | None = None,
) -> int:
    """Take ``db`` down to schema version ``target``; returns the version it was at.

    ``check(db, version)`` runs inside the transaction, under the schema lock, after
    writes to the supervisors table are blocked, so what it verifies (no live supervisor
    needs a newer schema) still holds when the steps run; it raises to refuse."""
    dialect = dialect_for(db)
    with dialect.write_transaction(db):
        dialect.lock_schema(db)
        dialect.block_writes(db, "supervisors")
        current = read_schema_version(db)
        if current is None:
            raise DowngradeRefused("this database has no jobtui schema to downgrade")
        steps = downgrade_plan(current, target)
        if check is not None:
            check(db, current)
        for _, step in steps:
            step.run(db)
        db.execute_sql(dialect.sql("UPDATE jobtui_schema SET version = :v WHERE id = 1"),
                       {"v": target})  # fmt: skip
    return current
