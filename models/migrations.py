"""The schema version and forward migrations, applied automatically when a database opens.

A fresh database gets every table at the current version. An older one is migrated step
by step (``STEPS[n]`` takes version n-1 to n, with playhouse.migrate), inside one
transaction that also holds the schema lock, so two processes starting together migrate
once. A database written by a newer jobtui is refused before anything is written.
"""

from __future__ import annotations

from collections.abc import Callable

import peewee

from .alert import Alert
from .attempt import JobAttempt
from .audit import AuditEntry
from .base import BaseModel
from .batch import Batch
from .catalog import TaskCatalog
from .clock import utcnow
from .dependency import JobDependency
from .dialect import dialect_for
from .errors import SchemaTooNew
from .fairness import FairKey
from .job import Job
from .joblog import JobLog
from .key_limits import KeyLimit
from .queue import Queue
from .rates import Rate
from .rollup import JobRollup
from .schedule import Schedule, ScheduleFire
from .stacks import StackRequest
from .worker import Supervisor, Worker

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:  # playhouse.migrate imports psycopg2 and ssl (6 MB): only to migrate
    from playhouse.migrate import SchemaMigrator

SCHEMA_VERSION = 16

MODELS: list[type[BaseModel]] = [
    Job, JobAttempt, JobDependency, Queue, Supervisor, Worker, Schedule, ScheduleFire, Batch,
    TaskCatalog, JobRollup, AuditEntry, Alert,
    JobLog, StackRequest, Rate, KeyLimit,
    FairKey,
]  # fmt: skip


def _drop_redundant_attempt_index(migrator: SchemaMigrator, db: peewee.Database) -> None:
    """Version 2: job_attempts lost its index on job_id alone (the unique (job_id,
    attempt) index answers the same lookups), one page fewer per outcome written."""
    db.execute_sql("DROP INDEX IF EXISTS job_attempts_job_id")


def _add_cancel_reasons_and_beat_intervals(migrator: SchemaMigrator, db: peewee.Database) -> None:
    """Version 3: a running job's cancel request keeps the operator's reason and whether
    to kill it now (jobs.cancel_reason, jobs.kill_requested), and a supervisor row says
    how often it beats (supervisors.heartbeat_interval_s), so staleness is judged by it.
    All nullable: adding them rewrites no row on either engine."""
    from playhouse.migrate import migrate

    migrate(
        migrator.add_column("jobs", "cancel_reason", Job.cancel_reason),
        migrator.add_column("jobs", "kill_requested", Job.kill_requested),
        migrator.add_column("supervisors", "heartbeat_interval_s", Supervisor.heartbeat_interval_s),
    )


def _add_progress_details(migrator: SchemaMigrator, db: peewee.Database) -> None:
    """Version 4: a running job keeps its task's progress details (seed 002's details
    dict) beside its percentage and message. Nullable: no row is rewritten."""
    from playhouse.migrate import migrate

    migrate(migrator.add_column("jobs", "progress_details", Job.progress_details))


def _add_task_catalog(migrator: SchemaMigrator, db: peewee.Database) -> None:
    """Version 5: the task catalog (catalog.py) and, on each job, the options its enqueuer
    left unset (jobs.unset_options; 0 for older jobs: everything they hold was explicit,
    as before)."""
    from playhouse.migrate import migrate

    from .job import UNRESOLVED_INDEX_SQL

    migrate(migrator.add_column("jobs", "unset_options", Job.unset_options))
    db.create_tables([TaskCatalog])
    db.execute_sql(UNRESOLVED_INDEX_SQL)


def _add_job_rollup(migrator: SchemaMigrator, db: peewee.Database) -> None:
    """Version 6: the ``job_rollup`` table of per-minute counts and histograms
    (rollup.py). It starts empty: jobs that ended before the upgrade are not counted in
    it (the figures of the first hour after an upgrade cover the jobs since)."""
    db.create_tables([JobRollup])


def _add_supervisor_schema_versions(migrator: SchemaMigrator, db: peewee.Database) -> None:
    """Version 7: a supervisor row says which schema version its jobtui runs
    (supervisors.schema_version), so ``jobtui db downgrade`` can refuse while one that
    needs a newer schema is alive. Nullable: rows of older supervisors stay unknown."""
    from playhouse.migrate import migrate

    migrate(migrator.add_column("supervisors", "schema_version", Supervisor.schema_version))


def _add_audit_log_and_attempt_parameters(migrator: SchemaMigrator, db: peewee.Database) -> None:
    """Version 8: the ``audit_log`` table of operator actions (audit.py), and on each
    attempt the parameters it ran with once an operator edited the job's
    (job_attempts.parameters; nullable: no row is rewritten)."""
    from playhouse.migrate import migrate

    db.create_tables([AuditEntry])
    migrate(migrator.add_column("job_attempts", "parameters", JobAttempt.parameters))


