"""Issue 16 item 1: job logs through the real supervisor, on SQLite and PostgreSQL.

A task's stdout, stderr, ``logging`` and its child processes' output land in the job's
log with times and streams; ``jobtui logs -f`` follows a running job until it ends;
``--max-log-bytes`` keeps the start and counts the rest; hostile text stays data on every
surface (the CLI, the supervisor's stderr), and nothing a job prints reaches the
supervisor's terminal raw."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from hostile import HOSTILE, PWNED, acting_chars
from supervisor_harness import wait_until

import jobtui
from jobtui.models import delete_jobs
from jobtui.models.joblog import read_log
from jobtui.models.queries import get_job
from jobtui.models.store import get_database

pytestmark = pytest.mark.timeout(90)
TASKS = ("supervisor_tasks", "log_tasks")


def cli(db_url: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jobtui", "--database", db_url, *args],
                          capture_output=True, timeout=timeout)  # fmt: skip


def lines_of(job_id: str) -> list[tuple[str, str]]:
    return [(line.stream, line.text) for line in read_log(job_id).lines]


def test_stdout_stderr_logging_and_child_processes_land_in_the_jobs_log(cluster, db_url):
    job = jobtui.enqueue("log_tasks.chatty")
    debug = jobtui.enqueue("log_tasks.debug_chatty")
    sup = cluster.start("--log-level", "INFO", imports=TASKS)
    cluster.wait_status([job.id, debug.id])
    got = lines_of(job.id)
    assert got == [
        ("out", "printed to stdout"), ("err", "printed to stderr"),
        ("log", "INFO log_tasks: an info record 7"), ("log", "WARNING root: a root warning"),
        ("out", "child stdout"), ("err", "child stderr"), ("out", "no newline at the end"),
    ] or sorted(got) == sorted([  # the child's two pipes may be read in either order
        ("out", "printed to stdout"), ("err", "printed to stderr"),
        ("log", "INFO log_tasks: an info record 7"), ("log", "WARNING root: a root warning"),
        ("out", "child stdout"), ("err", "child stderr"), ("out", "no newline at the end"),
    ])  # fmt: skip
    assert ("log", "DEBUG log_tasks: a debug record kept") in lines_of(debug.id)
    times = [line.at for line in read_log(job.id).lines]
    assert all(abs(t - time.time()) < 60 for t in times)
    shown = cli(db_url, "logs", job.id)
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout.decode()
    assert " out printed to stdout\n" in text and " log INFO log_tasks: an info record 7\n" in text
    as_json = [
        json.loads(line) for line in cli(db_url, "logs", job.id, "--json").stdout.splitlines()
    ]
    assert as_json[0]["attempt"] == 1 and as_json[0]["stream"] in ("out", "err", "log")
    assert {item["text"] for item in as_json} >= {"printed to stdout", "child stderr"}
    cluster.stop()
    assert "printed to stdout" not in sup.log() and "child stderr" not in sup.log()


def test_logs_follow_a_running_job_until_it_ends(cluster, db_url):
    job = jobtui.enqueue("log_tasks.ticking", args=["tick"])
    cluster.start(imports=TASKS)
    follower = subprocess.Popen(
        [sys.executable, "-m", "jobtui", "--database", db_url, "logs", job.id, "-f"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        first = follower.stdout.readline()  # shown while the job still runs
        assert first.endswith(" out tick 1\n"), first
        assert get_job(job.id).status == "running" and follower.poll() is None
        cluster.open_gate("tick")
        rest, err = follower.communicate(timeout=30)
    finally:
        follower.kill()
    assert follower.returncode == 0, err
    assert rest.endswith(" out tick 2\n")


def test_max_log_bytes_keeps_the_start_and_counts_the_rest(cluster, db_url):
    job = jobtui.enqueue("log_tasks.flood", args=[200, 100])  # 200 lines of 100 bytes
    cluster.start("--max-log-bytes", "2500", imports=TASKS)
    cluster.wait_status([job.id])
    page = read_log(job.id)
    assert [line.text[:6] for line in page.lines] == [f"{n:06d}" for n in range(25)]
    assert page.dropped == {1: (175 * 100, 175)}
    shown = cli(db_url, "logs", job.id).stdout.decode()
    assert "17,500 bytes (175 lines) dropped" in shown


def test_a_thousand_lines_reach_the_database_in_a_few_chunks(cluster, db_url):
    """Lines travel in batches with the outcomes, never a write per line: 1,000 lines
    printed in a burst are a handful of rows of job_logs, all of them kept in order."""
    from jobtui.models.joblog import JobLog

    job = jobtui.enqueue("log_tasks.flood", args=[1000, 20])  # 20 KB, under the cap
    cluster.start(imports=TASKS)
    cluster.wait_status([job.id])
    chunks = JobLog.select().where(JobLog.job == job.id).count()
    print(f"1,000 lines in {chunks} row(s) of job_logs")
    assert 1 <= chunks <= 10, f"{chunks} rows for 1,000 lines"
    assert [line.text[:6] for line in read_log(job.id).lines] == [f"{n:06d}" for n in range(1000)]


def test_a_deleted_job_takes_its_log_with_it(cluster, db_url):
    job = jobtui.enqueue("log_tasks.chatty")
    cluster.start(imports=TASKS)
    cluster.wait_status([job.id])
    count = "SELECT COUNT(*) FROM job_logs WHERE job_id = %s" if "postgres" in db_url else (
        "SELECT COUNT(*) FROM job_logs WHERE job_id = ?")  # fmt: skip
    assert get_database().execute_sql(count, (job.id,)).fetchone()[0] >= 1
    assert delete_jobs([job.id]).changed == 1
    assert get_database().execute_sql(count, (job.id,)).fetchone()[0] == 0


def test_hostile_output_stays_data_in_the_cli_and_the_supervisors_log(cluster, db_url):
    texts = list(HOSTILE.values())
    job = jobtui.enqueue("log_tasks.hostile", args=[texts])
    sup = cluster.start("--log-level", "INFO", imports=TASKS)
    cluster.wait_status([job.id])
    kept = [line.text for line in read_log(job.id).lines if line.stream == "log"]
    assert kept == [f"WARNING log_tasks: {text}" for text in texts]  # the data stays exact
    shown = cli(db_url, "logs", job.id)
    assert shown.returncode == 0
    out = shown.stdout.decode("utf-8")
    assert acting_chars(out.replace("\n", "")) == "" and "\x1b" not in out
    assert "␛]0;PWNED␇" in out
    assert len(out.splitlines()) == len(read_log(job.id).lines)  # no text starts a line
    as_json = cli(db_url, "logs", job.id, "--json").stdout.decode("utf-8")
    assert acting_chars(as_json.replace("\n", "")) == ""
    assert [json.loads(line)["text"] for line in as_json.splitlines()] == [
        line.text for line in read_log(job.id).lines]  # fmt: skip
    wait_until(lambda: "late output" in sup.log(), 10, "the late child's output logged")
    cluster.stop()
    raw = sup.log_path.read_bytes()
    assert b"\x1b" not in raw and b"\x07" not in raw
    assert "␛]0;PWNED␇ late output" in raw.decode("utf-8")
    assert PWNED not in raw.decode("utf-8")
