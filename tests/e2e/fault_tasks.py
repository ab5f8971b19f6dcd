"""Tasks for the fault tests. Each appends (job, attempt, pid, event) to the execution log
named by JOBTUI_TEST_LOG — the Jepsen-style record the checker reads (RELIABILITY.md)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from jobtui import current_job, task


def _log(event: str) -> None:
    job = current_job()
    with open(os.environ["JOBTUI_TEST_LOG"], "a") as out:
        out.write(f"{job.id} {job.attempt} {os.getpid()} {event}\n")


@task
def record(n: int = 0) -> int:
    _log("run")
    return n


@task
def sleep_then_return(seconds: float) -> float:
    _log("run")
    time.sleep(seconds)
    _log("done")
    return seconds


@task
def ignore_sigterm(seconds: float) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _log("run")
    time.sleep(seconds)


@task
def spawn_daemon(pid_file: str) -> None:
    """A grandchild that double-forks into its own session, then sleeps for a long time."""
    _log("run")
    code = (
        "import os, sys, time\n"
        "if os.fork(): sys.exit(0)\n"
        "os.setsid()\n"
        "if os.fork(): sys.exit(0)\n"
        f"open({pid_file!r}, 'w').write(str(os.getpid()))\n"
        "time.sleep(300)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    time.sleep(300)


@task
def cooperative(seconds: float) -> str:
    _log("run")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if current_job().cancel_requested:
            return "stopped"
        time.sleep(0.02)
    return "finished"


@task
def unserialisable() -> object:
    return object()


@task
def huge() -> str:
    return "x" * 10_000
