"""A job that goes back in line keeps its place (issue 13, item 3): one put back unstarted
by a shutdown runs before the jobs enqueued after it, and one whose run crashed waits only
its backoff, not the backlog enqueued meanwhile. Both engines."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from supervisor_harness import TASKS, wait_until
from supervisor_history import job

import jobtui
from jobtui.models import Job

pytestmark = pytest.mark.timeout(90)

DISPATCH = "dispatch_tasks"


def run_at(job_id: str):
    return Job.get_by_id(job_id).run_at


def starts(gates: Path) -> dict[str, float]:
    """name -> when it began, from dispatch_tasks' timings log."""
    path = gates / "timings.log"
    lines = path.read_text().splitlines() if path.exists() else []
    return {name: float(start) for name, _pid, start, _end in (line.split() for line in lines)}


def test_a_job_put_back_by_a_shutdown_keeps_its_place(cluster):
    sup = cluster.start(workers=1, imports=(TASKS, DISPATCH))
    held = jobtui.enqueue(f"{TASKS}.gated", args=["held"])
    cluster.wait_started(held.id)
    early = jobtui.enqueue(f"{DISPATCH}.timed", args=["early", 0.01])
    # claimed as the busy worker's prefetch, not begun
    wait_until(lambda: job(early.id).status == "running", 10, "the early job claimed")
    placed = run_at(early.id)
    later = [jobtui.enqueue(f"{DISPATCH}.timed", args=[f"later{n}", 0.01]) for n in range(5)]
    sup.signal(signal.SIGTERM)
    # the gate opens once the shutdown has begun: opened before, the held job may end and
    # the early one begin in the turn that comes before the signal's
    wait_until(lambda: "SIGTERM: warm shutdown" in sup.log(), 5, "warm shutdown begun")
    cluster.open_gate("held")  # it finishes within the grace; the early job never begins
    wait_until(lambda: job(early.id).status == "pending", 10, "the early job put back")
    assert sup.wait_exit(15) == 0
    assert run_at(early.id) == placed  # its place in line, not the shutdown's time
    assert all(run_at(j.id) > placed for j in later)

    cluster.start(workers=1, imports=(TASKS, DISPATCH))
    cluster.wait_status([j.id for j in (held, early, *later)])
    began = starts(cluster.gates)
    assert began["early"] < min(began[f"later{n}"] for n in range(5)), began
    cluster.check()


def test_a_crashed_run_waits_its_backoff_not_the_backlog(cluster):
    cluster.start(workers=1, imports=(TASKS, DISPATCH))
    crash = jobtui.enqueue(f"{DISPATCH}.crash_once", args=["crash"])
    cluster.fault(crash.id, "its first run SIGKILLs its worker")
    backlog = [jobtui.enqueue(f"{DISPATCH}.timed", args=[f"b{n}", 0.05]) for n in range(40)]
    rows = cluster.wait_status([j.id for j in (crash, *backlog)], timeout=60)
    assert (rows[crash.id].status, rows[crash.id].attempt) == ("completed", 2)
    began = starts(cluster.gates)
    ahead = sorted(n for n in began if n.startswith("b") and began[n] < began["crash"])
    # 0.5 s of backoff is about 10 backlog jobs of 50 ms; behind the backlog it was all 40
    assert len(ahead) <= 25, (len(ahead), ahead)
    cluster.check()
