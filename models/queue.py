"""Queue control rows: pausing and concurrency are set here and read by supervisors."""

from __future__ import annotations

import peewee

from .base import BaseModel, UTCDateTime, now_default


class Queue(BaseModel):
    name = peewee.CharField(max_length=100, primary_key=True)
    paused = peewee.BooleanField(default=False)
    concurrency = peewee.IntegerField(null=True)  # workers across all supervisors; NULL: no cap
    updated_at = UTCDateTime(default=now_default)

    class Meta:
        table_name = "queues"
