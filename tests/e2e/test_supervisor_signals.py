"""Signals to the supervisor: warm and cold shutdown, Ctrl-C, SIGTSTP/SIGCONT. Both engines."""

from __future__ import annotations

import os
import signal
import time

import pytest
from supervisor_harness import TASKS, gone, never, wait_until
from supervisor_history import attempts, job

import jobtui
from jobtui.models import Supervisor as SupervisorRow

pytestmark = pytest.mark.timeout(60)


def test_warm_shutdown_lets_a_running_job_finish_within_the_grace(cluster):
    sup = cluster.start()
    handle = jobtui.enqueue(f"{TASKS}.gated", args=["finish"])
    cluster.wait_started(handle.id)
    sup.signal(signal.SIGTERM)
    wait_until(lambda: "SIGTERM: warm shutdown" in sup.log(), 5, "warm shutdown begun")
    cluster.open_gate("finish")
    assert sup.wait_exit(10) == 0
    assert jobtui.wait(handle.id, timeout=1)["attempt"] == 1
    cluster.check()


def test_warm_shutdown_puts_a_job_longer_than_the_grace_back_to_pending(cluster):
    sup = cluster.start()
    handle = jobtui.enqueue(f"{TASKS}.oblivious")
    cluster.wait_started(handle.id)
    cluster.fault(handle.id, "shutdown after the grace")
    sup.signal(signal.SIGTERM)
    assert sup.wait_exit(10) == 0
    row = job(handle.id)
    assert (row.status, row.retry_count, row.attempt) == ("pending", 0, 1)
    assert row.error_message == "supervisor shutdown: grace period over"
    (only,) = attempts(handle.id)
    assert (only.outcome, only.error_message) == (
        "interrupted", "supervisor shutdown: grace period over")  # fmt: skip
    assert SupervisorRow.select().count() == 0  # it removed its row
    cluster.check(pending=[handle.id])


def test_a_second_sigterm_stops_at_once(cluster):
    sup = cluster.start()
    handle = jobtui.enqueue(f"{TASKS}.oblivious")
    cluster.wait_started(handle.id)
    cluster.fault(handle.id, "cold shutdown")
    sup.signal(signal.SIGTERM)
    wait_until(lambda: "SIGTERM: warm shutdown" in sup.log(), 5, "warm shutdown begun")
    second = time.monotonic()
    sup.signal(signal.SIGTERM)
    assert sup.wait_exit(10) == 0
    assert time.monotonic() - second < 1.5  # not the 2 s grace: cold
    row = job(handle.id)
    assert (row.status, row.retry_count) == ("pending", 0)
    assert row.error_message == "supervisor stopped (cold shutdown)"
    cluster.check(pending=[handle.id])


def test_ctrl_c_reaches_the_supervisor_alone_and_workers_ignore_sigint(cluster):
    sup = cluster.start()
    handle = jobtui.enqueue(f"{TASKS}.gated", args=["after-ctrl-c"])
    run = cluster.wait_started(handle.id)
    assert os.getpgid(run.pid) == run.pid != os.getpgid(sup.pid)  # each worker leads a group

    os.killpg(run.pid, signal.SIGINT)  # straight at the worker's group: ignored
    never(lambda: gone(run.pid), 0.5, "the worker died of SIGINT")
    os.killpg(os.getpgid(sup.pid), signal.SIGINT)  # Ctrl-C at the supervisor's terminal
    wait_until(lambda: "SIGINT: warm shutdown" in sup.log(), 5, "the supervisor decided")
    assert not gone(run.pid) and job(handle.id).status == "running"
    cluster.open_gate("after-ctrl-c")
    assert sup.wait_exit(10) == 0
    result = jobtui.wait(handle.id, timeout=1)
    assert (result["attempt"], result["pid"]) == (1, run.pid)
    cluster.check()


def test_sigtstp_quiets_the_supervisor_and_sigcont_resumes_it(cluster):
    sup = cluster.start()
    running = jobtui.enqueue(f"{TASKS}.gated", args=["quiet"])
    cluster.wait_started(running.id)
    sup.signal(signal.SIGTSTP)

    def state() -> str:
        return SupervisorRow.get(SupervisorRow.name == sup.name).state

    wait_until(lambda: state() == "quiet", 5, "the supervisor row says quiet")
    later = jobtui.enqueue(f"{TASKS}.quick", args=[7])
    never(lambda: job(later.id).status != "pending", 1.0, "a job started while quiet")
    cluster.open_gate("quiet")
    assert jobtui.wait(running.id, timeout=10)["value"] == "quiet"  # running jobs finish
    assert job(later.id).status == "pending" and cluster.execlog.records(later.id) == []

    sup.signal(signal.SIGCONT)
    assert jobtui.wait(later.id, timeout=10)["value"] == 7
    wait_until(lambda: state() == "running", 5, "the supervisor row says running")
    cluster.check()
