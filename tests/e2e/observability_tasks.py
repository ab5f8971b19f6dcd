"""Tasks of the observability tests (issue 15): JSON logs, traces and alerts."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from jobtui import current_job, task

log = logging.getLogger("observability_tasks")


@task(queue="obs", max_retries=0)
def say_and_fail(text: str) -> None:
    """Logs ``text`` from inside the task, then fails with it."""
    log.warning("task says %s", text)
    raise RuntimeError(text)


@task(queue="obs")
def echo(value: object) -> object:
    current_job().progress(50, "halfway")
    return value


@task(queue="obs", max_retries=0)
def boom(text: str = "boom") -> None:
    raise ValueError(text)


@task(queue="slowq")
def wait_for_gate(name: str) -> str:
    """Runs until the test opens the gate ``name`` (a file), at most 30 s."""
    gate = Path(os.environ["JOBTUI_E2E_GATES"]) / name
    deadline = time.monotonic() + 30
    while not gate.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return name


@task(queue="obs")
def with_inner_span() -> str:
    """Starts a span of its own: it must nest under the worker's CONSUMER span."""
    from opentelemetry import trace

    with trace.get_tracer("observability_tasks").start_as_current_span("inner work"):
        return "ok"
