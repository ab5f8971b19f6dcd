"""Job dependencies: one row per (dependant, dependency) edge."""

from __future__ import annotations

import peewee

from .base import BaseModel
from .job import Job


class JobDependency(BaseModel):
    job = peewee.ForeignKeyField(Job, column_name="job_id", on_delete="CASCADE")
    depends_on = peewee.ForeignKeyField(Job, column_name="depends_on_id", on_delete="CASCADE")

    class Meta:
        table_name = "job_dependencies"
        primary_key = peewee.CompositeKey("job", "depends_on")
        indexes = (
            # promotion and cascade: the dependants of a job that just ended.
            (("depends_on",), False),
        )
