"""Tasks for the workflow end-to-end tests (imported by the real jobtui-supervisor)."""

from __future__ import annotations

import json
import os
import time

from jobtui import PermanentError, current_job, task


def _append(path: str, line: str) -> None:
    with open(path, "a") as out:
        out.write(line + "\n")


@task
def step(path: str, name: str, seconds: float = 0.0) -> str:
    _append(path, f"start {name} {time.time():.6f}")
    time.sleep(seconds)
    _append(path, f"end {name} {time.time():.6f}")
    return name


@task
def item(n: int, sleep_s: float = 0.0) -> int:
    if sleep_s:
        time.sleep(sleep_s)
    return n


@task
def refuse(reason: str = "refused") -> None:
    raise PermanentError(reason)


@task
def callback(batch_id: str, label: str, job_id: str | None = None, error: str | None = None) -> str:
    """A batch callback; on_failure's also names the failed job and its error."""
    return label


@task(max_retries=3, retry_delay=0.05, retry_jitter=False, permanent_errors=(ValueError,))
def bad_value() -> None:
    raise ValueError("not a number")


@task(max_retries=2, retry_delay=0.05, retry_jitter=False, retry_errors=(ConnectionError,))
def network(kind: str) -> None:
    raise ConnectionError("reset by peer") if kind == "conn" else KeyError("missing")


def _write_payload(payload: dict) -> None:
    _append(os.environ["WORKFLOW_HOOK_FILE"], json.dumps(payload))


@task(on_failure=_write_payload)
def hooked() -> None:
    raise PermanentError("hook me")


@task(queue="callbacks", priority=7)
def queued_callback(batch_id: str, label: str) -> str:
    return label


@task(on_failure=_write_payload, max_retries=0)
def hooked_sleeper(seconds: float) -> None:
    time.sleep(seconds)


@task
def derive_key(password: str) -> str:
    import hashlib  # the daemon imports Peewee without OpenSSL; scrypt is OpenSSL-only

    return hashlib.scrypt(password.encode(), salt=b"salt", n=16, r=8, p=1, dklen=16).hex()


@task(max_retries=2, retry_delay=0.4, retry_backoff=1.0, retry_jitter=False)
def flaky_twice() -> str:
    attempt = current_job().attempt
    if attempt < 3:
        raise RuntimeError(f"attempt {attempt} fails")
    return "ok"
