"""Tasks of the supervisor fault tests, imported by the real ``jobtui-supervisor``.

Every task appends ``job_id attempt pid event`` lines to the execution log named by
``$JOBTUI_E2E_LOG`` — outside the database, so the checker can compare what really ran
with what the rows say (RELIABILITY.md, "Test like Jepsen"). A task's result is
``{"value": ..., "attempt": n, "pid": p}``: the stored result names the attempt that made it.

Tasks that must block wait for a *gate*: a file the test creates in ``$JOBTUI_E2E_GATES``
(each wait has its own deadline, so a forgotten gate never hangs a worker forever).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from jobtui import PermanentError, current_job, task

GATE_DEADLINE_S = 60.0


def record(event: str) -> None:
    """Append one line to the execution log (one ``write`` with O_APPEND: never torn)."""
    job = current_job()
    line = f"{job.id} {job.attempt} {os.getpid()} {event}\n".encode()
    fd = os.open(os.environ["JOBTUI_E2E_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def wait_gate(name: str, deadline_s: float = GATE_DEADLINE_S) -> None:
    """Block until the test opens the gate ``name`` (creates the file)."""
    path = os.path.join(os.environ["JOBTUI_E2E_GATES"], name)
    give_up = time.monotonic() + deadline_s
    while not os.path.exists(path):
        if time.monotonic() >= give_up:
            raise TimeoutError(f"gate {name} never opened")
        time.sleep(0.01)


def _wrap(value: Any) -> dict[str, Any]:
    return {"value": value, "attempt": current_job().attempt, "pid": os.getpid()}


def logged(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Record start and end around the task; wrap its value with the attempt and pid."""
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            record("start")
            value = await fn(*args, **kwargs)
            record("end")
            return _wrap(value)

        return run_async

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        record("start")
        value = fn(*args, **kwargs)
        record("end")
        return _wrap(value)

    return run


# ------------------------------------------------------------------ the happy path


@task
@logged
def add(a: int, b: int) -> int:
    return a + b


@task
@logged
def quick(n: int) -> int:
    return n


@task
@logged
def stamp() -> float:
    """When it began."""
    return time.time()


@task
@logged
async def async_double(x: int) -> int:
    await asyncio.sleep(0.01)
    return 2 * x


@task
@logged
def progress_then_gate(gate: str) -> str:
    current_job().progress(50, "halfway")
    wait_gate(gate)
    return "done"


@task
@logged
def details_then_gate(gate: str, progress_callback=None) -> str:
    """Progress with details (seed 002), through ``current_job()`` and through the
    ProgressCallback the worker passes. Each pair of reports comes inside the worker's
    interval: the second is held back, and must still reach the row (with the worker's
    next beat while the task waits, before the outcome at the end)."""
    current_job().progress(30, "loading", rows=0, phase="load")
    progress_callback(60, "loaded", rows=1200)
    wait_gate(gate)
    progress_callback(90, "saving", rows=1500)
    progress_callback(95, "saved", phase="save")
    return "done"


@task(retry_delay=0.05, retry_jitter=False)
@logged
def gated(gate: str) -> str:
    """Waits for its gate on every attempt."""
    wait_gate(gate)
    return gate


@task(retry_delay=0.05, retry_jitter=False)
@logged
def hold_first(gate: str) -> int:
    """Attempt 1 waits for the gate (a test kills or fences it meanwhile); later attempts
    return at once."""
    if current_job().attempt == 1:
        wait_gate(gate)
    return current_job().attempt


# ------------------------------------------------------------------ timeouts and kills


@task(timeout=1, max_retries=0)
@logged
def sleeper() -> None:
    time.sleep(60)


@task(timeout=1, max_retries=0)
@logged
def stubborn() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    record("ignoring-sigterm")
    time.sleep(60)


_DAEMON = """
import os, sys, time
if os.fork():
    os._exit(0)
os.setsid()
if os.fork():
    os._exit(0)
with open(sys.argv[1] + ".tmp", "w") as out:
    out.write(str(os.getpid()))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(120)
"""


@task(timeout=1, max_retries=0)
@logged
def spawner(pidfile: str) -> None:
    """Starts a grandchild that double-forks into its own session (a daemon), then hangs."""
    subprocess.run([sys.executable, "-c", _DAEMON, pidfile], check=True)
    while not os.path.exists(pidfile):
        time.sleep(0.01)
    record("daemon-started")
    time.sleep(60)


@task(max_retries=0)
@logged
def holds_the_gil() -> None:
    """Catastrophic backtracking: C code that never releases the GIL (the worker's
    heartbeat thread cannot run)."""
    re.match(r"(a+)+$", "a" * 64 + "b")


@task(max_retries=0)
@logged
def cooperative() -> str:
    give_up = time.monotonic() + GATE_DEADLINE_S
    while not current_job().cancel_requested:
        if time.monotonic() >= give_up:
            raise TimeoutError("never cancelled")
        time.sleep(0.02)
    record("cancel-seen")
    return "stopped early"


@task(max_retries=0)
@logged
def oblivious() -> None:
    time.sleep(60)


# ------------------------------------------------------------------ retries


@task(max_retries=5, retry_delay=0.05, retry_jitter=False)
@logged
def nap(seconds: float) -> float:
    """A short job a fault can hit while it runs (the chaos soak's staple); it reports
    progress halfway."""
    time.sleep(seconds / 2)
    current_job().progress(50, "halfway")
    time.sleep(seconds / 2)
    return seconds


@task(max_retries=3, retry_delay=0.2, retry_backoff=2, retry_jitter=False)
@logged
def flaky(failures: int) -> int:
    attempt = current_job().attempt
    if attempt <= failures:
        raise RuntimeError(f"flaky failure on attempt {attempt}")
    return attempt


@task(max_retries=3)
@logged
def refuse() -> None:
    raise PermanentError("refused for good")


@task(max_retries=2, retry_delay=0.05, retry_jitter=False)
@logged
def always_fail() -> None:
    raise RuntimeError(f"failure {current_job().attempt}")


@task(max_retries=3, retry_delay=0.05, permanent_errors=(ValueError,))
@logged
def picky() -> None:
    raise ValueError("not a value I accept")


# ------------------------------------------------------------------ bad results


@task(max_retries=3)
@logged
def unserialisable() -> object:
    return object()


@task(max_retries=3)
@logged
def huge(size: int) -> str:
    return "x" * size


@task
@logged
def blob_length(blob: str) -> int:
    return len(blob)


@task
@logged
def forks_and_returns_twice() -> int:
    """Both the worker and a child it forks return from the task (a careless os.fork)."""
    child = os.fork()
    if child:
        os.waitpid(child, 0)
    return os.getpid()
