"""Jobs that must be stopped: past their timeout (sleeping, ignoring SIGTERM, or leaving a
double-forked daemon behind), or cancelled by an operator. Both engines."""

from __future__ import annotations

import pytest
from supervisor_harness import TASKS, gone, wait_until
from supervisor_history import attempts, job

import jobtui

pytestmark = pytest.mark.timeout(60)


def test_jobs_past_their_timeout_are_stopped_with_their_whole_tree(cluster):
    sup = cluster.start(workers=3)
    before = sup.worker_pids()
    pidfile = cluster.tmp_path / "daemon.pid"
    sleeper = jobtui.enqueue(f"{TASKS}.sleeper")
    stubborn = jobtui.enqueue(f"{TASKS}.stubborn")
    spawner = jobtui.enqueue(f"{TASKS}.spawner", args=[str(pidfile)])
    jobs = (sleeper, stubborn, spawner)
    for handle in jobs:
        cluster.fault(handle.id, "timed out")

    wait_until(pidfile.exists, 10, "the grandchild daemon started")
    daemon = int(pidfile.read_text())
    cluster.watch.add(daemon, "double-forked daemon of a job")
    assert not gone(daemon)

    rows = cluster.wait_status([j.id for j in jobs])
    for handle in jobs:
        row = rows[handle.id]
        assert (row.status, row.error_message) == ("failed", "timed out after 1 s")
        (only,) = attempts(handle.id)
        assert (only.outcome, only.error_message) == ("timed_out", "timed out after 1 s")
    ran = attempts(stubborn.id)[0]
    assert (ran.ended_at - ran.started_at).total_seconds() >= 1.5  # timeout + kill grace
    assert any(r.event == "ignoring-sigterm" for r in cluster.execlog.records(stubborn.id))
    assert "ignored SIGTERM: SIGKILL" in sup.log()

    wait_until(lambda: gone(daemon), 5, "the daemon swept with its job")
    wait_until(lambda: len(sup.worker_pids() - before) == 3, 10, "three new workers")
    cluster.check()


def test_default_timeout_bounds_jobs_that_set_none(cluster):
    """--default-timeout: a job whose own and task's timeout are unset is stopped after
    it; one with a timeout of its own keeps that."""
    cluster.start("--default-timeout", "1")
    endless = jobtui.enqueue(f"{TASKS}.oblivious")  # sleeps 60 s, no timeout anywhere
    own = jobtui.enqueue(f"{TASKS}.add", args=[1, 2], timeout=30)
    cluster.fault(endless.id, "timed out")
    rows = cluster.wait_status([endless.id, own.id], timeout=15)
    assert (rows[endless.id].status, rows[endless.id].error_message) == (
        "failed", "timed out after 1 s")  # fmt: skip
    assert rows[own.id].status == "completed"
    cluster.check()


def test_a_worker_stuck_in_c_code_holding_the_gil_is_killed_as_hung(cluster):
    sup = cluster.start()
    stuck = jobtui.enqueue(f"{TASKS}.holds_the_gil")
    run = cluster.wait_started(stuck.id)
    cluster.fault(stuck.id, "its worker hung")
    row = cluster.wait_status([stuck.id])[stuck.id]
    assert row.status == "failed" and row.error_message.startswith("worker stopped answering")
    (only,) = attempts(stuck.id)
    assert (only.outcome, only.error_type) == ("crashed", "WorkerLost")
    wait_until(lambda: gone(run.pid) and len(sup.worker_pids()) == 2, 10, "worker replaced")
    cluster.check()


