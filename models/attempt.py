"""One row per attempt of a job: who ran it, when, and how it ended."""

from __future__ import annotations

import peewee

from .base import BaseModel, JSONText, UTCDateTime
from .job import Job


class AttemptOutcome:
    COMPLETED = "completed"
    FAILED = "failed"  # an error; the job retried or failed by policy
    TIMED_OUT = "timed_out"
    CRASHED = "crashed"  # the worker died (signal) or was lost with its supervisor
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # put back by a shutdown; no retry consumed


class JobAttempt(BaseModel):
    id = peewee.AutoField()
    # No index of its own: the unique (job, attempt) index below serves lookups by job, and
    # each index is one more page every outcome's insert writes (schema version 2).
    job = peewee.ForeignKeyField(Job, column_name="job_id", on_delete="CASCADE",
                                 backref="attempts", index=False)  # fmt: skip
    attempt = peewee.IntegerField()
    worker_name = peewee.CharField(max_length=200, null=True)
    supervisor_name = peewee.CharField(max_length=200, null=True)
    pid = peewee.IntegerField(null=True)
    host = peewee.CharField(max_length=255, null=True)
    started_at = UTCDateTime(null=True)
    ended_at = UTCDateTime(null=True)
    outcome = peewee.CharField(max_length=16)
    error_type = peewee.CharField(max_length=200, null=True)
    error_message = peewee.TextField(null=True)
    error_traceback = peewee.TextField(null=True)
    #: The parameters this attempt ran with, once an operator edited them (``jobtui retry
    #: ID --args``); NULL: the job's own parameters, as they still are (schema version 8).
    #: Stamped at the edit, so the outcome path never copies parameters.
    parameters = JSONText(null=True)

    class Meta:
        table_name = "job_attempts"
        indexes = (
            # the attempts tab of a job, in order; one row per (job, attempt).
            (("job", "attempt"), True),
        )
