"""Fairness across tenants and priority aging through the real supervisor (issue 14,
items 3 and 4): a tenant's 10 jobs start among the next 40 starts behind another tenant's
10,000, and a low-priority job starts within a bounded time under a constant stream of
high-priority work. Both engines."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from supervisor_harness import TASKS, wait_until

import jobtui
from jobtui.models import Job
from jobtui.models.store import get_database

pytestmark = pytest.mark.timeout(150)

DISPATCH = "dispatch_tasks"


def begins(gates: Path) -> list[tuple[float, str]]:
    """(when it began, name) of every run so far, in the order they began."""
    path = gates / "timings.log"
    lines = path.read_text().splitlines() if path.exists() else []
    runs = [(float(start), name) for name, _pid, start, _end in (ln.split() for ln in lines)]
    return sorted(runs)


def _drop_pending() -> None:
    """The rest of a backlog the test no longer needs: the supervisors stop at once."""
    get_database().execute_sql("DELETE FROM jobs WHERE status IN ('pending', 'retrying')")


@pytest.mark.parametrize("supervisors", [1, 2])
def test_a_small_tenant_starts_among_the_next_40_behind_a_10000_job_backlog(cluster, supervisors):
    for _ in range(supervisors):  # two: each claims round-robin, and so do both together
        cluster.start(workers=2, imports=(TASKS, DISPATCH))
    jobtui.enqueue_many(f"{DISPATCH}.timed",
                        [{"args": [f"A{n}", 0.01]} for n in range(10_000)], fair_key="A")  # fmt: skip
    wait_until(lambda: len(begins(cluster.gates)) >= 20, 60, "tenant A's backlog started")
    enqueued_at = time.monotonic()
    small = jobtui.enqueue_many(f"{DISPATCH}.timed",
                                [{"args": [f"B{n}", 0.01]} for n in range(10)], fair_key="B")  # fmt: skip
    cluster.wait_status([j.id for j in small], timeout=60)
    after = [name for start, name in begins(cluster.gates) if start >= enqueued_at]
    places = [i for i, name in enumerate(after) if name.startswith("B")]
    assert len(places) == 10, after[:60]
    assert max(places) < 40, (places, after[:60])
    pending_a = Job.select().where(Job.status == "pending", Job.fair_key == "A").count()
    assert pending_a > 5_000  # B did not have to wait for A's backlog
    _drop_pending()


@pytest.mark.parametrize("supervisors", [1, 2])
def test_a_low_priority_job_starts_under_constant_high_priority_load(cluster, supervisors):
    for _ in range(supervisors):  # two age the queue together, not twice as fast
        cluster.start("--priority-aging", "0.5s", workers=1, imports=(TASKS, DISPATCH))
    high = f"{DISPATCH}.timed"

    def feed() -> None:
        # 12 queued (~0.3 s of work for the two workers): a test process starved of CPU
        # for a while (a loaded machine) must not let the stream dry up
        waiting = Job.select().where(Job.status == "pending", Job.priority >= 10).count()
        if waiting < 12:
            jobtui.enqueue_many(high, [{"args": ["high", 0.05]} for _ in range(12)], priority=10)

    feed()
    low = jobtui.enqueue(high, args=["low", 0.01], priority=0)
    enqueued = time.monotonic()
    seen_high_before_low = 0

    def low_began() -> bool:
        nonlocal seen_high_before_low
        feed()  # the stream of high-priority work never dries up
        names = [name for _, name in begins(cluster.gates)]
        seen_high_before_low = names.count("high") if "low" not in names else seen_high_before_low
        return "low" in names

    wait_until(low_began, 40, "the low-priority job began", interval=0.02)
    waited = time.monotonic() - enqueued
    # 11 steps of 0.5 s take it past priority 10; a quarter period of upkeep on top
    assert 4.0 < waited < 15.0, waited
    assert seen_high_before_low >= 20  # it really waited behind a constant stream
    row = Job.get_by_id(low.id)
    assert row.base_priority == 0 and row.priority >= 11, (row.priority, row.base_priority)
    env = dict(os.environ, JOBTUI_DATABASE=cluster.db_url)
    shown = subprocess.run([str(Path(sys.executable).parent / "jobtui"), "show", low.id],
                           env=env, capture_output=True, text=True, timeout=30)  # fmt: skip
    assert f"0 (aged +{row.priority})" in shown.stdout, shown.stdout + shown.stderr
    _drop_pending()
