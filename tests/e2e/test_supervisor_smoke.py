"""The real jobtui-supervisor on both engines: jobs run, fail, time out; SIGTERM stops it.

A quick end-to-end check of the main path; the fault-by-fault suite lives beside it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from supervisor_harness import wait_until

import jobtui
from jobtui.models import store

HERE = Path(__file__).parent
pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def supervisor(db_url, tmp_path):
    store.reset()
    jobtui.use_database(db_url)
    env = dict(os.environ, JOBTUI_DATABASE=db_url, PYTHONPATH=str(HERE))
    log = open(tmp_path / "supervisor.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobtui.supervisor.main", "--import", "smoke_tasks",
         "--workers", "2", "--heartbeat-interval", "0.2", "--lease", "2",
         "--kill-grace", "0.3", "--poll-interval", "0.2", "--shutdown-grace", "2"],
        env=env, stderr=log, stdout=log, start_new_session=True,
    )  # fmt: skip
    from jobtui.models import Supervisor as SupervisorRow

    wait_until(lambda: SupervisorRow.select().count() > 0 or proc.poll() is not None)
    assert proc.poll() is None, (tmp_path / "supervisor.log").read_text()
    yield proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    log.close()
    store.reset()


def test_jobs_complete_fail_and_time_out(supervisor):
    ok = jobtui.enqueue("smoke_tasks.add", args=[2, 3])
    stepped = jobtui.enqueue("smoke_tasks.stepped", args=[10])
    refused = jobtui.enqueue("smoke_tasks.refuse")
    sleepy = jobtui.enqueue("smoke_tasks.sleepy")
    doubled = jobtui.enqueue("smoke_tasks.doubled", args=[21])
    unknown = jobtui.enqueue("smoke_tasks.no_such_task")

    assert jobtui.wait(ok.id, timeout=15) == 5
    assert jobtui.wait(doubled.id, timeout=15) == 42
    assert jobtui.wait(stepped.id, timeout=15) == 10
    with pytest.raises(jobtui.JobFailed, match="refused"):
        jobtui.wait(refused.id, timeout=15)
    with pytest.raises(jobtui.JobFailed, match="timed out after 0.5 s"):
        jobtui.wait(sleepy.id, timeout=15)
    with pytest.raises(jobtui.JobFailed, match="unknown task smoke_tasks.no_such_task"):
        jobtui.wait(unknown.id, timeout=15)

    refused_row = jobtui.poll(refused.id)
    assert refused_row.retry_count == 0 and not refused_row.can_retry()
    attempts = list(jobtui.poll(sleepy.id).attempts)
    assert [a.outcome for a in attempts] == ["timed_out"]
    assert attempts[0].pid and attempts[0].worker_name
    assert jobtui.poll(stepped.id).progress_percentage == 100


def test_sigterm_stops_cleanly_and_leaves_no_process(supervisor):
    job = jobtui.enqueue("smoke_tasks.add", args=[1, 1])
    assert jobtui.wait(job.id, timeout=15) == 2
    parent = psutil.Process(supervisor.pid)
    workers = wait_until(lambda: parent.children(recursive=True))
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(15) == 0
    for proc in workers:
        wait_until(lambda p=proc: not p.is_running() or p.status() == psutil.STATUS_ZOMBIE)
    from jobtui.models import Supervisor as SupervisorRow

    assert SupervisorRow.select().count() == 0


def test_a_supervisor_configured_by_its_environment_alone(db_url, tmp_path):
    store.reset()
    jobtui.use_database(db_url)
    env = dict(os.environ, JOBTUI_DATABASE=db_url, PYTHONPATH=str(HERE),
               JOBTUI_IMPORT="smoke_tasks", JOBTUI_WORKERS="1", JOBTUI_NAME="from-env",
               JOBTUI_HEARTBEAT_INTERVAL="0.2", JOBTUI_LEASE="2", JOBTUI_POLL_INTERVAL="0.2",
               JOBTUI_LOG_LEVEL="INFO")  # fmt: skip
    log_path = tmp_path / "supervisor.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "jobtui.supervisor.main"], env=env,
                                stderr=log, stdout=log, start_new_session=True)  # fmt: skip
    try:
        from jobtui.models import Worker

        wait_until(lambda: Worker.select().where(Worker.supervisor_name == "from-env").count()
                   or proc.poll() is not None)  # fmt: skip
        assert proc.poll() is None, log_path.read_text()
        job = jobtui.enqueue("smoke_tasks.add", args=[2, 3])
        assert jobtui.wait(job.id, timeout=15) == 5
        assert jobtui.poll(job.id).worker_name == "from-env/w1"
        assert Worker.select().where(Worker.supervisor_name == "from-env").count() == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        store.reset()
    assert "options from the environment: JOBTUI_IMPORT, JOBTUI_WORKERS" in log_path.read_text()
