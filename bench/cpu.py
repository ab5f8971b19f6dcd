"""CPU seconds a drain cost: the daemons' processes and, when the server runs on this
machine, the PostgreSQL backends serving them (bench/peers.py).

Throughput on a shared 2-core machine moves from run to run; the CPU a job costs moves
far less, and it says what bounds a drain: a single connection's backend is one process,
whatever the cores, and the sum over every process is what the cores must pay.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import psutil

_LOCAL = {None, "", "localhost", "127.0.0.1", "::1"}
#: The other client backends of the drain's database: the daemons' connections (ours, the
#: poller's, is left out by pg_backend_pid()).
BACKENDS_SQL = """SELECT pid FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
  AND backend_type = 'client backend'"""


@dataclass
class CpuSplit:
    """CPU seconds, from each process's start to the end of the drain."""

    daemons_s: float  # the daemons and their child processes
    backends_s: float | None  # their server backends; None: not measurable from here
    busiest_backend_s: float | None  # the one that did most (a supervisor's connection)


def _seconds(processes: Iterable[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass  # gone meanwhile
    return total


def on_cpu_seconds(processes: Iterable[psutil.Process]) -> float:
    """CPU seconds by the scheduler's own clock (``/proc/PID/task/*/schedstat``, every
    thread, nanoseconds), where it can be read; else the kernel's tick counts (psutil).

    The ticks are 10 ms samples: an idle daemon's few milliseconds a second read as 0.0 or
    0.1 % over 10 s. The scheduler's clock counts each wake-up's real cost, which is what
    the idle row means to measure (README: on a machine slow to wake, each costs more). A
    thread that ends between two reads takes its time with it: a daemon's live on."""
    total = 0.0
    for process in processes:
        try:
            tasks = os.listdir(f"/proc/{process.pid}/task")
            total += sum(_schedstat_ns(process.pid, tid) for tid in tasks) / 1e9
        except OSError:
            total += _seconds([process])
    return total


def _schedstat_ns(pid: int, tid: str) -> int:
    try:
        with open(f"/proc/{pid}/task/{tid}/schedstat") as stat:
            return int(stat.read().split()[0])
    except FileNotFoundError:
        return 0  # the thread ended meanwhile


def cpu_split(
    daemons: Iterable[psutil.Process], url: str, backend_pids: Callable[[], list[int]]
) -> CpuSplit:
    """``daemons``: every process of the daemons (children included); ``backend_pids``
    runs ``BACKENDS_SQL`` on the poller's connection. Read before the daemons stop."""
    daemons_s = _seconds(daemons)
    if urlsplit(url).hostname not in _LOCAL:
        return CpuSplit(daemons_s, None, None)
    each = []
    for pid in backend_pids():
        try:
            each.append(_seconds([psutil.Process(pid)]))
        except psutil.Error:
            return CpuSplit(daemons_s, None, None)  # another user's processes: unreadable
    return CpuSplit(daemons_s, sum(each), max(each, default=0.0))