def _add_crash_counts_and_scaling(migrator: SchemaMigrator, db: peewee.Database) -> None:
    """Version 9: crash-loop quarantine counts the runs of a job that killed their worker
    (jobs.crash_count, 0 for older jobs), and live scaling gives each supervisor row an
    inbox for ``jobtui scale`` (supervisors.scale_request) and its autoscale bounds
    (supervisors.autoscale). The new supervisors columns are nullable; crash_count has a
    constant default, which neither engine writes into each row."""
    from playhouse.migrate import migrate

    migrate(
        migrator.add_column("jobs", "crash_count", Job.crash_count),
        migrator.add_column("supervisors", "scale_request", Supervisor.scale_request),
        migrator.add_column("supervisors", "autoscale", Supervisor.autoscale),
    )


def _add_trace_context_and_alerts(migrator: SchemaMigrator, db: peewee.Database) -> None:
    """Version 10 (issue 15): each job keeps its enqueuer's trace context
    (jobs.trace_context, nullable: no row is rewritten), and the ``alerts`` table holds
    the state of each queue's long-wait and failure-rate alerts (alert.py)."""
    from playhouse.migrate import migrate

    migrate(migrator.add_column("jobs", "trace_context", Job.trace_context))
    db.create_tables([Alert])


def _add_job_logs_and_stack_requests(migrator: SchemaMigrator, db: peewee.Database) -> None:
    """Version 11: the ``job_logs`` table (a running job's captured stdout, stderr and
    logging, in chunks keyed by job, attempt and sequence: joblog.py) and the
    ``job_stack_requests`` table (asking a supervisor for a running job's live stack:
    stacks.py). Both start empty; their rows go with their job (ON DELETE CASCADE)."""
    db.create_tables([JobLog, StackRequest])


def _add_rates_and_key_limits(migrator: SchemaMigrator, db: peewee.Database) -> None:
    """Version 8: rate limits and per-key concurrency (rates.py, key_limits.py): the
    ``rates`` and ``key_limits`` tables, and on each job the rate key its start counts
    against and its concurrency key (jobs.rate_key, jobs.concurrency_key; nullable: no
    row is rewritten), with the index of the due jobs that have a key, in claim order
    (``jobs_claim_keyed``): the claim walks it while a rate or key limit exists, instead
    of the whole backlog; it holds no row while no job has a key."""
    from playhouse.migrate import migrate

    from .job import KEYED_INDEX_SQL

    migrate(
        migrator.add_column("jobs", "rate_key", Job.rate_key),
        migrator.add_column("jobs", "concurrency_key", Job.concurrency_key),
    )
    db.create_tables([Rate, KeyLimit])
    db.execute_sql(KEYED_INDEX_SQL)


def _add_fairness_and_aging(migrator: SchemaMigrator, db: peewee.Database) -> None:
    """Version 13 (issue 14, items 3 and 4): tenants' fair keys (jobs.fair_key, the
    fair_keys table of each key's last turn, the jobs_fair_claim index, and the two claim
    indexes rebuilt to leave fair-keyed jobs out) and priority aging (jobs.base_priority,
    queues.priority_aging_s, queues.aged_at). The columns are nullable: no row is
    rewritten; the claim indexes are rebuilt once."""
    from playhouse.migrate import migrate

    from .job import CLAIM_INDEX_SQL_V14

    migrate(
        migrator.add_column("jobs", "fair_key", Job.fair_key),
        migrator.add_column("jobs", "base_priority", Job.base_priority),
        migrator.add_column("queues", "priority_aging_s", Queue.priority_aging_s),
        migrator.add_column("queues", "aged_at", Queue.aged_at),
    )
    db.create_tables([FairKey])
    db.execute_sql("DROP INDEX IF EXISTS jobs_claim_queue")
    db.execute_sql("DROP INDEX IF EXISTS jobs_claim_order")
    for statement in CLAIM_INDEX_SQL_V14:
        db.execute_sql(statement)


def _sparse_indexes(migrator: SchemaMigrator, db: peewee.Database) -> None:
    """Version 14 (issue 17, item 3): the reference, user and batch indexes hold only the
    jobs that have those columns (job.SPARSE_INDEX_SQL), so an enqueue writes three
    b-trees fewer. No row is rewritten; the three indexes are rebuilt once."""
    from .job import SPARSE_INDEX_SQL, SPARSE_INDEXES

    for index in SPARSE_INDEXES:
        db.execute_sql(f"DROP INDEX IF EXISTS {index}")
    for statement in SPARSE_INDEX_SQL:
        db.execute_sql(statement)