def test_cancel_a_pending_a_cooperative_and_an_oblivious_job(cluster):
    sup = cluster.start()
    later = jobtui.enqueue(f"{TASKS}.quick", args=[1], delay=60)
    assert jobtui.cancel(later.id).status == "cancelled"  # not running: at once

    polite = jobtui.enqueue(f"{TASKS}.cooperative")
    rude = jobtui.enqueue(f"{TASKS}.oblivious")
    polite_run = cluster.wait_started(polite.id)
    rude_run = cluster.wait_started(rude.id)
    cluster.fault(rude.id, "cancelled: killed after the grace")
    jobtui.cancel(polite.id)
    jobtui.cancel(rude.id)

    rows = cluster.wait_status([polite.id, rude.id])
    assert rows[polite.id].status == rows[rude.id].status == "cancelled"
    assert [r.event for r in cluster.execlog.records(polite.id)] == [
        "start", "cancel-seen", "end"]  # fmt: skip
    assert polite_run.pid in sup.worker_pids()  # it stopped by itself: its worker lives on
    assert [a.outcome for a in attempts(polite.id)] == ["cancelled"]

    assert [r.event for r in cluster.execlog.records(rude.id)] == ["start"]
    (rude_attempt,) = attempts(rude.id)
    assert rude_attempt.outcome == "cancelled"
    wait_until(lambda: rude_run.pid not in sup.worker_pids() and len(sup.worker_pids()) == 2,
               10, "the oblivious job's worker replaced")  # fmt: skip
    assert cluster.execlog.records(later.id) == []
    cluster.check()


def test_a_large_prefetched_job_never_stalls_the_loop_behind_a_busy_worker(cluster):
    # The worker reads nothing while the sleeper runs; a job 4 MB large, prefetched to it,
    # fills its socket. Were the supervisor to wait on that socket, the sleeper's timeout
    # could never be enforced.
    cluster.start(workers=1)
    sleeper = jobtui.enqueue(f"{TASKS}.sleeper")
    cluster.fault(sleeper.id, "timed out")
    wait_until(lambda: job(sleeper.id).status == "running", 10, "the sleeper running")
    large = jobtui.enqueue(f"{TASKS}.blob_length", args=["y" * 4_000_000])
    rows = cluster.wait_status([sleeper.id, large.id])
    assert (rows[sleeper.id].status, rows[sleeper.id].error_message) == (
        "failed", "timed out after 1 s")  # fmt: skip
    assert rows[large.id].status == "completed"
    assert jobtui.wait(large.id, timeout=5)["value"] == 4_000_000


def test_kill_stops_a_job_at_once_and_every_cancel_keeps_the_operators_reason(cluster):
    """``cancel`` asks and waits the kill grace (30 s here); ``kill`` does not wait, also
    for a job asked before that never listened. The reason given is the error each ends
    with, on the job and on its attempt."""
    sup = cluster.start("--kill-grace", "30")
    polite = jobtui.enqueue(f"{TASKS}.cooperative")
    rude = jobtui.enqueue(f"{TASKS}.oblivious")
    cluster.wait_started(polite.id)
    rude_run = cluster.wait_started(rude.id)
    cluster.fault(rude.id, "killed by operator")

    jobtui.cancel(polite.id, reason="duplicate order")
    jobtui.cancel(rude.id, reason="please stop")  # it never looks
    wait_until(lambda: "asking it to stop" in sup.log() and job(rude.id).status == "running",
               10, "the first request seen")  # fmt: skip
    assert jobtui.cancel(rude.id, reason="runaway import", kill=True).cancel_requested

    rows = cluster.wait_status([polite.id, rude.id], timeout=10)  # far below the grace
    for handle, reason in ((polite, "duplicate order"), (rude, "runaway import")):
        assert (rows[handle.id].status, rows[handle.id].error_message) == ("cancelled", reason)
        (only,) = attempts(handle.id)
        assert (only.outcome, only.error_message) == ("cancelled", reason)
    assert [r.event for r in cluster.execlog.records(rude.id)] == ["start"]
    wait_until(lambda: rude_run.pid not in sup.worker_pids() and len(sup.worker_pids()) == 2,
               10, "the killed job's worker replaced")  # fmt: skip
    cluster.check()
