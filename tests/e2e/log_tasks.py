"""Tasks of the job-log and live-stack tests (issue 16), imported by the real supervisor."""

from __future__ import annotations

import ctypes
import logging
import os
import subprocess
import sys
import time

from jobtui import task

log = logging.getLogger("log_tasks")


def _gate(name: str, deadline_s: float = 60.0) -> None:
    path = os.path.join(os.environ["JOBTUI_E2E_GATES"], name)
    deadline = time.monotonic() + deadline_s
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)


@task
def chatty() -> str:
    """Every way a job writes: print, stderr, logging (INFO kept, DEBUG not), a child
    process that inherits stdout and stderr, and a last line with no newline."""
    print("printed to stdout")
    print("printed to stderr", file=sys.stderr)
    log.info("an info record %d", 7)
    log.debug("a debug record")
    logging.getLogger().warning("a root warning")
    subprocess.run(["sh", "-c", "echo child stdout; echo child stderr >&2"], check=True)
    os.write(1, b"no newline at the end")
    return "ok"


@task(log_level="DEBUG")
def debug_chatty() -> None:
    log.debug("a debug record kept")


@task
def ticking(gate: str) -> None:
    """One line, then waits for the test's gate, then one more line."""
    print("tick 1", flush=True)
    _gate(gate)
    print("tick 2")


@task
def flood(lines: int, width: int) -> int:
    for n in range(lines):
        print(f"{n:06d} " + "x" * (width - 8))
    return lines


@task
def hostile(texts: list[str]) -> None:
    """Writes each hostile text to stdout, stderr and logging; leaves a child behind that
    prints one after the job has ended (output no job owns)."""
    for text in texts:
        print(text)
        print(text, file=sys.stderr)
        log.warning("%s", text)
    subprocess.Popen(["sh", "-c", "sleep 0.3; printf '\\033]0;PWNED\\007 late output\\n'"])


def wait_here(gate: str) -> None:
    _gate(gate)


@task
def blocked(gate: str) -> None:
    wait_here(gate)


@task
def holds_the_gil(seconds: int) -> None:
    """A C call that keeps the GIL (``PyDLL`` does not release it): libc's sleep."""
    with open(os.path.join(os.environ["JOBTUI_E2E_GATES"], "in-c"), "w"):
        pass  # the test asks once this exists (the job's output could not tell it: no
    ctypes.PyDLL(None).sleep(seconds)  # thread of this worker runs until the call returns)


@task
def says_then_waits(text: str, gate: str) -> None:
    print(text, flush=True)
    wait_here(gate)
