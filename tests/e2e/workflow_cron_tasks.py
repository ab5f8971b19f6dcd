"""A task with ``@task(cron=...)``: every supervisor that imports it declares the schedule."""

from __future__ import annotations

from jobtui import task


@task(cron="* * * * * *")
def tick() -> None:
    return None


@task
def noop(*args: object) -> None:
    return None
