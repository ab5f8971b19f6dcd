"""Queue control rows: pausing, concurrency and priority aging are set here and read by
supervisors."""

from __future__ import annotations

import peewee

from .base import BaseModel, UTCDateTime, now_default


class Queue(BaseModel):
    name = peewee.CharField(max_length=100, primary_key=True)
    paused = peewee.BooleanField(default=False)
    concurrency = peewee.IntegerField(null=True)  # workers across all supervisors; NULL: no cap
    updated_at = UTCDateTime(default=now_default)
    # priority aging (aging.py): seconds a job waits before each step up (NULL: the
    # supervisor's --priority-aging; 0: off), and when a supervisor last aged its jobs
    priority_aging_s = peewee.FloatField(null=True)
    aged_at = UTCDateTime(null=True)

    class Meta:
        table_name = "queues"
