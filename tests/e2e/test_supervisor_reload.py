"""SIGHUP: a deploy's new task code is loaded once the running jobs have finished, and a
deploy that does not import is refused while the old code keeps running. Both engines."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest
from supervisor_harness import TASKS, gone, wait_until

import jobtui
from jobtui.models import Supervisor as SupervisorRow

pytestmark = pytest.mark.timeout(60)

MODULE = "reloadable_tasks"
SOURCE = """from supervisor_tasks import logged

from jobtui import task

VERSION = {version}


@task
@logged
def version() -> int:
    return VERSION
"""
ADDED = """

@task
@logged
def added() -> str:
    return "a task the first code did not have"
"""


def _deployable(cluster, tmp_path: Path) -> Path:
    """A task module the test can rewrite, as a deploy would, on the supervisor's path."""
    folder = tmp_path / "app"
    folder.mkdir()
    module = folder / f"{MODULE}.py"
    module.write_text(SOURCE.format(version=1))
    cluster.env["PYTHONPATH"] = f"{folder}{os.pathsep}{cluster.env['PYTHONPATH']}"
    cluster.env["PYTHONDONTWRITEBYTECODE"] = "1"  # a rewrite within the second is seen
    return module


def _value(handle) -> object:
    return jobtui.wait(handle.id, timeout=15)["value"]


def _starts(sup) -> int:
    return sup.log().count(f"supervisor {sup.name} running")


def test_sighup_loads_new_code_once_running_jobs_have_finished(cluster, tmp_path):
    module = _deployable(cluster, tmp_path)
    sup = cluster.start("--shutdown-grace", "20", imports=(TASKS, MODULE))
    assert _value(jobtui.enqueue(f"{MODULE}.version")) == 1
    busy = jobtui.enqueue(f"{TASKS}.gated", args=["deploy"])
    run = cluster.wait_started(busy.id)
    first_workers = sup.worker_pids()

    module.write_text(SOURCE.format(version=2) + ADDED)
    sup.signal(signal.SIGHUP)
    wait_until(lambda: "finishing running jobs, then reloading" in sup.log(), 20,
               "the new code checked", explain=sup.log)  # fmt: skip
    after_deploy = jobtui.enqueue(f"{MODULE}.version")  # must run on the new code
    assert _starts(sup) == 1 and sup.alive()  # the running job holds the reload back
    wait_until(lambda: SupervisorRow.get(SupervisorRow.name == sup.name).state == "reloading",
               10, "the supervisor row says it reloads")  # fmt: skip
    cluster.open_gate("deploy")

    wait_until(lambda: _starts(sup) == 2, 20, "started again", explain=sup.log)
    cluster.wait_ready(sup)
    assert sup.alive() and SupervisorRow.get(SupervisorRow.name == sup.name).pid == sup.pid
    assert not sup.worker_pids() & first_workers  # workers forked from the new code
    finished = jobtui.wait(busy.id, timeout=15)
    assert (finished["attempt"], finished["pid"]) == (1, run.pid)  # finished, not retried
    assert _value(after_deploy) == 2
    assert _value(jobtui.enqueue(f"{MODULE}.added")).startswith("a task")
    cluster.check()


def test_sighup_refuses_code_that_does_not_import_and_keeps_running(cluster, tmp_path):
    module = _deployable(cluster, tmp_path)
    sup = cluster.start(imports=(TASKS, MODULE))
    workers = sup.worker_pids()

    module.write_text(SOURCE.format(version=2) + "\ndef broken(:\n")
    sup.signal(signal.SIGHUP)
    wait_until(lambda: "reload refused" in sup.log(), 20, "the bad deploy refused",
               explain=sup.log)  # fmt: skip
    (refused,) = [line for line in sup.log().splitlines() if "reload refused" in line]
    assert f"cannot import {MODULE}: SyntaxError" in refused
    assert _value(jobtui.enqueue(f"{MODULE}.version")) == 1
    assert sup.alive() and sup.worker_pids() == workers and _starts(sup) == 1

    module.write_text(SOURCE.format(version=3))  # the fix deployed: a second SIGHUP loads it
    sup.signal(signal.SIGHUP)
    wait_until(lambda: _starts(sup) == 2, 20, "started again", explain=sup.log)
    cluster.wait_ready(sup)
    assert _value(jobtui.enqueue(f"{MODULE}.version")) == 3
    cluster.check()


def test_a_stop_while_the_new_code_is_being_checked_ends_the_check_too(cluster, tmp_path):
    module = _deployable(cluster, tmp_path)
    sup = cluster.start(imports=(TASKS, MODULE))
    module.write_text("import time\ntime.sleep(300)\n" + SOURCE.format(version=2))
    sup.signal(signal.SIGHUP)
    found = wait_until(lambda: re.search(r"import before reloading \(pid (\d+)\)", sup.log()),
                       20, "the check started", explain=sup.log)  # fmt: skip
    check = int(found.group(1))
    assert not gone(check)  # importing, for five minutes
    stopped = time.monotonic()
    sup.signal(signal.SIGTERM)
    assert sup.wait_exit(10) == 0 and time.monotonic() - stopped < 5
    wait_until(lambda: gone(check), 5, "the import check killed with its supervisor")
    assert _starts(sup) == 1  # stopped, not reloaded
    cluster.check()


def test_sigterm_during_the_reload_stops_instead(cluster, tmp_path):
    """The reload's warm stop is under way (a job still runs) when SIGTERM comes: the
    supervisor stops for good after that job, it does not start again."""
    module = _deployable(cluster, tmp_path)
    sup = cluster.start("--shutdown-grace", "20", imports=(TASKS, MODULE))
    busy = jobtui.enqueue(f"{TASKS}.gated", args=["stop"])
    cluster.wait_started(busy.id)
    module.write_text(SOURCE.format(version=2))
    sup.signal(signal.SIGHUP)
    wait_until(lambda: "then reloading" in sup.log(), 20, "the reload begun", explain=sup.log)
    sup.signal(signal.SIGTERM)
    wait_until(lambda: "stopping instead of reloading" in sup.log(), 5, "the reload dropped")
    assert sup.alive()  # still warm: the running job may finish
    cluster.open_gate("stop")
    assert sup.wait_exit(10) == 0 and _starts(sup) == 1
    assert jobtui.wait(busy.id, timeout=1)["attempt"] == 1
    cluster.check()
