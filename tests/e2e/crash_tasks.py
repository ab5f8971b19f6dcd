"""Tasks of the crash-loop quarantine and live-scaling tests (imported by the real
``jobtui-supervisor`` beside supervisor_tasks)."""

from __future__ import annotations

import os
import signal
import time

from supervisor_tasks import logged, wait_gate

from jobtui import task


@task(max_retries=5, retry_delay=0.05, retry_jitter=False)
@logged
def exits() -> None:
    """Ends its worker in the middle of the job, as a C extension's abort() would."""
    os._exit(3)


@task(max_retries=5, retry_delay=0.05, retry_jitter=False)
@logged
def kills_itself() -> None:
    """SIGKILLs its own worker, as the kernel's OOM killer would."""
    os.kill(os.getpid(), signal.SIGKILL)


@task(max_retries=5, retry_delay=0.05, retry_jitter=False, max_crashes=4)
@logged
def kills_itself_four_times() -> None:
    """Its task's max_crashes (4) wins over the supervisor's."""
    os.kill(os.getpid(), signal.SIGKILL)


@task(max_retries=3, retry_delay=0.05, retry_jitter=False)
@logged
def raises() -> None:
    """An ordinary exception: never counted as a crash."""
    raise RuntimeError("an ordinary failure")


@task(max_retries=5, retry_delay=0.05, retry_jitter=False)
@logged
def kills_itself_once(marker: str) -> str:
    """SIGKILLs its worker on its first run only (the marker file says it did)."""
    if not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    return "survived"


@task(queue="scaled")
@logged
def held(gate: str) -> int:
    """Runs until the test opens ``gate``: the test counts how many run at once."""
    wait_gate(gate)
    return os.getpid()


@task(queue="scaled")
@logged
def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@task(max_retries=5, retry_delay=0.05, retry_jitter=False, timeout=60)
@logged
def hangs() -> None:
    """C code that never releases the GIL: its worker stops answering and is killed as
    hung once silent past the lease (a crash), long before its timeout."""
    import re

    re.match(r"(a+)+$", "a" * 64 + "b")


@task(max_retries=5, retry_delay=0.05, retry_jitter=False, timeout=0.5)
@logged
def too_slow() -> None:
    """Killed at its timeout: a timeout, never counted as a crash."""
    time.sleep(60)
