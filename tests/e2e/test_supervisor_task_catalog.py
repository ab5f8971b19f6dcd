"""The task catalog through real supervisors: a task's settings hold however its job was
enqueued (issue 13, item 1), the supervisor's --default-* fill what neither the job nor
its task set, and the global --notify-hook hears every failure (item 9).

The test process and the ``jobtui enqueue`` CLI never import ``catalog_tasks``: they
enqueue by name, as a web application or a cron job would.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from workflow_helpers import FAST, HERE, supervisors, wait_for

import jobtui
from jobtui.models import Job, JobAttempt
from jobtui.models.catalog import list_catalog

TASKS = "catalog_tasks"
JOBTUI_EXE = str(Path(sys.executable).parent / "jobtui")


def cli_enqueue(db_url: str, *args: str) -> str:
    """``jobtui enqueue`` in its own process (which has not imported the task)."""
    done = subprocess.run([JOBTUI_EXE, "--database", db_url, "enqueue", *args],
                          capture_output=True, text=True, timeout=60, cwd="/")  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def runs(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def published(name: str, alive: bool | None = None) -> bool:
    for entry in list_catalog():
        if entry["name"] == name:
            return alive is None or entry["alive"] == alive
    return False


def ended(job_id: str) -> Job | None:
    job = Job.get_by_id(job_id)
    return job if job.status in ("completed", "failed", "cancelled") else None


def assert_ran_once_in_ux(job_id: str, log: Path) -> None:
    job = wait_for(lambda: ended(job_id), 20, what="the job's end")
    assert (job.status, job.queue_name, job.max_retries) == ("failed", "ux", 0)
    assert JobAttempt.select().where(JobAttempt.job_id == job_id).count() == 1
    assert runs(log) == 1


@pytest.mark.timeout(90)
def test_a_task_enqueued_by_name_from_the_cli_while_no_supervisor_runs_keeps_its_settings(
    db, db_url, tmp_path
):
    """Its supervisor published the task, then stopped (a deploy): the CLI's job still
    lands in ``ux`` and is never retried — the supervisor serves ``ux`` alone."""
    log = tmp_path / "runs.log"
    with supervisors(db_url, tmp_path) as group:
        group.start("--import", TASKS, "--queue", "ux=1", *FAST)
        wait_for(lambda: published("catalog.never_again", alive=True), 10, what="published")
        group.stop()
        wait_for(lambda: published("catalog.never_again", alive=False), 10, what="stopped")
        job_id = cli_enqueue(db_url, "catalog.never_again", "--args", json.dumps([str(log)]))
        job = Job.get_by_id(job_id)
        assert (job.queue_name, job.max_retries) == ("ux", 0)  # from the catalog, at enqueue
        group.start("--import", TASKS, "--queue", "ux=1", *FAST)
        assert_ran_once_in_ux(job_id, log)


@pytest.mark.timeout(90)
def test_a_job_enqueued_before_any_supervisor_published_its_task_still_obeys_it(
    db, db_url, tmp_path
):
    """No catalog row yet: the job waits in ``default`` with its options unset; the first
    supervisor that registers the task moves it to ``ux`` and applies max_retries=0."""
    log = tmp_path / "runs.log"
    job_id = cli_enqueue(db_url, "catalog.never_again", "--args", json.dumps([str(log)]))
    assert Job.get_by_id(job_id).queue_name == "default"
    with supervisors(db_url, tmp_path) as group:
        group.start("--import", TASKS, "--queue", "ux=1", *FAST)
        assert_ran_once_in_ux(job_id, log)


@pytest.mark.timeout(90)
def test_default_max_retries_fills_what_neither_the_job_nor_its_task_set(db, db_url, tmp_path):
    """--default-max-retries (here from the environment) and --default-retry-delay apply
    to a task without its own; the task's own and the job's own still win."""
    plain, own, tasks_own = (tmp_path / f"{n}.log" for n in ("plain", "own", "task"))
    env = {"JOBTUI_DEFAULT_MAX_RETRIES": "1"}
    with supervisors(db_url, tmp_path, env=env) as group:
        group.start("--import", TASKS, "--workers", "2", "--default-retry-delay", "0.05", *FAST)
        wait_for(lambda: published("catalog.plain"), 10, what="published")
        by_default = jobtui.enqueue("catalog.plain", args=[str(plain)])
        by_job = jobtui.enqueue("catalog.plain", args=[str(own)], max_retries=0)
        by_task = jobtui.enqueue("catalog.never_again", args=[str(tasks_own)])
        for job in (by_default, by_job, by_task):
            wait_for(lambda job=job: ended(job.id), 20, what="the jobs' ends")
    assert (runs(plain), runs(own), runs(tasks_own)) == (2, 1, 1)
    job = Job.get_by_id(by_default.id)
    assert (job.status, job.max_retries, job.retry_count) == ("failed", 1, 1)
    assert Job.get_by_id(by_job.id).max_retries == 0


@pytest.mark.timeout(90)
def test_notify_hook_is_called_once_per_final_failure_and_on_retries(db, db_url, tmp_path):
    hook_file = tmp_path / "hook.jsonl"
    env = {
        "CATALOG_HOOK_FILE": str(hook_file),
        "JOBTUI_NOTIFY_HOOK": f"{TASKS}:record_notification",
    }
    with supervisors(db_url, tmp_path, env=env) as group:
        group.start("--import", TASKS, "--workers", "1", *FAST)
        final = jobtui.enqueue("catalog.plain", args=[str(tmp_path / "a.log")], max_retries=0,
                               queue="billing")  # fmt: skip
        wait_for(lambda: ended(final.id), 20, what="the final failure")
        wait_for(hook_file.exists, 10, what="the hook's line")
        group.stop()  # the notifier delivers what it holds before it exits
        (line,) = hook_file.read_text().splitlines()  # once, for the final failure only
        payload = json.loads(line)
        assert (payload["job_id"], payload["task"], payload["queue"], payload["event"]) == (
            final.id, "catalog.plain", "billing", "failed")  # fmt: skip
        assert (payload["attempts"], payload["error"]) == (1, "plain failure")

        hook_file.unlink()
        group.start("--import", TASKS, "--workers", "1", "--notify-retries",
                    "--default-retry-delay", "0.05", *FAST)  # fmt: skip
        twice = jobtui.enqueue("catalog.plain", args=[str(tmp_path / "b.log")], max_retries=1)
        wait_for(lambda: ended(twice.id), 20, what="the retried job's end")
        group.stop()
    events = [
        (p["job_id"], p["event"]) for p in map(json.loads, hook_file.read_text().splitlines())
    ]
    assert events == [(twice.id, "retrying"), (twice.id, "failed")]


@pytest.mark.timeout(90)
def test_a_notify_hook_that_raises_is_logged_and_harms_nothing(db, db_url, tmp_path):
    with supervisors(db_url, tmp_path) as group:
        group.start("--import", TASKS, "--workers", "1", "--notify-hook",
                    f"{TASKS}:broken_hook", *FAST)  # fmt: skip
        for n in range(2):  # the second runs after the hook raised for the first
            job = jobtui.enqueue("catalog.plain", args=[str(tmp_path / f"{n}.log")],
                                 max_retries=0)  # fmt: skip
            wait_for(lambda job=job: ended(job.id), 20, what="the failure")
        wait_for(lambda: "the hook itself fails" in group.logs(), 10, what="the hook's error")
        assert all(proc.poll() is None for proc, _ in group.procs)
    assert "--notify-hook catalog_tasks:broken_hook raised" in group.logs()


def test_a_notify_hook_that_does_not_import_fails_the_start(db, db_url, tmp_path):
    done = subprocess.run(
        [str(Path(sys.executable).parent / "jobtui-supervisor"), "--database", db_url,
         "--import", TASKS, "--notify-hook", f"{TASKS}:no_such_function"],
        capture_output=True, text=True, timeout=60, env={"PYTHONPATH": str(HERE)},
    )  # fmt: skip
    assert done.returncode == 1
    assert "--notify-hook catalog_tasks:no_such_function: AttributeError" in done.stderr


def test_jobtui_tasks_lists_the_catalog_with_its_supervisors(db, db_url, capsys):
    from jobtui.cli import main
    from jobtui.models import Supervisor
    from jobtui.models.clock import utcnow
    from jobtui.registry import Task, TaskRegistry
    from jobtui.supervisor.catalog import publish_catalog
    from jobtui.supervisor.config import SupervisorConfig, WorkerGroup

    assert main(["--database", db_url, "tasks"]) == 0
    assert "no tasks" in capsys.readouterr().out
    for name, alive in (("web-1", True), ("old-2", False)):
        registry = TaskRegistry()
        registry.register(Task(func=print, name="catalog.never_again", defaults={
            "queue": "ux", "max_retries": 0}, max_crashes=4))  # fmt: skip
        if alive:
            Supervisor.create(name=name, host="h", pid=1, heartbeat_at=utcnow())
        publish_catalog(db, SupervisorConfig(imports=("x",), groups=(WorkerGroup(None, 1),),
                                             name=name, host="h"), registry)  # fmt: skip
    assert main(["--database", db_url, "tasks"]) == 0
    out = capsys.readouterr().out
    assert "catalog.never_again" in out and "web-1, old-2 (stopped)" in out
    assert main(["--database", db_url, "tasks", "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert (entry["name"], entry["queue"], entry["max_retries"], entry["alive"]) == (
        "catalog.never_again", "ux", 0, True)  # fmt: skip
    assert entry["max_crashes"] == 4 and entry["defaults"]["max_crashes"] == 4
    assert {(s["name"], s["alive"]) for s in entry["supervisors"]} == {
        ("web-1", True), ("old-2", False)}  # fmt: skip
    assert entry["supervisors"][0]["last_seen"].endswith("+00:00")
