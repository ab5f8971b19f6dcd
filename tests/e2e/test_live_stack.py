"""Issue 16 item 2: the live stack of a running job, end to end through a real supervisor
on SQLite and PostgreSQL: a task blocked in a known function shows that function; a task
stuck in a C call that holds the GIL gets the "stuck in C" answer with its last beat."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from supervisor_harness import wait_until

import jobtui
from jobtui.models.queries import get_job
from jobtui.models.stacks import StackUnavailable, take_stack

pytestmark = pytest.mark.timeout(90)
TASKS = ("supervisor_tasks", "log_tasks")


def cli(db_url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jobtui", "--database", db_url, *args],
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def running(job_id: str) -> bool:
    return get_job(job_id).status == "running" and get_job(job_id).started_at is not None


def test_a_blocked_task_shows_the_function_it_waits_in(cluster, db_url):
    job = jobtui.enqueue("log_tasks.blocked", args=["release"])
    cluster.start(imports=TASKS)
    wait_until(lambda: running(job.id), 20, "the job running")
    shown = cli(db_url, "stack", job.id)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "Thread main (runs the job), innermost frame last:" in lines
    frames = [line.strip() for line in lines if line.strip().startswith("File ")]
    names = [frame.rsplit(" in ", 1)[1] for frame in frames]
    # the job's thread: the task, then wait_here, then the gate's sleep loop, innermost last
    assert names[:3] == ["blocked", "wait_here", "_gate"], shown.stdout
    assert all("log_tasks.py" in frame for frame in frames[:3])
    answer = json.loads(cli(db_url, "stack", job.id, "--json").stdout)
    job_thread = next(t for t in answer["threads"] if t["job"])
    assert [f["function"] for f in job_thread["frames"]] == ["blocked", "wait_here", "_gate"]
    assert {"file", "line", "function"} <= set(job_thread["frames"][-1])
    assert get_job(job.id).status == "running"  # taken without stopping the job
    cluster.open_gate("release")
    cluster.wait_status([job.id])
    assert get_job(job.id).status == "completed"
    done = cli(db_url, "stack", job.id)
    assert done.returncode == 1 and "is not running (it is completed)" in done.stderr


def test_a_worker_holding_the_gil_in_c_is_said_to_be_stuck(cluster, db_url):
    job = jobtui.enqueue("log_tasks.holds_the_gil", args=[12])
    # slow beats and a long lease: the worker must not be killed as hung before the answer
    cluster.start("--heartbeat-interval", "1", "--lease", "60", imports=TASKS)
    wait_until(lambda: running(job.id), 20, "the job running")
    wait_until(lambda: (cluster.gates / "in-c").exists(), 20, "the job in its C call")
    answer = take_stack(job.id, timeout_s=30)
    assert answer.get("stuck") is True, answer
    assert answer["last_heard_s"] >= 0 and answer["pid"] > 0
    shown = cli(db_url, "stack", job.id)
    assert "stuck in C code holding the GIL" in shown.stdout
    assert "last heartbeat or message from it:" in shown.stdout


def test_stack_of_a_job_that_is_not_running_is_a_one_line_error(cluster, db_url):
    job = jobtui.enqueue("log_tasks.chatty", delay=3600)
    with pytest.raises(StackUnavailable, match="is not running"):
        take_stack(job.id)
    shown = cli(db_url, "stack", job.id)
    assert shown.returncode == 1
    assert shown.stderr.strip().count("\n") == 0 and "not running (it is pending)" in shown.stderr


def test_the_console_shows_the_stack_and_the_logs_of_a_running_job(cluster, db, db_url):
    """The console's S and l keys against a real supervisor: the stack names the function
    the task waits in, and the Logs tab shows what the job printed so far."""
    import asyncio
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent.parent / "tui"))
    from tui_dbjobs import db_app  # noqa: PLC0415 - the console tests' helpers
    from tui_helpers import press, settle  # noqa: PLC0415

    from jobtui.tui.screens.detail import JobDetailScreen

    job = jobtui.enqueue("log_tasks.ticking", args=["release"])
    cluster.start(imports=TASKS)
    wait_until(lambda: running(job.id), 20, "the job running")

    async def scenario() -> None:
        app = db_app(db)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            app.push_screen(JobDetailScreen(job.id))
            await settle(pilot)
            await press(pilot, "S")

            async def stack_shown() -> str:
                for _ in range(300):
                    await settle(pilot)
                    text = str(app.screen.query_one("#stack-text").visual)
                    if "innermost frame last" in text or "no stack" in text:
                        return text
                    await asyncio.sleep(0.05)
                raise AssertionError("no stack shown within 15 s")

            text = await stack_shown()
            assert "in ticking" in text and "in _gate" in text, text
            await press(pilot, "l")
            for _ in range(100):
                await press(pilot, "ctrl+r")
                if "out tick 1" in str(app.screen.query_one("#logs-text").visual):
                    break
                await asyncio.sleep(0.05)
            assert "out tick 1" in str(app.screen.query_one("#logs-text").visual)

    asyncio.run(scenario())
    cluster.open_gate("release")
    cluster.wait_status([job.id])
