"""The real supervisor without faults: jobs complete with results and progress, async tasks
run, retries back off, permanent errors fail at once, workers are recycled. Both engines."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest
from supervisor_harness import TASKS, wait_until
from supervisor_history import attempts, job

import jobtui
from jobtui.cli import main as cli_main
from jobtui.models import Job
from jobtui.models.clock import utcnow
from jobtui.supervisor.prefetch import DEEP_MAX

pytestmark = pytest.mark.timeout(60)


def test_jobs_complete_with_results_progress_and_async_tasks(cluster):
    cluster.start()
    slow = jobtui.enqueue(f"{TASKS}.progress_then_gate", args=["progress"])
    sums = [jobtui.enqueue(f"{TASKS}.add", args=[n, 10]) for n in range(6)]
    doubled = jobtui.enqueue(f"{TASKS}.async_double", args=[21])

    def halfway():
        row = job(slow.id)
        return row if row.status == "running" and row.progress_percentage == 50 else None

    running = wait_until(halfway, 15, "progress of the running job in its row")
    assert running.progress_message == "halfway"
    cluster.open_gate("progress")

    for n, handle in enumerate(sums):
        result = jobtui.wait(handle.id, timeout=15)
        assert result["value"] == n + 10 and result["attempt"] == 1
    assert jobtui.wait(doubled.id, timeout=15)["value"] == 42
    assert jobtui.wait(slow.id, timeout=15)["value"] == "done"
    finished = job(slow.id)
    assert finished.progress_percentage == 100 and finished.retry_count == 0
    (only,) = attempts(doubled.id)
    assert only.outcome == "completed" and only.worker_name and only.pid
    assert only.pid == cluster.execlog.started(doubled.id).pid  # the row names the real process
    cluster.check()


def test_wait_reports_progress_as_it_moves(cluster):
    """``wait(id, on_progress=...)``: an application follows a job (a progress bar) without
    polling for itself; each change is reported once."""
    cluster.start()
    handle = jobtui.enqueue(f"{TASKS}.progress_then_gate", args=["bar"])
    seen = []

    def on_progress(percent, message):
        seen.append((percent, message))
        if percent == 50:
            cluster.open_gate("bar")  # the job goes on once its halfway mark was seen

    assert jobtui.wait(handle.id, timeout=15, on_progress=on_progress)["value"] == "done"
    assert seen[0] == (50.0, "halfway") and seen[-1][0] == 100.0
    assert len(seen) == len(set(seen))  # once per change
    cluster.check()


def test_progress_details_and_callback_reach_the_row_and_show(cluster, capsys):
    """Seed 002 through the real supervisor: ``progress(pct, message, **details)`` and a
    ``progress_callback`` parameter; the details are merged, written fenced with the
    progress, shown by ``jobtui show`` (and its JSON), and the last report before the
    end lands although it came inside the write interval."""
    cluster.start()
    handle = jobtui.enqueue(f"{TASKS}.details_then_gate", args=["details"])

    def loaded():
        row = job(handle.id)
        return row if row.progress_percentage == 60 else None

    running = wait_until(loaded, 15, "the callback's progress in the row")
    assert running.progress_message == "loaded"
    assert running.progress_details == {"rows": 1200, "phase": "load"}
    assert cli_main(["show", handle.id]) == 0
    shown = capsys.readouterr().out
    assert '"rows": 1200' in shown and '"phase": "load"' in shown
    cluster.open_gate("details")
    assert jobtui.wait(handle.id, timeout=15)["value"] == "done"
    finished = job(handle.id)
    assert finished.progress_details == {"rows": 1500, "phase": "save"}
    assert finished.progress_percentage == 100
    assert cli_main(["show", handle.id, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["progress_details"] == {"rows": 1500, "phase": "save"}
    cluster.check()


@pytest.mark.parametrize("prefetch", ["auto", "1"])
def test_a_deeper_prefetch_keeps_a_later_urgent_job_near_the_front(cluster, prefetch):
    """Jobs far shorter than a commit: the adaptive prefetch queues up to DEEP_MAX (256)
    per worker (prefetch.py). An urgent job enqueued in the middle of a drain must still
    overtake the pending ones: the low jobs that begin after it was enqueued and before it
    begins are at most what the 2 workers may hold (257 each) and as many again while it
    waits its turn on its worker, never the 3,300 still pending."""
    cluster.start("--prefetch", prefetch)
    for _ in range(4):
        jobtui.enqueue_many(f"{TASKS}.stamp", [{"priority": -5}] * 1000)
    done = Job.select().where(Job.status == "completed")
    wait_until(lambda: done.count() >= 700, 60, "a drain well under way")  # past the streak
    urgent = jobtui.enqueue(f"{TASKS}.stamp", priority=10)
    came = time.time()  # committed by now (its created_at is older: it may wait for the lock)
    cluster.wait_status([urgent.id], timeout=60)
    wait_until(lambda: done.count() == 4001, 60, "the drain finished")
    began = jobtui.wait(urgent.id)["value"]
    overtaken_by = sum(1 for j in done if j.id != urgent.id and came < j.result["value"] < began)
    depth = 1 if prefetch == "1" else DEEP_MAX
    print(f"prefetch {prefetch}: {overtaken_by} low jobs began after the urgent one came")
    assert overtaken_by <= 2 * 2 * (depth + 1) + 10, overtaken_by
    cluster.check()


def test_jobs_enqueued_before_any_supervisor_run_in_priority_order(cluster):
    """On SQLite these single enqueues are staged (models/staging.py): outside the claim
    indexes until a claim promotes them. The supervisor promotes the whole backlog at
    start-up, so its first claims already take the urgent jobs, enqueued last, first."""
    low = [jobtui.enqueue(f"{TASKS}.stamp").id for _ in range(30)]
    urgent = [jobtui.enqueue(f"{TASKS}.stamp", priority=5).id for _ in range(30)]
    cluster.start("--prefetch", "1", workers=1)
    began = {job_id: jobtui.wait(job_id, timeout=30)["value"] for job_id in low + urgent}
    assert max(began[j] for j in urgent) < min(began[j] for j in low)
    assert sorted(urgent, key=began.get) == urgent  # FIFO within a priority
    cluster.check()


def test_a_prefetched_job_says_it_waits_and_records_when_it_really_began(cluster, capsys):
    """With one worker busy, the next job is claimed and held by the supervisor for the
    first free worker (the prefetch). Its row must not claim that it runs: it names no
    worker and has no start time. Once it runs, its row and its attempt row hold when it
    began, not when it was claimed, so its duration is its own."""
    cluster.start(workers=1)
    first = jobtui.enqueue(f"{TASKS}.gated", args=["first"])
    cluster.wait_started(first.id)
    second = jobtui.enqueue(f"{TASKS}.add", args=[1, 2])

    def waits_for_its_worker():
        row, ahead = job(second.id), job(first.id)
        return (row.status == "running" and row.started_at is None
                and row.worker_name is None and ahead.worker_name)  # fmt: skip

    wait_until(
        waits_for_its_worker,
        15,
        "the prefetched job's row: no worker, no start time",
        explain=lambda: f"{job(second.id).__data__}\n{job(first.id).__data__}",
    )
    assert cli_main(["jobs", "--status", "running"]) == 0
    listed = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert "waiting" in listed[second.id] and "waiting" not in listed[first.id]
    opened = utcnow()
    cluster.open_gate("first")
    rows = cluster.wait_status([first.id, second.id])
    done = rows[second.id]
    assert done.status == "completed" and done.worker_name == rows[first.id].worker_name
    assert done.started_at >= opened, f"began {done.started_at}, its turn came at {opened}"
    (ran,) = attempts(second.id)
    assert ran.started_at == done.started_at and ran.ended_at >= ran.started_at
    cluster.check()


def test_retries_back_off_and_permanent_errors_fail_at_once(cluster):
    cluster.start()
    flaky = jobtui.enqueue(f"{TASKS}.flaky", args=[2])
    refused = jobtui.enqueue(f"{TASKS}.refuse")
    exhausted = jobtui.enqueue(f"{TASKS}.always_fail")
    picky = jobtui.enqueue(f"{TASKS}.picky")
    rows = cluster.wait_status([flaky.id, refused.id, exhausted.id, picky.id])

    assert rows[flaky.id].status == "completed" and rows[flaky.id].retry_count == 2
    assert jobtui.wait(flaky.id)["attempt"] == 3
    runs = attempts(flaky.id)
    assert [a.outcome for a in runs] == ["failed", "failed", "completed"]
    assert runs[0].error_message == "flaky failure on attempt 1"
    # retry_delay 0.2, backoff 2, no jitter: 0.2 s before the 2nd run, 0.4 s before the 3rd
    for before, after, delay in ((runs[0], runs[1], 0.2), (runs[1], runs[2], 0.4)):
        gap = (after.started_at - before.ended_at).total_seconds()
        assert delay - 0.01 <= gap < delay + 2, f"retry after {gap:.3f} s, policy says {delay}"

    for permanent, message in ((refused, "refused for good"), (picky, "not a value I accept")):
        row = rows[permanent.id]
        assert (row.status, row.retry_count, row.attempt) == ("failed", 0, 1)
        assert row.error_message == message
    assert rows[picky.id].error_type == "ValueError"

    assert (rows[exhausted.id].status, rows[exhausted.id].retry_count) == ("failed", 2)
    assert [a.error_message for a in attempts(exhausted.id)] == [
        "failure 1", "failure 2", "failure 3"]  # fmt: skip
    cluster.check()


@pytest.mark.parametrize(
    "option",
    [("--max-jobs-per-worker", "2"), ("--max-memory-per-worker", "1")],
    ids=["max-jobs", "max-memory"],
)
def test_workers_are_recycled_under_steady_load(cluster, option):
    """A worker under steady load is still replaced: after two jobs, or once it has grown
    past its memory limit. Nothing more is handed to a worker being retired."""
    sup = cluster.start(*option, workers=1)
    first = sup.worker_pids()
    a = jobtui.enqueue(f"{TASKS}.gated", args=["a"])
    cluster.wait_started(a.id)
    b = jobtui.enqueue(f"{TASKS}.gated", args=["b"])
    cluster.wait_status([b.id], ["running"])  # prefetched: claimed for the busy worker
    rest = [jobtui.enqueue(f"{TASKS}.quick", args=[n]) for n in range(4)]
    cluster.open_gate("a")
    cluster.wait_status([a.id])  # whatever the worker was handed next was claimed with it
    cluster.open_gate("b")
    cluster.wait_status([j.id for j in rest])

    pid = {j.id: cluster.execlog.started(j.id).pid for j in (a, b, *rest)}
    ran_by = Counter(pid.values())
    assert max(ran_by.values()) <= 2, f"jobs per worker pid: {dict(ran_by)}"
    assert pid[a.id] != pid[rest[0].id]
    if option[0] == "--max-jobs-per-worker":
        assert pid[a.id] == pid[b.id]  # its second job
    else:
        assert pid[a.id] != pid[b.id]  # retired over its memory after its first
    wait_until(lambda: sup.worker_pids() and not sup.worker_pids() & first, 10, "a fresh worker")
    assert "recycling worker" in sup.log()
    cluster.check()


def test_a_queue_limit_holds_across_supervisors(cluster):
    """Two supervisors with three workers each share a queue limited to two: never more
    than two of its jobs run at once (the tasks' own log says so), and it does reach two
    while a busy unlimited queue competes for the same workers."""
    from jobtui.models.limits import set_queue_limit

    cluster.start(workers=3)
    cluster.start(workers=3)
    set_queue_limit("api", 2)  # while they run: seen within a poll
    limited = [jobtui.enqueue(f"{TASKS}.nap", args=[0.3], queue="api") for _ in range(8)]
    others = [jobtui.enqueue(f"{TASKS}.nap", args=[0.3]) for _ in range(12)]
    rows = cluster.wait_status([j.id for j in limited + others], timeout=30)
    assert {row.status for row in rows.values()} == {"completed"}
    api = {j.id for j in limited}
    running = most = 0
    for record in cluster.execlog.records():
        if record.job_id in api:
            running += 1 if record.event == "start" else -1 if record.event == "end" else 0
            most = max(most, running)
    assert most == 2, f"{most} jobs of the limited queue ran at once"
    cluster.check()
