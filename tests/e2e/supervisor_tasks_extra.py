"""A task only some supervisors of the fault tests import (a job of it is left for them)."""

from __future__ import annotations

from supervisor_tasks import logged

from jobtui import task


@task
@logged
def elsewhere() -> str:
    return "ran where it is known"
