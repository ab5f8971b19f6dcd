"""What the supervisor reads about processes: start time, state, CPU and memory, children.

On Linux it reads ``/proc`` as psutil does there, with psutil's formulas, so that a start
time written here equals the one psutil computes elsewhere (the console, another host's
tools). psutil itself is not imported: it is a megabyte of modules in a daemon whose memory
is part of its contract, and the supervisor needs five numbers of it. On other systems
psutil answers.
"""

from __future__ import annotations

import os
import sys
import time

IS_LINUX = sys.platform.startswith("linux")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if IS_LINUX else 100
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if IS_LINUX else 4096

# Fields of /proc/PID/stat after the ")" that closes the command name (proc(5), from 3).
_STATE, _PPID, _UTIME, _STIME, _STARTTIME = 0, 1, 11, 12, 19


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (which may hold spaces)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:  # gone, or never there
        return None
    return data[data.rfind(b")") + 2 :].decode("ascii", "replace").split()


def _boot_time() -> float:
    with open("/proc/stat", "rb") as f:
        for line in f:
            if line.startswith(b"btime"):
                return float(line.split()[1])
    raise RuntimeError("no btime line in /proc/stat")


def _started(fields: list[str]) -> float:
    """psutil's create_time: clock ticks since boot, plus the boot time."""
    return float(fields[_STARTTIME]) / CLOCK_TICKS + _boot_time()


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process (one scan of /proc, as psutil's ppid map)."""
    parent_of = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat(int(name))
            if fields is not None:
                parent_of[int(name)] = int(fields[_PPID])
    return parent_of


def start_time(pid: int) -> float | None:
    """When the process started (seconds since the epoch), as psutil's ``create_time``:
    with the pid it names one process, even after the pid is reused. None if it is gone."""
    if not IS_LINUX:
        import psutil

        try:
            return psutil.Process(pid).create_time()
        except psutil.Error:
            return None
    fields = _stat(pid)
    return None if fields is None else _started(fields)


def is_running(pid: int, started_at: float | None) -> bool:
    """Whether the process ``pid`` that started at ``started_at`` still runs (a zombie
    does not; a pid reused by another process does not)."""
    if not IS_LINUX:
        import psutil

        try:
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return False
            return started_at is None or abs(proc.create_time() - started_at) < 0.01
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return False
        except psutil.AccessDenied:
            return True
    fields = _stat(pid)
    if fields is None or fields[_STATE] in ("Z", "X", "x"):
        return False
    if started_at is None:
        return True
    return abs(_started(fields) - started_at) < 0.01


def children(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` (a scan of /proc, as psutil's ``children``)."""
    if not IS_LINUX:
        import psutil

        try:
            return [child.pid for child in psutil.Process(pid).children()]
        except psutil.Error:
            return []
    return [child for child, parent in _parents().items() if parent == pid]


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``: children, their children, and so on."""
    if not IS_LINUX:
        import psutil

        try:
            return [p.pid for p in psutil.Process(pid).children(recursive=True)]
        except psutil.Error:
            return []
    parent_of = _parents()
    below, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [child for child, ppid in parent_of.items() if ppid == parent]
        below.extend(kids)
        frontier.extend(kids)
    return below


class Usage:
    """One process's CPU % since the previous reading, and its resident memory, as
    psutil's ``cpu_percent(None)`` and ``memory_info().rss`` report them."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._proc = None
        self._last = self._cpu_seconds()

    def _cpu_seconds(self) -> tuple[float, float] | None:
        fields = _stat(self.pid)
        if fields is None:
            return None
        used = (int(fields[_UTIME]) + int(fields[_STIME])) / CLOCK_TICKS
        return used, time.monotonic()

    def read(self) -> tuple[float, int] | None:
        """(CPU %, RSS in bytes); None once the process is gone."""
        if not IS_LINUX:
            return self._read_psutil()
        now = self._cpu_seconds()
        try:
            with open(f"/proc/{self.pid}/statm", "rb") as f:
                rss = int(f.read().split()[1]) * PAGE_SIZE
        except (OSError, IndexError, ValueError):
            return None
        if now is None:
            return None
        before, self._last = self._last, now
        if before is None or now[1] <= before[1]:
            return 0.0, rss
        return round(100 * (now[0] - before[0]) / (now[1] - before[1]), 1), rss

    def _read_psutil(self) -> tuple[float, int] | None:
        import psutil

        try:
            if self._proc is None:
                self._proc = psutil.Process(self.pid)
                self._proc.cpu_percent(None)
            return self._proc.cpu_percent(None), self._proc.memory_info().rss
        except psutil.Error:
            return None