def _pending_out_of_status_indexes(migrator: SchemaMigrator, db: peewee.Database) -> None:
    """Version 15 (issue 17, item 3): the two `status` indexes leave pending jobs out, and
    the per-queue claim indexes end with `status`, where pending jobs are counted from
    (job.STATUS_INDEX_SQL, ready_reads.py): an enqueue writes two b-trees fewer. No row is
    rewritten; the four indexes are rebuilt once."""
    from .job import CLAIM_INDEX_SQL, CLAIM_INDEX_SQL_V15, STATUS_INDEX_SQL, STATUS_INDEXES

    for index in (*STATUS_INDEXES, "jobs_claim_queue", "jobs_fair_claim"):
        db.execute_sql(f"DROP INDEX IF EXISTS {index}")
    for statement in (*STATUS_INDEX_SQL, CLAIM_INDEX_SQL_V15[0], CLAIM_INDEX_SQL[2]):
        db.execute_sql(statement)


def _staged_enqueues(migrator: SchemaMigrator, db: peewee.Database) -> None:
    """Version 16 (issue 17, item 3): a SQLite enqueue is staged, written outside the
    claim indexes and the task index, which leave staged jobs out, and into jobs_staged;
    the next claim promotes it (staging.py). No row is rewritten (none is staged yet);
    the three indexes are rebuilt once and jobs_staged starts empty."""
    from .job import CLAIM_INDEX_SQL
    from .staging import STAGED_INDEX_SQL, TASK_INDEX, TASK_INDEX_SQL

    for index in ("jobs_claim_queue", "jobs_claim_order", TASK_INDEX):
        db.execute_sql(f"DROP INDEX IF EXISTS {index}")
    for statement in (*CLAIM_INDEX_SQL[:2], TASK_INDEX_SQL, STAGED_INDEX_SQL):
        db.execute_sql(statement)


#: STEPS[n] migrates a database from schema version n-1 to n; every step has its reverse
#: in downgrade.DOWN_STEPS[n] (tests/contract/test_schema_downgrade.py walks them all).
STEPS: dict[int, Callable[[SchemaMigrator, peewee.Database], None]] = {
    2: _drop_redundant_attempt_index,
    3: _add_cancel_reasons_and_beat_intervals,
    4: _add_progress_details,
    5: _add_task_catalog,
    6: _add_job_rollup,
    7: _add_supervisor_schema_versions,
    8: _add_audit_log_and_attempt_parameters,
    9: _add_crash_counts_and_scaling,
    10: _add_trace_context_and_alerts,
    11: _add_job_logs_and_stack_requests,
    12: _add_rates_and_key_limits,
    13: _add_fairness_and_aging,
    14: _sparse_indexes,
    15: _pending_out_of_status_indexes,
    16: _staged_enqueues,
}


class SchemaInfo(BaseModel):
    """One row: the schema version this database was last migrated to."""

    id = peewee.IntegerField(primary_key=True, default=1)
    version = peewee.IntegerField()
    migrated_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "jobtui_schema"


ALL_MODELS: list[type[BaseModel]] = [*MODELS, SchemaInfo]


def read_schema_version(db: peewee.Database) -> int | None:
    """The stored version, or None for a database jobtui has never written."""
    if not db.table_exists("jobtui_schema"):
        return None
    row = db.execute_sql("SELECT version FROM jobtui_schema WHERE id = 1").fetchone()
    return None if row is None else int(row[0])


def _refuse_if_newer(version: int | None) -> None:
    if version is not None and version > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"this database has schema version {version}, written by a newer jobtui "
            f"(this one knows up to {SCHEMA_VERSION}); upgrade jobtui — the database was "
            "left untouched"
        )


def ensure_schema(db: peewee.Database) -> int:
    """Create or migrate the schema of ``db``; returns the version now in force."""
    version = read_schema_version(db)  # outside the lock: the common case writes nothing
    _refuse_if_newer(version)
    if version == SCHEMA_VERSION:
        return version
    dialect = dialect_for(db)
    with db.bind_ctx(ALL_MODELS), dialect.write_transaction(db):
        dialect.lock_schema(db)
        version = read_schema_version(db)  # again, under the lock
        _refuse_if_newer(version)
        if version is None:
            db.create_tables(ALL_MODELS)
            SchemaInfo.insert(id=1, version=SCHEMA_VERSION, migrated_at=utcnow()).execute()
            return SCHEMA_VERSION
        from playhouse.migrate import SchemaMigrator

        migrator = SchemaMigrator.from_database(db)
        while version < SCHEMA_VERSION:
            version += 1
            STEPS[version](migrator, db)
        SchemaInfo.update(version=version, migrated_at=utcnow()).where(SchemaInfo.id == 1).execute()
    return version
