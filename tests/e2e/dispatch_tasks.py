"""Tasks of the dispatch tests (prefetch fairness, requeue order, bad parameters), imported
by the real ``jobtui-supervisor`` beside supervisor_tasks.

``timed`` appends ``name pid start end`` (``time.monotonic()``, one clock for every process
on Linux) to ``$JOBTUI_E2E_GATES/timings.log``, so a test can tell from recorded moments
when each worker became free and when each job began.
"""

from __future__ import annotations

import os
import signal
import time

from supervisor_tasks import logged

from jobtui import current_job, task


def _append(line: str) -> None:
    path = os.path.join(os.environ["JOBTUI_E2E_GATES"], "timings.log")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@task(max_retries=0)
@logged
def timed(name: str, seconds: float) -> str:
    """Sleep ``seconds``; record when it began and ended."""
    began = time.monotonic()
    time.sleep(seconds)
    _append(f"{name} {os.getpid()} {began:.6f} {time.monotonic():.6f}\n")
    return name


@task(max_retries=1, retry_delay=0.05, retry_jitter=False)
@logged
def mistyped(value: int) -> int:
    """A TypeError from inside the task: an ordinary error, retried."""
    return value + "1"  # type: ignore[operator]


@task(max_retries=3, retry_delay=0.05, retry_jitter=False)
@logged
def greet(to: str, subject: str = "hello") -> str:
    return f"{subject}, {to}"


@task(max_retries=2, retry_delay=0.5, retry_jitter=False)
@logged
def crash_once(name: str) -> str:
    """Its first run kills its worker (a crash); the retry records when it began."""
    began = time.monotonic()
    if current_job().attempt == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    _append(f"{name} {os.getpid()} {began:.6f} {time.monotonic():.6f}\n")
    return name
