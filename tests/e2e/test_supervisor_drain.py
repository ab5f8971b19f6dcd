"""Many supervisors on one database drain a large queue: every job completed, each executed
exactly once (the execution log says so, not only the rows). Once per engine."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from supervisor_harness import TASKS, wait_until

import jobtui
from jobtui.models import Job

pytestmark = pytest.mark.timeout(150)

JOBS = 5000
SUPERVISORS = 3


def test_three_supervisors_drain_the_queue_each_job_once(cluster):
    sups = [cluster.start(workers=2) for _ in range(SUPERVISORS)]
    began = time.monotonic()
    for start in range(0, JOBS, 1000):
        jobtui.enqueue_many(f"{TASKS}.quick", [{"args": [n]} for n in range(start, start + 1000)])

    def drained() -> bool:
        left = Job.select().where(Job.status != "completed").count()
        return left == 0

    wait_until(drained, 120, f"{JOBS} jobs completed", interval=0.25,
               explain=lambda: str(Counter(j.status for j in Job.select(Job.status))))  # fmt: skip
    took = time.monotonic() - began
    print(f"{JOBS} jobs drained by {SUPERVISORS} supervisors in {took:.1f} s")

    starts = Counter((r.job_id, r.attempt) for r in cluster.execlog.records()
                     if r.event == "start")  # fmt: skip
    assert len(starts) == JOBS and set(starts.values()) == {1}
    assert {attempt for _, attempt in starts} == {1}
    ran_by = Counter(r.pid for r in cluster.execlog.records() if r.event == "start")
    assert len(ran_by) >= 2 * SUPERVISORS - 1, f"work spread over {dict(ran_by)}"
    assert all(s.alive() for s in sups)
    cluster.check()
