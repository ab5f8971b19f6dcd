"""The schema version and forward migrations, applied automatically when a database opens.

A fresh database gets every table at the current version. An older one is migrated step
by step (``STEPS[n]`` takes version n-1 to n, with playhouse.migrate), inside one
transaction that also holds the schema lock, so two processes starting together migrate
once. A database written by a newer jobtui is refused before anything is written.
"""

from __future__ import annotations

from collections.abc import Callable

import peewee

from .attempt import JobAttempt
from .base import BaseModel
from .batch import Batch
from .catalog import TaskCatalog
from .clock import utcnow
from .dependency import JobDependency
from .dialect import dialect_for
from .errors import SchemaTooNew
from .fairness import FairKey
from .job import Job
from .queue import Queue
from .rollup import JobRollup
from .schedule import Schedule, ScheduleFire
from .worker import Supervisor, Worker

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:  # playhouse.migrate imports psycopg2 and ssl (6 MB): only to migrate
    from playhouse.migrate import SchemaMigrator

SCHEMA_VERSION = 8

MODELS: list[type[BaseModel]] = [
    Job, JobAttempt, JobDependency, Queue, Supervisor, Worker, Schedule, ScheduleFire, Batch,
    TaskCatalog, JobRollup, FairKey,
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


def _add_fairness_and_aging(migrator: SchemaMigrator, db: peewee.Database) -> None:
    """Version 8 (issue 14, items 3 and 4): tenants' fair keys (jobs.fair_key, the
    fair_keys table of each key's last turn, the jobs_fair_claim index, and the two claim
    indexes rebuilt to leave fair-keyed jobs out) and priority aging (jobs.base_priority,
    queues.priority_aging_s, queues.aged_at). The columns are nullable: no row is
    rewritten; the claim indexes are rebuilt once."""
    from playhouse.migrate import migrate

    from .job import CLAIM_INDEX_SQL

    migrate(
        migrator.add_column("jobs", "fair_key", Job.fair_key),
        migrator.add_column("jobs", "base_priority", Job.base_priority),
        migrator.add_column("queues", "priority_aging_s", Queue.priority_aging_s),
        migrator.add_column("queues", "aged_at", Queue.aged_at),
    )
    db.create_tables([FairKey])
    db.execute_sql("DROP INDEX IF EXISTS jobs_claim_queue")
    db.execute_sql("DROP INDEX IF EXISTS jobs_claim_order")
    for statement in CLAIM_INDEX_SQL:
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
    8: _add_fairness_and_aging,
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
