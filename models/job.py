"""The Job model: the seed's fields and methods, plus what claims and workflows need.

State changes live in ``claims.py`` (one place each, shared by these methods, the
API, the CLI and the supervisor); the methods here are the seed's conveniences over them.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import peewee

from .base import BaseModel, JSONText, UTCDateTime, now_default
from .clock import utcnow
from .ids import new_job_id
from .staging import NOT_STAGED, STAGED_INDEX_SQL, TASK_INDEX_SQL, UnsetOptionsField
from .status import FINAL, LIVE, JobStatus

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from typing import Any


class Job(BaseModel):
    id = peewee.CharField(max_length=36, primary_key=True, default=new_job_id)
    job_type = peewee.CharField(max_length=200)
    status = peewee.CharField(max_length=16, default=JobStatus.PENDING.value)
    title = peewee.CharField(max_length=200, null=True)
    description = peewee.TextField(null=True)
    parameters = JSONText(default=lambda: {"args": [], "kwargs": {}})
    result = JSONText(null=True)
    started_at = UTCDateTime(null=True)
    completed_at = UTCDateTime(null=True)
    failed_at = UTCDateTime(null=True)
    progress_percentage = peewee.FloatField(default=0)
    progress_message = peewee.CharField(max_length=500, null=True)
    progress_details = JSONText(null=True)  # the task's latest details (seed 002), merged
    max_retries = peewee.IntegerField(default=3)
    retry_count = peewee.IntegerField(default=0)
    next_retry_at = UTCDateTime(null=True)
    error_message = peewee.TextField(null=True)
    error_traceback = peewee.TextField(null=True)
    priority = peewee.IntegerField(default=0)
    scheduled_for = UTCDateTime(null=True)
    user_id = peewee.CharField(max_length=200, null=True)
    reference_type = peewee.CharField(max_length=100, null=True)
    reference_id = peewee.CharField(max_length=200, null=True)
    worker_name = peewee.CharField(max_length=200, null=True)
    queue_name = peewee.CharField(max_length=100, default="default")
    created_at = UTCDateTime(default=now_default)
    updated_at = UTCDateTime(default=now_default)

    # -- beyond the seed: claims and fencing
    run_at = UTCDateTime(default=now_default)  # when it is due: scheduled_for, next_retry_at or now
    attempt = peewee.IntegerField(default=0)  # every claim +1; never goes down (fencing number)
    lease_token = peewee.CharField(max_length=32, null=True)  # fresh random value per claim
    heartbeat_at = UTCDateTime(null=True)  # last sign of life of the running attempt
    supervisor_name = peewee.CharField(max_length=200, null=True)  # owner of the running attempt
    timeout = peewee.FloatField(null=True)  # seconds a run may take
    cancel_requested = peewee.BooleanField(default=False)
    # -- read only while cancel_requested is set: the operator's reason (it becomes the
    # error of the cancelled job) and whether to kill the process now rather than ask the
    # task to stop first (NULL: ask)
    cancel_reason = peewee.CharField(max_length=500, null=True)
    kill_requested = peewee.BooleanField(null=True)
    error_type = peewee.CharField(max_length=200, null=True)  # exception class of the last error
    error_permanent = peewee.BooleanField(default=False)  # the last failure must not be retried
    # -- retry policy for this job (NULL: the defaults of DESIGN.md)
    retry_delay = peewee.FloatField(null=True)
    retry_backoff = peewee.FloatField(null=True)
    retry_max_delay = peewee.FloatField(null=True)
    retry_jitter = peewee.BooleanField(null=True)
    # -- workflows
    tags = JSONText(null=True)
    metadata = JSONText(null=True)
    unique_key = peewee.CharField(max_length=200, null=True)
    batch_id = peewee.CharField(max_length=36, null=True)
    has_dependants = peewee.BooleanField(default=False)  # another job lists it in depends_on
    schedule_name = peewee.CharField(max_length=200, null=True)  # the schedule that made it
    deadline = UTCDateTime(null=True)  # not started by then: cancelled as expired
    # -- options the enqueuer did not give (bits of catalog.UNSET_*): their values are the
    # task's as the catalog knew it, or built-in; the supervisor applies its own defaults
    unset_options = UnsetOptionsField(default=0)  # (without staging.py's bit)
    # -- crash-loop quarantine: runs of this job that killed their worker (a signal, an
    # exit mid-job, a hang past the lease); an operator's retry resets it (outcomes.py)
    # (nullable with a database default: adding it rewrites no row; NULL reads as 0)
    crash_count = peewee.IntegerField(default=0, null=True, constraints=[peewee.SQL("DEFAULT 0")])
    # -- observability: the enqueuer's trace context (W3C traceparent, as JSON of the
    # propagation carrier) when OpenTelemetry traced the enqueue; NULL otherwise
    trace_context = peewee.TextField(null=True)
    # -- flow control (rates.py, key_limits.py): the rate this job's start counts against
    # (with its queue's and task's), and the key whose running jobs are limited
    rate_key = peewee.CharField(max_length=200, null=True)
    concurrency_key = peewee.CharField(max_length=200, null=True)
    # -- flow control: the tenant whose line the job waits in (fairness.py; NULL: none),
    # and the priority it was given before aging raised it (aging.py; NULL: not aged)
    fair_key = peewee.CharField(max_length=200, null=True)
    base_priority = peewee.IntegerField(null=True)

    class Meta:
        table_name = "jobs"

    # -- the seed's predicates
    def is_completed(self) -> bool:
        """Finished successfully."""
        return self.status == JobStatus.COMPLETED

    def is_failed(self) -> bool:
        """Failed for good: ``failed`` is the dead-letter state, no retry is scheduled."""
        return self.status == JobStatus.FAILED

    def is_final(self) -> bool:
        return self.status in FINAL

    def can_retry(self) -> bool:
        """Whether another failure would be retried: retries left and no permanent error."""
        return not self.error_permanent and self.retry_count < self.max_retries

    def get_execution_time(self) -> timedelta | None:
        """How long the latest run took (or has taken so far, while running)."""
        if self.started_at is None:
            return None
        end = self.completed_at or self.failed_at
        if end is None:
            end = utcnow() if self.status == JobStatus.RUNNING else None
        return None if end is None else end - self.started_at

    @property
    def args(self) -> list[Any]:
        params = self.parameters if isinstance(self.parameters, dict) else {}
        return list(params.get("args") or [])

    @property
    def kwargs(self) -> dict[str, Any]:
        params = self.parameters if isinstance(self.parameters, dict) else {}
        return dict(params.get("kwargs") or {})

    @property
    def payload(self) -> dict[str, Any]:
        """Seed 001's name for a job's parameters: its keyword arguments."""
        return self.kwargs

    @property
    def depends_on(self) -> list[str]:
        from .dependency import JobDependency

        rows = JobDependency.select(JobDependency.depends_on_id).where(
            JobDependency.job_id == self.id
        )
        return [r.depends_on_id for r in rows]

    # -- the seed's transitions, over claims.py
    def mark_as_started(self, worker_name: str | None = None) -> Job:
        """Claim this job for ``worker_name`` now (a claim: attempt +1, fresh lease)."""
        from . import claims

        claimed = claims.start_job(self.id, worker_name=worker_name)
        return self._refresh_from(claimed)

    def mark_as_completed(self, result: Any = None) -> Job:
        from . import claims

        claims.complete_job(self.id, self.attempt, self.lease_token, result)
        return self._refresh_from(Job.get_by_id(self.id))

    def mark_as_failed(
        self, error: str, traceback: str | None = None, *, permanent: bool = False
    ) -> Job:
        """Record a failure: a retry is scheduled while retries remain, else ``failed``."""
        from . import claims

        claims.fail_job(
            self.id, self.attempt, self.lease_token, error, traceback, permanent=permanent
        )
        return self._refresh_from(Job.get_by_id(self.id))

    def update_progress(
        self, percentage: float, message: str | None = None, details: dict | None = None
    ) -> bool:
        """Write progress for the running attempt (``details`` replace the stored ones);
        False when this attempt lost its lease."""
        from jobtui.context import encode_details

        from . import claims

        encoded = None if not details else encode_details(details)
        ok = claims.record_progress(
            self.id, self.attempt, self.lease_token, percentage, message, details=encoded
        )
        if ok:
            self.progress_percentage = claims.clamp_percentage(percentage)
            self.progress_message = claims.clip_message(message)
            self.progress_details = None if encoded is None else json.loads(encoded)
        return ok

    def schedule_retry(self, delay: float | None = None, error: str | None = None) -> Job:
        """Put a running job into ``retrying`` after ``delay`` seconds (policy delay if None)."""
        from . import claims

        claims.fail_job(
            self.id,
            self.attempt,
            self.lease_token,
            error or "retry requested",
            None,
            retry_delay=delay,
            force_retry=True,
        )
        return self._refresh_from(Job.get_by_id(self.id))

    def cancel_job(self, reason: str | None = None) -> Job:
        """Cancel: at once when not running, by request (the supervisor stops it) when running."""
        from . import actions, audit

        audit.audited("cancel", self.id, lambda: actions.cancel_jobs([self.id], reason=reason),
                      arguments={"reason": reason})  # fmt: skip
        return self._refresh_from(Job.get_by_id(self.id))

    def _refresh_from(self, other: Job) -> Job:
        self.__data__ = dict(other.__data__)
        self._dirty.clear()
        return self

    # -- the seed's class-level helpers
    @classmethod
    def create_job(cls, job_type: str, **options: Any) -> Job:
        """Enqueue a job by task name (the seed's factory); options as ``jobtui.enqueue``."""
        from .enqueueing import insert_job

        return cls.get_by_id(insert_job(job_type, **options))

    @classmethod
    def get_pending_jobs(
        cls, queue_name: str | None = None, limit: int = 100, job_type: str | None = None
    ) -> list[Job]:
        """Jobs ready to run now, in claim order; of one queue and of one task (the seed's
        ``job_type`` filter) when given."""
        from .ready_reads import READY_PARTS

        now = utcnow()
        found: list[Job] = []
        for half in READY_PARTS:  # each claim index in claim order (ready_reads.py)
            query = cls.select().where(
                peewee.SQL(half),
                cls.run_at <= now,
                cls.next_retry_at.is_null() | (cls.next_retry_at <= now),
            )
            if queue_name is not None:
                query = query.where(cls.queue_name == queue_name)
            if job_type is not None:
                query = query.where(cls.job_type == job_type)
            found.extend(query.order_by(cls.priority.desc(), cls.run_at, cls.id).limit(limit))
        found.sort(key=lambda job: (-job.priority, job.run_at, job.id))
        return found[:limit]

    @classmethod
    def get_user_jobs(cls, user_id: str, limit: int = 100) -> list[Job]:
        """A user's jobs, newest first."""
        query = cls.select().where(cls.user_id == str(user_id))
        return list(query.order_by(cls.id.desc()).limit(limit))

    @classmethod
    def get_failed_jobs(cls, queue_name: str | None = None, limit: int = 100) -> list[Job]:
        """The dead-letter set, newest failure first."""
        query = cls.select().where(cls.status == JobStatus.FAILED)
        if queue_name is not None:
            query = query.where(cls.queue_name == queue_name)
        return list(query.order_by(cls.failed_at.desc(), cls.id.desc()).limit(limit))

    @classmethod
    def get_by_reference(cls, reference_type: str, reference_id: Any) -> list[Job]:
        """Jobs linked to one business entity, newest first."""
        query = cls.select().where(
            cls.reference_type == reference_type, cls.reference_id == str(reference_id)
        )
        return list(query.order_by(cls.id.desc()))

    @classmethod
    def cleanup_old_jobs(cls, days: float = 7, *, include_failed: bool = False) -> int:
        """Delete ended jobs older than ``days``; returns how many. See ``retention.py``."""
        from . import audit
        from .retention import prune_jobs

        deleted = prune_jobs(older_than=timedelta(days=days), include_failed=include_failed)
        if deleted:  # batches of their own transactions: recorded once they are done
            statuses = "completed, cancelled and failed" if include_failed else (
                "completed and cancelled")  # fmt: skip
            audit.record("purge", f"{statuses} jobs", deleted, arguments={"older_than_days": days})
        return deleted

    @classmethod
    def from_written(cls, row: dict[str, Any]) -> Job:
        """The Job an enqueue just wrote, built from its INSERT parameters (no read back).

        On the hot path of every enqueue: the fields' defaults and converters are worked out
        once per class, and only JSON, timestamps and floats are converted (the row holds
        text, ints and booleans as the model gives them)."""
        defaults, converters = cls._written_plan()
        template = row.get("_template")  # enqueueing.RowTemplate: one shape's fixed columns
        if template is not None:
            fields = template.job_fields
            if fields is None or fields[0] is not cls:
                fields = template.job_fields = (cls, cls._converted(template.row))
            data = fields[1].copy()
            data["id"] = row["id"]
            given = row.get("_arguments")  # (args, kwargs) as the enqueuer gave them
            if given is not None and _plain(given[0]) and _plain(given[1].values()) and _plain_keys(given[1]):  # fmt: skip
                data["parameters"] = {"args": list(given[0]), "kwargs": dict(given[1])}
            else:  # what decoding gives back: lists for tuples, plain types for subclasses
                data["parameters"] = converters["parameters"](row["parameters"])
            stamp = row["created_at"]
            data["created_at"] = created = converters["created_at"](stamp)
            for name in ("updated_at", "run_at"):  # the same moment: parsed once
                value = row[name]
                data[name] = created if value is stamp else converters[name](value)
        else:
            data = cls._converted(row)
        job = cls.__new__(cls)
        job.__data__, job._dirty, job.__rel__ = data, set(), {}
        return job

    @classmethod
    def _written_plan(cls) -> tuple[dict[str, Any], dict[str, Any]]:
        """Each field's default and, for the fields an INSERT's text differs from the
        model's value in (JSON, timestamps, floats), its converter; worked out once."""
        plan = cls.__dict__.get("_written_plan_cache")
        if plan is None:
            fields = cls._meta.fields
            defaults = {name: None if f.default is None or callable(f.default) else f.default
                        for name, f in fields.items()}  # fmt: skip
            converters = {
                name: f.python_value
                for name, f in fields.items()  # text and
                if isinstance(f, JSONText | peewee.DateTimeField | peewee.FloatField)
            }
            # ints and booleans are written as such (build_row): theirs would be identities
            plan = cls._written_plan_cache = (defaults, converters)
        return plan

    @classmethod
    def _converted(cls, row: dict[str, Any]) -> dict[str, Any]:
        """The Job's fields from an INSERT's parameters."""
        defaults, converters = cls._written_plan()
        data = dict(defaults)
        for name, value in row.items():
            if name in defaults:
                convert = converters.get(name)
                data[name] = value if value is None or convert is None else convert(value)
        return data

    def to_dict(self) -> dict[str, Any]:
        """The job as JSON output writes it: the model's field names, ISO 8601 UTC times."""
        from .clock import iso_utc

        out: dict[str, Any] = {}
        for name in self._meta.sorted_field_names:
            value = getattr(self, name)
            out[name] = iso_utc(value) if isinstance(value, datetime) else value
        out.pop("lease_token", None)
        # its runs killed their worker max_crashes times (outcomes.py): failed for good
        out["quarantined"] = self.status == JobStatus.FAILED and self.error_type == "Quarantined"
        return out


#: Values JSON gives back as equal values of the same type (a float too: its text is
#: exact; NaN never got this far, the JSON refuses it).
_PLAIN_TYPES = frozenset({str, int, float, bool, type(None)})


def _plain(values: Any) -> bool:
    for value in values:
        if type(value) not in _PLAIN_TYPES:
            return False
    return True


def _plain_keys(mapping: dict[str, Any]) -> bool:
    for key in mapping:
        if type(key) is not str:
            return False
    return True


def _add_indexes() -> None:
    # claim_jobs for named queues: each queue's ready jobs in claim order (priority, due
    # time, FIFO); the SQLite claim names it (dialect.CLAIM_QUEUE_INDEX). Claim over every
    # queue: all ready jobs in claim order (dialect.CLAIM_ORDER_INDEX). Jobs with a fair
    # key are in neither (the claim never walks past them): jobs_fair_claim holds them.
    for statement in CLAIM_INDEX_SQL:
        Job.add_index(peewee.SQL(statement))
    # Few indexes hold `status`: every claim and every outcome rewrites each of them, and
    # they bound the claim-then-complete rate (dropping three doubled it on SQLite).
    # `jobtui jobs --status S`, the failures view, recovery of running jobs (newest first),
    # and retention (oldest ended jobs first, filtered by updated_at); queue stats and the
    # console's queue pane: counts by (status, queue). Pending jobs are in neither: the
    # claim indexes hold them (ready_reads.py), so an enqueue writes two b-trees fewer.
    for statement in STATUS_INDEX_SQL:
        Job.add_index(peewee.SQL(statement))
    # get_by_reference(reference_type, reference_id), get_user_jobs(user_id) newest first,
    # batch progress and completion checks: only jobs that have the column (SPARSE_INDEX_SQL)
    for statement in SPARSE_INDEX_SQL:
        Job.add_index(peewee.SQL(statement))
    # `jobtui jobs --task T`, the console's task: filter, and the unknown-task sweep
    # (a loose index scan for the distinct task names): jobs not staged; the staged ones,
    # until a claim promotes them into this and the claim indexes (staging.py), apart.
    Job.add_index(peewee.SQL(TASK_INDEX_SQL))
    Job.add_index(peewee.SQL(STAGED_INDEX_SQL))
    # the expiry sweep: live jobs past their deadline.
    Job.add_index(Job.index(Job.deadline, where=Job.deadline.is_null(False)).safe(True))
    # unique_key: one live job per key, enforced by the database.
    Job.add_index(
        Job.index(
            Job.unique_key,
            unique=True,
            where=(Job.unique_key.is_null(False)) & Job.status.in_(list(LIVE)),
        ).safe(True)
    )
    # catalog.rehome_unresolved: jobs enqueued by name before their task was published
    # (few, usually none: the index stays empty and the supervisor's look-up free).
    Job.add_index(peewee.SQL(UNRESOLVED_INDEX_SQL))
    # flow.py: due jobs with a rate key or a concurrency key, in claim order (only they:
    # empty while no job has a key, so it costs nothing then)
    Job.add_index(peewee.SQL(KEYED_INDEX_SQL))


#: Indexes of columns most jobs leave empty hold only the jobs that have them (schema
#: version 14): every lookup compares the column with a value, which both engines know
#: implies IS NOT NULL, so the plans are unchanged. An index entry per job for a NULL
#: cost each enqueue a page write per index: three of the jobs table's ten b-trees, and a
#: quarter of a single enqueue's time on SQLite (bench/store.py, issue 17).
SPARSE_INDEX_SQL = (
    "CREATE INDEX IF NOT EXISTS jobs_reference_type_reference_id ON jobs "
    "(reference_type, reference_id) WHERE reference_type IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS jobs_user_id_id ON jobs (user_id, id) WHERE user_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS jobs_batch_id ON jobs (batch_id) WHERE batch_id IS NOT NULL",
)
#: The same indexes before (schema version 13, every job in each), for the downgrade.
SPARSE_INDEX_SQL_V13 = (
    "CREATE INDEX IF NOT EXISTS jobs_reference_type_reference_id ON jobs "
    "(reference_type, reference_id)",
    "CREATE INDEX IF NOT EXISTS jobs_user_id_id ON jobs (user_id, id)",
    "CREATE INDEX IF NOT EXISTS jobs_batch_id ON jobs (batch_id)",
)
SPARSE_INDEXES = ("jobs_reference_type_reference_id", "jobs_user_id_id", "jobs_batch_id")

#: The statuses the two `status` indexes hold: all but `pending` (schema version 15).
INDEXED_STATUSES = tuple(s.value for s in JobStatus if s is not JobStatus.PENDING)
#: Their condition, as one arm per status: SQLite uses a partial index only for a query
#: term that repeats the index's condition, or one arm of an OR in it, so `status = 'failed'`
#: (a literal or a bound value) walks it, where `status <> 'pending'` would never be used.
STATUS_INDEX_WHERE = "(" + " OR ".join(f"status = '{s}'" for s in INDEXED_STATUSES) + ")"
#: The status indexes (schema version 15); a query that reads every status of a queue
#: repeats STATUS_INDEX_WHERE for the indexed ones and reads pending ones apart.
STATUS_INDEXES = ("jobs_status_id", "jobs_status_queue_name")
STATUS_INDEX_SQL = (
    f"CREATE INDEX IF NOT EXISTS jobs_status_id ON jobs (status, id) WHERE {STATUS_INDEX_WHERE}",
    "CREATE INDEX IF NOT EXISTS jobs_status_queue_name ON jobs (status, queue_name) "
    f"WHERE {STATUS_INDEX_WHERE}",
)
#: The same indexes before (schema version 14, every job in each), for the downgrade.
STATUS_INDEX_SQL_V14 = (
    'CREATE INDEX IF NOT EXISTS "jobs_status_id" ON "jobs" ("status", "id")',
    'CREATE INDEX IF NOT EXISTS "jobs_status_queue_name" ON "jobs" ("status", "queue_name")',
)

#: The claim indexes (shared with the schema step that made them skip fair-keyed jobs).
#: `status` closes the per-queue ones (schema version 15): pending and retrying jobs of a
#: queue are counted from them alone, since the status indexes leave pending jobs out
#: (and `fair_key`, always NULL in jobs_claim_queue: SQLite before 3.41 reads the table
#: for a column the index's own condition tests unless the index holds it).
CLAIM_INDEX_SQL = (
    "CREATE INDEX IF NOT EXISTS jobs_claim_queue ON jobs "
    "(queue_name, priority DESC, run_at, id, status, fair_key) "
    f"WHERE status IN ('pending', 'retrying') AND fair_key IS NULL AND {NOT_STAGED}",
    "CREATE INDEX IF NOT EXISTS jobs_claim_order ON jobs (priority DESC, run_at, id) "
    f"WHERE status IN ('pending', 'retrying') AND fair_key IS NULL AND {NOT_STAGED}",
    "CREATE INDEX IF NOT EXISTS jobs_fair_claim ON jobs "
    "(queue_name, fair_key, priority DESC, run_at, id, status) "
    "WHERE status IN ('pending', 'retrying') AND fair_key IS NOT NULL",
)
#: The two claim indexes that leave staged jobs out since schema version 16, as they
#: were in 15 (every pending job in them): step 15 makes the first, downgrade 16 remakes both.
CLAIM_INDEX_SQL_V15 = (
    "CREATE INDEX IF NOT EXISTS jobs_claim_queue ON jobs "
    "(queue_name, priority DESC, run_at, id, status, fair_key) "
    "WHERE status IN ('pending', 'retrying') AND fair_key IS NULL",
    "CREATE INDEX IF NOT EXISTS jobs_claim_order ON jobs (priority DESC, run_at, id) "
    "WHERE status IN ('pending', 'retrying') AND fair_key IS NULL",
)
#: The claim indexes of schema versions 13 and 14 (the step that made them, and the
#: downgrade from 15; jobs_claim_order is unchanged until 16).
CLAIM_INDEX_SQL_V14 = (
    "CREATE INDEX IF NOT EXISTS jobs_claim_queue ON jobs (queue_name, priority DESC, run_at, id) "
    "WHERE status IN ('pending', 'retrying') AND fair_key IS NULL",
    CLAIM_INDEX_SQL_V15[1],
    "CREATE INDEX IF NOT EXISTS jobs_fair_claim ON jobs "
    "(queue_name, fair_key, priority DESC, run_at, id) "
    "WHERE status IN ('pending', 'retrying') AND fair_key IS NOT NULL",
)
#: The claim indexes before (schema version 7), for the downgrade.
CLAIM_INDEX_SQL_V7 = (
    "CREATE INDEX IF NOT EXISTS jobs_claim_queue ON jobs (queue_name, priority DESC, run_at, id) "
    "WHERE status IN ('pending', 'retrying')",
    "CREATE INDEX IF NOT EXISTS jobs_claim_order ON jobs (priority DESC, run_at, id) "
    "WHERE status IN ('pending', 'retrying')",
)

#: Shared with the migration that adds it (models/migrations.py).
UNRESOLVED_INDEX_SQL = (
    "CREATE INDEX IF NOT EXISTS jobs_unresolved_queue ON jobs (job_type) "
    "WHERE (unset_options & 256) <> 0 AND status IN ('pending', 'retrying', 'waiting')"
)

#: Shared with the migration that adds it (models/migrations.py, step 8); flow.py's
#: keyed walk repeats its WHERE terms, so SQLite can use it.
KEYED_INDEX = "jobs_claim_keyed"
KEYED_INDEX_WHERE = (
    "status IN ('pending', 'retrying') AND (rate_key IS NOT NULL OR concurrency_key IS NOT NULL)"
)
KEYED_INDEX_SQL = (
    f"CREATE INDEX IF NOT EXISTS {KEYED_INDEX} ON jobs (priority DESC, run_at, id) "
    f"WHERE {KEYED_INDEX_WHERE}"
)

_add_indexes()
