"""Tasks of the flow-control tests (test_supervisor_flow.py): each appends ``job_id key
begin end`` (epoch seconds) to the log named by ``$JOBTUI_E2E_FLOW_LOG``, outside the
database, so a test measures when jobs really began and how many of a key overlapped."""

from __future__ import annotations

import os
import time

from supervisor_tasks import _wrap, record

from jobtui import current_job, task


def _record(key: str, begin: float, end: float) -> None:
    record("start")  # the Jepsen checker's execution log (supervisor_tasks.py)
    record("end")
    line = f"{current_job().id} {key or '-'} {begin:.6f} {end:.6f}\n".encode()
    fd = os.open(os.environ["JOBTUI_E2E_FLOW_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)  # one write with O_APPEND: never torn
    finally:
        os.close(fd)


@task(name="flow.tick")
def tick(key: str = "", hold_s: float = 0.0) -> int:
    begin = time.time()
    if hold_s:
        time.sleep(hold_s)
    _record(key, begin, time.time())
    return _wrap(1)


@task(name="flow.declared_rate", rate_limit="4/s")
def declared_rate(key: str = "") -> int:
    begin = time.time()
    _record(key, begin, time.time())
    return _wrap(1)


@task(name="flow.declared_keys", key_concurrency=1)
def declared_keys(key: str = "", hold_s: float = 0.2) -> int:
    begin = time.time()
    time.sleep(hold_s)
    _record(key, begin, time.time())
    return _wrap(1)


def read_log(path: str) -> list[tuple[str, str, float, float]]:
    """(job id, key, begin, end) of every run logged."""
    if not os.path.exists(path):
        return []
    out = []
    with open(path) as f:
        for line in f:
            job_id, key, begin, end = line.split()
            out.append((job_id, key, float(begin), float(end)))
    return out


def max_in_window(times: list[float], window_s: float) -> int:
    """The most starts in any half-open window ``[t, t + window_s)``."""
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window_s:
            j += 1
        best = max(best, i - j + 1)
    return best


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most runs in progress at one moment."""
    events = sorted([(b, 1) for b, _ in intervals] + [(e, -1) for _, e in intervals])
    best = now = 0
    for _, delta in events:  # an end at the same moment as a begin comes first
        now += delta
        best = max(best, now)
    return best
