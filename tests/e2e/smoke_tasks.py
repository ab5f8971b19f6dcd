"""Tasks for the supervisor smoke tests (imported by the real jobtui-supervisor)."""

from __future__ import annotations

import time

from jobtui import PermanentError, current_job, task


@task
def add(a: int, b: int) -> int:
    return a + b


@task
def stepped(steps: int) -> int:
    for i in range(steps):
        current_job().progress(100 * i / steps, f"step {i}")
        time.sleep(0.05)
    return steps


@task
def refuse() -> None:
    raise PermanentError("refused")


@task(timeout=0.5, max_retries=0)
def sleepy() -> None:
    time.sleep(60)


@task
async def doubled(x: int) -> int:
    return 2 * x
