"""jobtui.models: the job store — Peewee models, the database layer, claims and transitions.

Imports neither the console nor the supervisor (and never Textual).
"""

from __future__ import annotations

from .actions import (
    ActionResult,
    cancel_jobs,
    change_priority,
    delete_jobs,
    retry_jobs,
    set_queue_paused,
)
from .attempt import AttemptOutcome, JobAttempt
from .batch import Batch
from .claims import (
    ClaimedJob,
    claim_jobs,
    complete_job,
    fail_job,
    record_heartbeats,
    record_progress,
    start_job,
)
from .db import database_proxy, redact_url, resolve_database_url
from .dependency import JobDependency
from .enqueueing import insert_job, insert_jobs
from .errors import (
    ConfigurationError,
    ConnectionLost,
    DatabaseUnavailable,
    InvalidJob,
    InvalidTransition,
    JobFailed,
    JobNotFound,
    JobtuiError,
    PermanentError,
    SchemaTooNew,
    StoreError,
    TaskNotFound,
)
from .job import Job
from .key_limits import set_key_limit
from .limits import set_queue_limit
from .migrations import MODELS, SCHEMA_VERSION, ensure_schema
from .queries import get_job, list_jobs, list_supervisors, queue_stats
from .queue import Queue
from .rates import set_rate
from .retention import prune_jobs
from .schedule import Schedule, ScheduleFire
from .status import ALL_STATUSES, CLAIMABLE, FINAL, LIVE, JobStatus, Priority
from .store import get_database, use_database
from .worker import Supervisor, Worker

__all__ = [
    "ALL_STATUSES", "CLAIMABLE", "FINAL", "LIVE", "MODELS", "SCHEMA_VERSION", "ActionResult",
    "AttemptOutcome", "Batch", "ClaimedJob", "ConfigurationError", "ConnectionLost", "DatabaseUnavailable",
    "InvalidJob", "InvalidTransition", "Job", "JobAttempt", "JobDependency", "JobFailed",
    "JobNotFound", "JobStatus", "JobtuiError", "PermanentError", "Priority", "Queue",
    "Schedule", "ScheduleFire", "SchemaTooNew", "StoreError", "Supervisor", "TaskNotFound",
    "Worker", "cancel_jobs", "change_priority", "claim_jobs", "complete_job", "database_proxy",
    "delete_jobs", "ensure_schema", "fail_job", "get_database", "get_job", "insert_job",
    "insert_jobs", "list_jobs", "list_supervisors", "prune_jobs", "queue_stats",
    "record_heartbeats", "record_progress", "redact_url", "resolve_database_url", "retry_jobs",
    "set_key_limit", "set_queue_limit", "set_queue_paused", "set_rate", "start_job",
    "use_database",
]  # fmt: skip
