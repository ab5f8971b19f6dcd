"""A 1 ms ticker that measures how late an event loop wakes it (bench.aio and the aio tests).

Lag is the actual minus the expected wake-up of ``asyncio.sleep(0.001)``. On a loaded
machine (a shared 2-core box at load 10) part of that lag is the kernel's, not the
process's: the loop thread was runnable but waited for a CPU, or a jobtui thread holding
the GIL was preempted and waited for one before it could hand the GIL back. Linux counts
that wait per thread (``/proc/self/task/TID/schedstat``, second field, ns), so
``worst_loop_ms`` subtracts from each tick the loop thread's wait plus the longest wait of
any ``jobtui-*`` thread, and leaves what the process did: a blocked loop, or the GIL held
by a running thread. Elsewhere both figures are the raw lag.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time

SCHEDSTAT = "/proc/self/task/{}/schedstat"


class LagTicker:
    """``async with LagTicker() as t: ...`` then ``t.worst_ms``, ``t.worst_loop_ms``."""

    def __init__(self, period_s: float = 0.001) -> None:
        self.period_s = period_s
        self.lags: list[float] = []  # raw, s
        self.loop_lags: list[float] = []  # minus the time spent waiting for a CPU, s
        self._task: asyncio.Task | None = None
        self._done = asyncio.Event()
        self._fds: dict[int, int] = {}

    def _waits_s(self) -> dict[int, float]:
        """Run-queue wait so far (s) of the loop thread and of each jobtui thread."""
        tids = [threading.get_native_id()] + [
            t.native_id for t in threading.enumerate()
            if t.name.startswith("jobtui-") and t.native_id is not None
        ]  # fmt: skip
        waits = {}
        for tid in tids:
            fd = self._fds.get(tid)
            try:
                if fd is None:
                    fd = self._fds[tid] = os.open(SCHEDSTAT.format(tid), os.O_RDONLY)
                waits[tid] = int(os.pread(fd, 128, 0).split()[1]) / 1e9
            except (OSError, IndexError, ValueError):
                continue  # not Linux, or the thread ended
        return waits

    def _not_ours_s(self, before: dict[int, float], after: dict[int, float]) -> float:
        me = threading.get_native_id()
        grew = [after[t] - before[t] for t in after if t in before and t != me]
        return after.get(me, 0.0) - before.get(me, 0.0) + max(grew, default=0.0)

    async def _tick(self) -> None:
        try:
            while not self._done.is_set():
                waits, before = self._waits_s(), time.perf_counter()
                await asyncio.sleep(self.period_s)
                lag = max(0.0, time.perf_counter() - before - self.period_s)
                self.lags.append(lag)
                self.loop_lags.append(max(0.0, lag - self._not_ours_s(waits, self._waits_s())))
        finally:
            for fd in self._fds.values():
                os.close(fd)

    async def __aenter__(self) -> LagTicker:
        self._task = asyncio.create_task(self._tick())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._done.set()
        assert self._task is not None
        await self._task

    @property
    def worst_ms(self) -> float:
        return max(self.lags, default=0.0) * 1000

    @property
    def worst_loop_ms(self) -> float:
        return max(self.loop_lags, default=0.0) * 1000

    @property
    def ticks(self) -> int:
        return len(self.lags)
