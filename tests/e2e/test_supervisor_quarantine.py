"""Crash-loop quarantine through a real supervisor: a job whose runs kill their worker
(os._exit, a SIGKILL) ends failed as quarantined after ``max_crashes`` such runs, retries
left or not; an ordinary exception never counts; an operator's retry resets the count.
Both engines."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from supervisor_harness import TASKS
from supervisor_history import attempts, job

import jobtui

pytestmark = pytest.mark.timeout(90)
CRASH = "crash_tasks"
IMPORTS = (TASKS, CRASH)


def _jobtui(db_url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jobtui", "--database", db_url, *args],
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_worker_killers_are_quarantined_and_exceptions_never_are(cluster, db_url):
    cluster.start(imports=IMPORTS)
    exits = jobtui.enqueue(f"{CRASH}.exits")
    killer = jobtui.enqueue(f"{CRASH}.kills_itself")
    raiser = jobtui.enqueue(f"{CRASH}.raises")
    cluster.fault(exits.id, "os._exit in the task")
    cluster.fault(killer.id, "SIGKILL of its own worker")
    cluster.wait_status([exits.id, killer.id, raiser.id], ["failed"], timeout=30)

    for victim, how in ((exits, r"exit code 3"), (killer, r"SIGKILL")):
        row = job(victim.id)
        # two crashes (the default max_crashes) of five retries allowed: quarantined
        assert row.crash_count == 2 and row.retry_count == 1 and row.max_retries == 5
        assert row.error_type == "Quarantined"
        assert re.fullmatch(rf"quarantined: killed its worker 2 times \({how}, peak RSS \d+ MB\)",
                            row.error_message), row.error_message  # fmt: skip
        runs = attempts(victim.id)
        assert [a.outcome for a in runs] == ["crashed", "crashed"]
        assert not runs[-1].error_message.startswith("quarantined")  # the crash's own words
    assert f"job {killer.id} {CRASH}.kills_itself attempt 2 failed for good after" in (
        cluster.supervisors[0].log())  # fmt: skip
    assert "killed its worker 2 times (SIGKILL" in cluster.supervisors[0].log()
    ordinary = job(raiser.id)
    assert ordinary.crash_count == 0 and ordinary.retry_count == 3  # every retry spent
    assert ordinary.error_type == "RuntimeError"

    listed = _jobtui(db_url, "jobs", "--status", "failed")
    assert listed.returncode == 0, listed.stderr
    lines = {line.split()[0]: line for line in listed.stdout.splitlines()[1:]}
    assert "failed (quarantined)" in lines[exits.id] and "failed (quarantined)" in lines[killer.id]
    assert "quarantined" not in lines[raiser.id]
    as_json = {j["id"]: j for j in json.loads(_jobtui(db_url, "jobs", "--status", "failed",
                                                      "--json").stdout)}  # fmt: skip
    assert as_json[killer.id]["quarantined"] and as_json[killer.id]["crash_count"] == 2
    assert not as_json[raiser.id]["quarantined"]

    # an operator's retry resets the count: two more crashes before the next quarantine
    # (without the reset, the first crash after it would quarantine the job "3 times")
    assert _jobtui(db_url, "retry", killer.id).returncode == 0
    cluster.wait_status([killer.id], ["failed"], timeout=30)
    again = job(killer.id)
    assert again.error_type == "Quarantined" and again.crash_count == 2
    assert "killed its worker 2 times" in again.error_message
    assert len(attempts(killer.id)) == 4
    cluster.check()


@pytest.mark.parametrize("supervisors", [1, 2])
def test_the_task_and_the_supervisor_set_the_limit(cluster, supervisors):
    for _ in range(supervisors):  # two: a job's crashes count on its row, wherever it ran
        cluster.start("--max-crashes", "3", imports=IMPORTS)
    default = jobtui.enqueue(f"{CRASH}.kills_itself")
    own = jobtui.enqueue(f"{CRASH}.kills_itself_four_times")
    once = jobtui.enqueue(f"{CRASH}.kills_itself_once", args=[str(cluster.tmp_path / "marker")])
    for victim in (default, own, once):
        cluster.fault(victim.id, "SIGKILL of its own worker")
    cluster.wait_status([default.id, own.id, once.id], ["failed", "completed"], timeout=40)
    assert job(default.id).crash_count == 3 and len(attempts(default.id)) == 3  # --max-crashes
    assert job(own.id).crash_count == 4 and len(attempts(own.id)) == 4  # the task's own
    survivor = job(once.id)
    assert survivor.status == "completed" and survivor.crash_count == 1
    cluster.check()


def test_a_worker_lost_with_its_supervisor_is_not_counted(cluster):
    first = cluster.start(name="first", imports=IMPORTS)
    victim = jobtui.enqueue(f"{TASKS}.hold_first", args=["never-opened"])
    cluster.wait_started(victim.id)
    cluster.fault(victim.id, "its supervisor was SIGKILLed")
    first.kill()
    cluster.start(name="second", imports=IMPORTS)
    cluster.wait_status([victim.id], ["completed"], timeout=30)
    row = job(victim.id)
    assert row.crash_count == 0 and attempts(victim.id)[0].outcome == "crashed"
    cluster.check()


def test_a_hang_past_the_lease_counts_and_a_timeout_does_not(cluster):
    cluster.start(imports=IMPORTS)
    hung = jobtui.enqueue(f"{CRASH}.hangs")
    slow = jobtui.enqueue(f"{CRASH}.too_slow", max_retries=2)
    cluster.fault(hung.id, "holds the GIL: killed as hung")
    cluster.fault(slow.id, "killed at its timeout")
    cluster.wait_status([hung.id, slow.id], ["failed"], timeout=60)
    row = job(hung.id)
    assert row.crash_count == 2 and row.error_type == "Quarantined"
    assert re.fullmatch(r"quarantined: killed its worker 2 times \(hang: worker stopped "
                        r"answering for \d+ s\)", row.error_message), row.error_message  # fmt: skip
    timed_out = job(slow.id)
    assert timed_out.crash_count == 0 and timed_out.retry_count == 2  # every retry spent
    assert timed_out.error_message.startswith("timed out after")
    cluster.check()
