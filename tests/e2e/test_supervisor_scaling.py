"""Live scaling through a real supervisor: ``jobtui scale`` adds workers at once (more jobs
run at the same time) and removes them only after their current job; ``--autoscale``
grows a queue's workers under a backlog and shrinks them once idle. Both engines."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from supervisor_harness import TASKS, never, wait_until

import jobtui
from jobtui.models import Supervisor as SupervisorRow
from jobtui.models.audit import AuditEntry

pytestmark = pytest.mark.timeout(120)
CRASH = "crash_tasks"
IMPORTS = (TASKS, CRASH)


def _jobtui(db_url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jobtui", "--database", db_url, *args],
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def _running(cluster, ids) -> set[str]:
    """The jobs that began and have not ended, by the tasks' own log (not the rows: a job
    claimed for a busy worker is 'running' there before it begins)."""
    records = cluster.execlog.records()
    started = {r.job_id for r in records if r.event == "start" and r.job_id in ids}
    return started - {r.job_id for r in records if r.event == "end"}


def _start(cluster, *options: str, workers: int, name: str = "sup-1"):
    sup = cluster.start("--workers", "0", *options, name=name, imports=IMPORTS, wait=False)
    sup.workers = workers
    cluster.wait_ready(sup)
    return sup


def _queues(name: str) -> dict:
    row = SupervisorRow.get_by_id(name)
    return dict(row.queues or {})


def test_scale_up_runs_more_at_once_and_scale_down_waits_for_the_job(cluster, db_url):
    sup = _start(cluster, "--queue", "scaled=1", workers=1)
    first = [jobtui.enqueue(f"{CRASH}.held", args=["A"]).id for _ in range(3)]
    wait_until(lambda: len(_running(cluster, first)) == 1, 15, "one job running")
    never(lambda: len(_running(cluster, first)) > 1, 0.5, "a second job with one worker")

    up = _jobtui(db_url, "scale", "scaled", "3", "--json")
    assert up.returncode == 0, up.stderr
    said = json.loads(up.stdout)
    assert (said["supervisor"], said["queue"], said["was"], said["workers"]) == (
        "sup-1", "scaled", 1, 3)  # fmt: skip
    assert said["queues"] == {"scaled": 3}
    wait_until(lambda: len(_running(cluster, first)) == 3, 15, "three jobs at once")
    assert _queues("sup-1") == {"scaled": 3}
    wait_until(lambda: len(sup.worker_pids()) == 3, 5, "three workers heart-beating")

    second = [jobtui.enqueue(f"{CRASH}.held", args=["B"]).id for _ in range(3)]
    busy = set(sup.worker_pids())
    down = _jobtui(db_url, "scale", "scaled", "1")
    assert down.returncode == 0, down.stderr
    assert "3 -> 1" in down.stdout and "after their current job" in down.stdout
    assert _queues("sup-1") == {"scaled": 1}
    # never killed mid-job: the three still run, in the same processes
    never(lambda: len(_running(cluster, first)) < 3, 1.0, "a job stopped by the scale-down")
    assert set(sup.worker_pids()) == busy

    cluster.open_gate("A")
    cluster.wait_status(first, ["completed"])
    wait_until(lambda: len(sup.worker_pids()) == 1, 15, "the two extra workers gone")
    wait_until(lambda: len(_running(cluster, second)) == 1, 15, "one B job running")
    never(lambda: len(_running(cluster, second)) > 1, 1.0, "two jobs after the scale-down")
    cluster.open_gate("B")
    cluster.wait_status(second, ["completed"])
    assert "scale request: queue scaled from 3 to 1" in sup.log()
    audited = [(r.action, r.target, r.where, r.arguments) for r in
               AuditEntry.select().order_by(AuditEntry.id)]  # fmt: skip
    assert audited == [("scale", "scaled", "cli", {"supervisor": "sup-1", "workers": n})
                       for n in (3, 1)]  # fmt: skip
    cluster.check()


def test_scale_refuses_clearly(cluster, db_url):
    nobody = _jobtui(db_url, "scale", "scaled", "2")
    assert nobody.returncode == 1 and "no live supervisor serves queue 'scaled'" in nobody.stderr
    _start(cluster, "--queue", "scaled=1", "--queue", "other=1", workers=2, name="a")
    _start(cluster, "--queue", "scaled=1", workers=1, name="b")
    both = _jobtui(db_url, "scale", "scaled", "2")
    assert both.returncode == 1 and "name one with --supervisor" in both.stderr
    for args, words in ((["--supervisor", "b", "other", "2"], "does not serve queue 'other'"),
                        (["--supervisor", "zz", "scaled", "2"], "no live supervisor named 'zz'"),
                        (["scaled", "999"], "N must be from 0 to 256"),
                        (["scaled", "two"], "a whole number")):  # fmt: skip
        refused = _jobtui(db_url, "scale", *args)
        assert refused.returncode == 1 and words in refused.stderr, refused.stderr
        assert refused.stderr.count("\n") == 1  # one line, no traceback
    assert AuditEntry.select().count() == 0  # refused: no row
    ok = _jobtui(db_url, "scale", "--supervisor", "b", "scaled", "2")
    assert ok.returncode == 0, ok.stderr
    assert _queues("b") == {"scaled": 2} and _queues("a") == {"scaled": 1, "other": 1}
    cluster.check()


def test_autoscale_grows_under_a_backlog_and_shrinks_when_idle(cluster, db_url):
    sup = _start(cluster, "--autoscale", "scaled=1:3", "--workers", "3", "--autoscale-wait",
                 "0.3", "--autoscale-idle", "1", workers=1)  # fmt: skip
    status = json.loads(_jobtui(db_url, "status", "--json").stdout)
    (row,) = status["supervisors"]
    assert row["queues"] == {"scaled": 1} and row["autoscale"] == {"scaled": [1, 3]}

    backlog = [jobtui.enqueue(f"{CRASH}.held", args=["A"]).id for _ in range(6)]
    wait_until(lambda: len(_running(cluster, backlog)) == 3, 20, "grown to three workers")
    never(lambda: len(sup.worker_pids()) > 3, 1.5, "more than --workers in all")
    assert _queues(sup.name) == {"scaled": 3}
    cluster.open_gate("A")
    cluster.wait_status(backlog, ["completed"])
    wait_until(lambda: _queues(sup.name) == {"scaled": 1}, 20, "shrunk back to its minimum",
               explain=sup.log)  # fmt: skip
    wait_until(lambda: len(sup.worker_pids()) == 1, 10, "one worker left")
    assert "autoscale: queue scaled waits" in sup.log()
    cluster.check()


def test_autoscale_never_goes_past_workers_in_all(cluster, db_url):
    """Two queues that could each grow to 3 share a ceiling of 4: under a backlog on both
    the supervisor grows to 4 workers in all, never more."""
    sup = _start(cluster, "--autoscale", "a=1:3", "--autoscale", "b=1:3", "--workers", "4",
                 "--autoscale-wait", "0.3", "--autoscale-idle", "1", workers=2)  # fmt: skip
    backlog = [jobtui.enqueue(f"{CRASH}.held", args=["A"], queue=queue).id
               for queue in ("a", "b") for _ in range(4)]  # fmt: skip
    wait_until(lambda: len(_running(cluster, backlog)) == 4, 20, "grown to 4 in all")
    never(lambda: len(_running(cluster, backlog)) > 4 or len(sup.worker_pids()) > 4, 2.0,
          "more than --workers 4 in all")  # fmt: skip
    grown = _queues(sup.name)
    assert sum(grown.values()) == 4 and all(1 <= n <= 3 for n in grown.values()), grown
    cluster.open_gate("A")
    cluster.wait_status(backlog, ["completed"])
    cluster.check()
