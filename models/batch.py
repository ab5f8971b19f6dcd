"""Batches: jobs enqueued together, with callbacks once all of them have ended."""

from __future__ import annotations

import peewee

from .base import BaseModel, UTCDateTime, now_default
from .ids import new_job_id


class Batch(BaseModel):
    id = peewee.CharField(max_length=36, primary_key=True, default=new_job_id)
    on_success = peewee.CharField(max_length=200, null=True)
    on_failure = peewee.CharField(max_length=200, null=True)
    on_complete = peewee.CharField(max_length=200, null=True)
    total = peewee.IntegerField(default=0)
    created_at = UTCDateTime(default=now_default)
    finished_at = UTCDateTime(null=True)  # set once, by whoever wins the race to finish it
    outcome = peewee.CharField(max_length=16, null=True)  # success | failure

    class Meta:
        table_name = "batches"
