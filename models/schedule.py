"""Cron schedules and their fire record (one row per schedule and nominal fire time)."""

from __future__ import annotations

import peewee

from .base import BaseModel, JSONText, UTCDateTime, now_default


class Schedule(BaseModel):
    name = peewee.CharField(max_length=200, primary_key=True)
    cron = peewee.CharField(max_length=200)
    job_type = peewee.CharField(max_length=200)
    args = JSONText(default=list)
    kwargs = JSONText(default=dict)
    options = JSONText(default=dict)  # enqueue options for each job (queue, priority, ...)
    timezone = peewee.CharField(max_length=64, default="UTC")
    catch_up = peewee.CharField(max_length=8, default="skip")  # skip | once
    enabled = peewee.BooleanField(default=True)
    last_fire_at = UTCDateTime(null=True)
    last_job_id = peewee.CharField(max_length=36, null=True)
    next_fire_at = UTCDateTime(null=True)
    created_at = UTCDateTime(default=now_default)
    updated_at = UTCDateTime(default=now_default)

    class Meta:
        table_name = "schedules"


class ScheduleFire(BaseModel):
    id = peewee.AutoField()
    schedule = peewee.ForeignKeyField(
        Schedule, column_name="schedule_name", on_delete="CASCADE", backref="fires"
    )
    fire_time = UTCDateTime()
    job_id = peewee.CharField(max_length=36, null=True)
    created_at = UTCDateTime(default=now_default)

    class Meta:
        table_name = "schedule_fires"
        indexes = (
            # the cron rule: a fire time yields one job however many supervisors race for it.
            (("schedule", "fire_time"), True),
        )
