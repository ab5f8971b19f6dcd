"""Jobs the supervisor has claimed for its workers and not yet handed to one.

The prefetch lives here, not in the workers' pipes: a worker is handed one job at a time,
the next the moment it reports the last one done (microseconds over its pipe). A job handed
to a busy worker would wait for that worker even while another one idles — head-of-line
blocking behind a long job, the complaint Celery's ``-O fair`` answers (RELIABILITY.md,
"Learned while building"). Held here, a claimed job goes to the first worker of its group
that is free (issue 13, item 2).

Jobs come out by priority, then in the order they were claimed (each claim gives its jobs
in the order they are to start: priority, due time, FIFO, or a fair claim's round-robin
across tenants), so a job of higher priority claimed later still goes first, and a job
claimed earlier is not passed by one of equal priority claimed later (a tenant's last job
behind another tenant's older backlog). A job taken back from a worker keeps its place.
Each is ``running`` in the database (claimed, its lease renewed with our heartbeats) but
has not begun.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator

from .pool import RunningJob

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from typing import Any

    GroupKey = tuple[str, ...] | None


class ReadyJobs:
    """Claimed, not yet handed jobs, per worker group (the group's queues)."""

    def __init__(self) -> None:
        self._heaps: dict[GroupKey, list[tuple[Any, ...]]] = {}
        self._count = 0
        self._seq = 0  # the order jobs came in (claim order)
        #: When the next held job has waited long enough to be shown waiting on its row
        #: (dispatch.unwritten_starts); infinity: none.
        self.show_due = float("inf")

    def __len__(self) -> int:
        return self._count

    def count(self, group: GroupKey) -> int:
        heap = self._heaps.get(group)
        return len(heap) if heap else 0

    def add(self, group: GroupKey, job: RunningJob) -> None:
        if not job.ready_rank:  # its first time here; taken back, it keeps its place
            self._seq += 1
            job.ready_rank = self._seq
        key = (-job.claimed.priority, job.ready_rank, job)
        heapq.heappush(self._heaps.setdefault(group, []), key)
        self._count += 1

    def take(self, group: GroupKey) -> RunningJob | None:
        """The group's next job in claim order, or None."""
        heap = self._heaps.get(group)
        if not heap:
            return None
        self._count -= 1
        return heapq.heappop(heap)[-1]

    def remove(self, job_id: str) -> RunningJob | None:
        """Take out one job wherever it waits (cancelled, or its lease lost)."""
        for heap in self._heaps.values():
            for index, entry in enumerate(heap):
                if entry[-1].id == job_id:
                    heap.pop(index)
                    heapq.heapify(heap)
                    self._count -= 1
                    return entry[-1]
        return None

    def take_all(self) -> list[RunningJob]:
        """Every held job (a shutdown puts them back)."""
        jobs = [entry[-1] for heap in self._heaps.values() for entry in heap]
        self._heaps.clear()
        self._count = 0
        self.show_due = float("inf")
        return jobs

    def __iter__(self) -> Iterator[RunningJob]:
        for heap in self._heaps.values():
            for entry in heap:
                yield entry[-1]
