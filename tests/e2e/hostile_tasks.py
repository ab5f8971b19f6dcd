"""Tasks whose text is hostile (issue 12): progress messages, errors and results carry
escape sequences, for the terminal-safety tests of the supervisor's log and the console."""

from __future__ import annotations

from jobtui import current_job, task


@task(max_retries=1, retry_delay=0.05, retry_jitter=False)
def hostile_failure(text: str) -> None:
    """Reports ``text`` as its progress, then fails with it, twice (one retry)."""
    current_job().progress(10, text)
    raise RuntimeError(text)


@task
def hostile_result(text: str) -> dict:
    current_job().progress(50, text)
    return {"echo": text}
