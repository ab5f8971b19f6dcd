"""Processes that die: a SIGKILLed worker, a SIGKILLed supervisor. The job is retried, the
reason is on its attempt row, nothing is left running. Both engines."""

from __future__ import annotations

import os
import re
import signal
import time

import pytest
from supervisor_harness import TASKS, gone, wait_until
from supervisor_history import attempts, job

import jobtui

pytestmark = pytest.mark.timeout(60)


def test_a_sigkilled_worker_is_replaced_and_its_job_retried(cluster):
    sup = cluster.start()
    before = sup.worker_pids()
    victim = jobtui.enqueue(f"{TASKS}.hold_first", args=["never-opened"])
    others = [jobtui.enqueue(f"{TASKS}.quick", args=[n]) for n in range(4)]
    run = cluster.wait_started(victim.id)
    assert run.pid in before

    cluster.fault(victim.id, "its worker was SIGKILLed")
    os.kill(run.pid, signal.SIGKILL)

    result = jobtui.wait(victim.id, timeout=15)
    assert result["attempt"] == 2 and result["pid"] != run.pid
    first, second = attempts(victim.id)
    assert (first.outcome, first.pid) == ("crashed", run.pid)
    # the signal, and how large the worker grew (an OOM kill shows itself)
    assert re.fullmatch(r"killed by signal 9 \(SIGKILL\); worker peak RSS \d+ MB",
                        first.error_message), first.error_message  # fmt: skip
    assert second.outcome == "completed"
    assert job(victim.id).retry_count == 1
    cluster.wait_status([j.id for j in others], ["completed"])

    def replaced():
        now = sup.worker_pids()
        return len(now) == 2 and run.pid not in now and now - before

    wait_until(replaced, 10, "a new worker in place of the killed one")
    assert "killed by signal 9" in sup.log()
    cluster.check()


@pytest.mark.parametrize("same_name", [False, True], ids=["new-name", "same-name"])
def test_a_sigkilled_supervisor_takes_its_workers_along_and_a_new_one_recovers(cluster, same_name):
    old = cluster.start(name="first")
    workers = old.worker_pids()
    victim = jobtui.enqueue(f"{TASKS}.hold_first", args=["never-opened"])
    cluster.wait_started(victim.id)

    cluster.fault(victim.id, "its supervisor was SIGKILLed")
    old.kill()
    for pid in workers:  # PR_SET_PDEATHSIG: the workers die with it
        wait_until(lambda pid=pid: gone(pid), 5, f"worker {pid} gone with its supervisor")
    assert job(victim.id).status == "running"  # nobody has noticed yet

    # A lease of 60 s: only "its supervisor's (pid, start time) is gone" can recover it soon.
    started = time.monotonic()
    new = cluster.start("--lease", "60", name="first" if same_name else "second")
    result = jobtui.wait(victim.id, timeout=10)
    assert time.monotonic() - started < 8
    assert result["attempt"] == 2 and result["pid"] in new.worker_pids()
    first = attempts(victim.id)[0]
    assert (first.outcome, first.supervisor_name) == ("crashed", "first")  # who ran it
    assert first.error_message == f"supervisor first died (pid {old.pid})"
    cluster.check()
