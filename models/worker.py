"""Heartbeat rows of supervisors and of their worker processes."""

from __future__ import annotations

import peewee

from .base import BaseModel, JSONText, UTCDateTime, now_default


class Supervisor(BaseModel):
    name = peewee.CharField(max_length=200, primary_key=True)
    host = peewee.CharField(max_length=255)
    pid = peewee.IntegerField()
    process_started_at = peewee.DoubleField(null=True)  # psutil create_time: tells pid reuse
    started_at = UTCDateTime(default=now_default)
    heartbeat_at = UTCDateTime(default=now_default)
    state = peewee.CharField(max_length=16, default="running")  # running, quiet, stopping, stopped
    tasks = JSONText(null=True)  # task names it can run: others leave their jobs to it
    queues = JSONText(null=True)  # {queue: workers}
    version = peewee.CharField(max_length=32, null=True)
    cpu_percent = peewee.FloatField(default=0)
    rss_bytes = peewee.BigIntegerField(default=0)
    jobs_done = peewee.BigIntegerField(default=0)
    jobs_failed = peewee.BigIntegerField(default=0)
    #: its --heartbeat-interval: readers call it and its workers stale after 3 of them
    heartbeat_interval_s = peewee.FloatField(null=True)
    #: the schema version its jobtui runs (migrations.SCHEMA_VERSION): ``db downgrade``
    #: refuses while a live one runs a newer schema than the target
    schema_version = peewee.IntegerField(null=True)
    #: live scaling (supervisor/scaling.py): ``{queue: N}`` asked by ``jobtui scale``, not
    #: yet applied (NULL: nothing asked); the supervisor clears it once ``queues`` says N
    scale_request = JSONText(null=True)
    #: ``{queue: [min, max]}`` of the queues it autoscales (NULL: none)
    autoscale = JSONText(null=True)

    class Meta:
        table_name = "supervisors"
        indexes = (
            # recovery: supervisors of a host; liveness checks by heartbeat age.
            (("host", "heartbeat_at"), False),
        )


class Worker(BaseModel):
    name = peewee.CharField(max_length=200, primary_key=True)
    supervisor = peewee.ForeignKeyField(
        Supervisor, column_name="supervisor_name", on_delete="CASCADE", backref="workers"
    )
    host = peewee.CharField(max_length=255)
    pid = peewee.IntegerField()
    process_started_at = peewee.DoubleField(null=True)
    started_at = UTCDateTime(default=now_default)
    heartbeat_at = UTCDateTime(default=now_default)
    state = peewee.CharField(max_length=16, default="idle")  # idle, busy, stopping
    queue_name = peewee.CharField(max_length=100, null=True)
    current_job_id = peewee.CharField(max_length=36, null=True)
    cpu_percent = peewee.FloatField(default=0)
    rss_bytes = peewee.BigIntegerField(default=0)
    jobs_done = peewee.BigIntegerField(default=0)
    jobs_failed = peewee.BigIntegerField(default=0)

    class Meta:
        table_name = "workers"
        indexes = (
            # the workers of one supervisor (console, recovery).
            (("supervisor",), False),
        )
