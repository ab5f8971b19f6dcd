"""Tasks of the metrics tests: one of each way a run ends."""

from __future__ import annotations

import os
import signal
import time

from jobtui import current_job, task


@task
def ok(n: int) -> int:
    return n


@task(max_retries=1, retry_delay=0.05, retry_jitter=False)
def fails() -> None:
    raise RuntimeError("always")


@task(max_retries=1, retry_delay=0.05, retry_jitter=False)
def crash_once() -> str:
    if current_job().attempt == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return "second"


@task(timeout=0.5, max_retries=0)
def too_slow() -> None:
    time.sleep(30)


@task
def waits(seconds: float) -> None:
    time.sleep(seconds)


@task(max_retries=1, retry_delay=2, retry_jitter=False)
def retries_late() -> None:
    if current_job().attempt == 1:
        raise RuntimeError("once")
