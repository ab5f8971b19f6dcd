"""The admin CLI, in-process (fast) and as the installed console script (exit codes, stderr)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC

import pytest
from supervisor_harness import TASKS, wait_until

import jobtui
from jobtui.cli import main
from jobtui.models import Job, Queue, claim_jobs, fail_job, store

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def cli(db, db_url):
    """Run ``jobtui --database URL ARGS...`` in-process: (exit code, stdout, stderr)."""

    def run(*args: str, capsys=None) -> int:
        return main(["--database", db_url, *args])

    return run


def _out(capsys) -> tuple[str, str]:
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_enqueue_prints_the_id_and_writes_the_job(cli, capsys):
    assert cli("enqueue", "mail.send", "--args", '["a@x"]', "--kwargs", '{"subject": "hi"}',
               "--queue", "emails", "--priority", "5", "--delay", "30", "--tag", "billing",
               "--reference", "order:42", "--user-id", "u1") == 0  # fmt: skip
    job_id = _out(capsys)[0].strip()
    job = Job.get_by_id(job_id)
    assert (job.job_type, job.queue_name, job.priority) == ("mail.send", "emails", 5)
    assert job.parameters == {"args": ["a@x"], "kwargs": {"subject": "hi"}}
    assert (job.reference_type, job.reference_id, job.user_id) == ("order", "42", "u1")
    assert job.tags == ["billing"] and job.scheduled_for is not None


def test_enqueue_json_prints_the_job_object(cli, capsys):
    assert cli("enqueue", "t.x", "--json") == 0
    data = json.loads(_out(capsys)[0])
    assert data["job_type"] == "t.x" and data["status"] == "pending"
    assert data["created_at"].endswith("+00:00")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["enqueue", "t.x", "--args", "[1"], "--args is not valid JSON"),
        (["enqueue", "t.x", "--args", '{"a": 1}'], "--args must be a JSON array"),
        (["enqueue", "t.x", "--kwargs", "[1]"], "--kwargs must be a JSON object"),
        (["enqueue", "t.x", "--delay", "-1"], "delay must be >= 0"),
        (["enqueue", "t.x", "--depends-on", "nope"], "no job nope"),
        (["show", "01a2ffff-0000-7000-8000-000000000000"], "no job"),
        (["cancel", "nope-nope"], "no job"),
        (["jobs", "--status", "weird"], "unknown status"),
        (["schedule", "add", "s", "61 * * * *", "t.x"], "bad cron expression"),
        (["limit", "api", "0"], "limit '0': a whole number of at least 1, or none"),
        (["enqueue", "t.x", "--metadata", "[1]"], "--metadata must be a JSON object"),
        (["enqueue", "t.x", "--deadline", "-5"], "deadline"),
        (["limit", "api", "lots"], "limit 'lots': a whole number of at least 1, or none"),
        (["rate", "api", "fast"], "a rate is N/s, N/m, N/h or N/d"),
        (["rate", "api", "0/s"], "a rate allows at least one start"),
        (["rate", "bucket:x", "1/s"], "a rate names queue:NAME, task:NAME or key:KEY"),
        (["rate", "api"], "give the rate too"),
        (["rate", "emial", "1/s"], "no queue 'emial'"),
        (["limit", "key:", "2"], "a key limit names key:PATTERN, task:NAME or queue:NAME"),
    ],
)
def test_user_mistakes_are_one_line_and_write_nothing(cli, capsys, args, message):
    assert cli(*args) == 1
    out, err = _out(capsys)
    assert message in err and err.count("\n") == 1 and err.startswith("jobtui: ")
    assert Job.select().count() == 0


def test_jobs_show_and_status(cli, capsys):
    cli("enqueue", "t.a")
    cli("enqueue", "t.b", "--queue", "other")
    first, second = _out(capsys)[0].split()
    assert cli("jobs", "--json") == 0
    listed = json.loads(_out(capsys)[0])
    assert [j["id"] for j in listed] == [second, first]  # newest first
    assert cli("jobs", "--queue", "other", "--json") == 0
    assert [j["id"] for j in json.loads(_out(capsys)[0])] == [second]
    assert cli("show", second[:13], "--json") == 0
    assert json.loads(_out(capsys)[0])["id"] == second
    assert cli("status", "--json") == 0
    status = json.loads(_out(capsys)[0])
    assert status["queues"]["default"]["counts"]["pending"] == 1
    assert status["queues"]["other"]["counts"]["pending"] == 1
    assert cli("status") == 0 and "no supervisors running" in _out(capsys)[0]


def test_cancel_retry_delete_pause_resume_purge(cli, capsys):
    cli("enqueue", "t.a")
    cli("enqueue", "t.b")
    a, b = _out(capsys)[0].split()
    assert cli("cancel", a) == 0
    assert Job.get_by_id(a).status == "cancelled"
    assert cli("retry", a) == 0
    assert Job.get_by_id(a).status == "pending"
    claimed = claim_jobs(1, tasks=["t.b"])
    assert cli("cancel", b) == 0
    assert Job.get_by_id(b).cancel_requested and Job.get_by_id(b).status == "running"
    assert "asked 1 running job to stop" in _out(capsys)[0]
    assert cli("cancel", b, "--kill", "--reason", "stuck on a lock") == 0  # asked, now killed
    assert "killing 1 running job" in _out(capsys)[0]
    row = Job.get_by_id(b)
    assert (row.kill_requested, row.cancel_reason) == (True, "stuck on a lock")
    assert cli("cancel", b, "--kill") == 1  # already being killed: nothing new
    assert "1 job already ended or stopping" in _out(capsys)[0]
    assert cli("delete", b) == 1  # running: refused
    assert "still running" in _out(capsys)[1]
    fail_job(b, claimed[0].attempt, claimed[0].lease_token, "boom", permanent=True)
    assert cli("retry", "--all-failed") == 0
    assert Job.get_by_id(b).status == "pending" and Job.get_by_id(b).retry_count == 0
    assert cli("delete", b) == 0
    assert Job.get_or_none(Job.id == b) is None
    assert cli("pause", "default") == 0 and Queue.get_by_id("default").paused
    assert claim_jobs(5) == []
    assert cli("resume", "default") == 0 and not Queue.get_by_id("default").paused
    assert cli("cancel", a) == 0
    assert cli("purge", "--older-than", "0") == 0
    assert Job.select().count() == 0


def test_purge_failed_deletes_only_failed_jobs(cli, capsys):
    """``purge --failed`` is seed 004's ``queue:clear-failed``: completed and cancelled jobs
    stay; ``--queue`` narrows it."""
    ids = {}
    for name, queue in (("done", "default"), ("gone", "default"), ("bad", "default"),
                        ("bad_mail", "mail")):  # fmt: skip
        assert cli("enqueue", f"t.{name}", "--queue", queue) == 0
        ids[name] = _out(capsys)[0].strip()
    assert cli("cancel", ids["gone"]) == 0
    for name in ("done", "bad", "bad_mail"):
        (run,) = claim_jobs(1, tasks=[f"t.{name}"])
        if name == "done":
            from jobtui.models import complete_job

            complete_job(run.id, run.attempt, run.lease_token, 1)
        else:
            fail_job(run.id, run.attempt, run.lease_token, "boom", permanent=True)
    assert cli("purge", "--failed", "--queue", "mail") == 0
    assert "purged 1 job (failed of queue mail)" in _out(capsys)[0]
    assert Job.get_or_none(Job.id == ids["bad_mail"]) is None
    assert cli("purge", "--failed", "--older-than", "1") == 0  # the other one is recent
    assert Job.get_or_none(Job.id == ids["bad"]) is not None
    assert cli("purge", "--failed") == 0
    assert {j.id for j in Job.select()} == {ids["done"], ids["gone"]}
    assert cli("purge") == 1 and "--older-than" in _out(capsys)[1]


def test_schedule_commands(cli, capsys):
    assert cli("schedule", "add", "nightly", "0 2 * * *", "reports.build",
               "--timezone", "Europe/Berlin", "--args", "[1]") == 0  # fmt: skip
    assert cli("schedule", "list", "--json") == 0
    (row,) = json.loads(_out(capsys)[0].split("\n", 1)[1])
    assert (row["name"], row["cron"], row["timezone"]) == ("nightly", "0 2 * * *", "Europe/Berlin")
    assert cli("schedule", "pause", "nightly") == 0
    assert cli("schedule", "run-now", "nightly") == 0
    job_id = _out(capsys)[0].strip().splitlines()[-1]
    job = Job.get_by_id(job_id)
    assert job.job_type == "reports.build" and job.schedule_name == "nightly" and job.args == [1]
    assert cli("schedule", "remove", "nightly") == 0
    assert cli("schedule", "remove", "nightly") == 1


def _script(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jobtui", *args], capture_output=True,
                          text=True, timeout=30, env={**os.environ, **(env or {})})  # fmt: skip


def test_console_script_round_trip(tmp_path):
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    done = _script("--database", url, "enqueue", "t.x", "--args", "[1]")
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()
    shown = _script("--database", url, "show", job_id, "--json")
    assert json.loads(shown.stdout)["id"] == job_id


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://postgres@127.0.0.1:1/nothing", "cannot reach database"),
        ("sqlite:////no/such/folder/jobs.db", "does not exist"),
        ("mysql://x@y/z", "unsupported database URL"),
    ],
)
def test_console_script_reports_bad_databases_in_one_line(url, message):
    started = time.monotonic()
    done = _script("--database", url, "status")
    assert time.monotonic() - started < 10
    assert done.returncode == 1
    assert message in done.stderr and done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr


def test_password_never_printed():
    done = _script("--database", "postgresql://u:s3cret@127.0.0.1:1/x", "status")
    assert done.returncode == 1 and "s3cret" not in done.stderr and "***" in done.stderr


def test_newer_schema_is_refused_and_untouched(tmp_path):
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    assert _script("--database", url, "enqueue", "t.x").returncode == 0
    import sqlite3

    conn = sqlite3.connect(tmp_path / "jobs.db")
    conn.execute("UPDATE jobtui_schema SET version = 999")
    conn.commit()
    before = conn.execute("SELECT COUNT(*) FROM jobs").fetchone()
    done = _script("--database", url, "enqueue", "t.y")
    assert done.returncode == 1 and "newer jobtui" in done.stderr
    assert conn.execute("SELECT COUNT(*) FROM jobs").fetchone() == before
    assert conn.execute("SELECT version FROM jobtui_schema").fetchone() == (999,)
    conn.close()
    store.reset()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "0"], "no workers: give --workers N or --queue NAME=N"),
        (["--queue", "a=0"], "--queue 'a=0': N must be at least 1"),
        (["--max-memory-per-worker", "-5"], "--max-memory-per-worker must be >= 0"),
        (["--max-jobs-per-worker", "-1"], "--max-jobs-per-worker must be >= 0"),
        (["--lease", "0"], "--lease must be > 0"),
        (["--default-timeout", "-1"], "--default-timeout must be >= 0"),
        (["--lease", "9"], "--lease (9 s) must be at least twice --heartbeat-interval (5 s)"),
        (["--import", "no_such_module_x"], "cannot import no_such_module_x"),
    ],
)
def test_supervisor_option_mistakes_are_one_line(tmp_path, args, message):
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    argv = args if "--import" in args else ["--import", "jobtui.demo", *args]
    done = subprocess.run([sys.executable, "-m", "jobtui.supervisor.main", "--database", url,
                           *argv], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("jobtui-supervisor: ") and message in line


def test_priority_takes_an_integer_or_a_level_name(cli, capsys):
    assert cli("enqueue", "t.x", "--priority", "critical") == 0
    assert cli("enqueue", "t.x", "--priority", "-3") == 0
    assert sorted(j.priority for j in Job.select()) == [-3, 20]
    with pytest.raises(SystemExit) as exit_:
        cli("enqueue", "t.x", "--priority", "urgent")
    assert exit_.value.code == 2
    assert "priority 'urgent': an integer or one of low, normal, high, critical" in _out(capsys)[1]


def test_enqueue_at_a_moment_local_or_with_an_offset(cli, capsys):
    from datetime import datetime, timedelta

    local = (datetime.now() + timedelta(hours=2)).replace(microsecond=0)
    assert cli("enqueue", "t.x", "--at", local.isoformat(sep=" ", timespec="minutes")) == 0
    assert cli("enqueue", "t.x", "--at", "2030-01-02T03:04:05+01:00") == 0
    first, second = Job.select().order_by(Job.id)
    expected = local.replace(second=0).astimezone().astimezone(UTC).replace(tzinfo=None)
    assert first.scheduled_for == first.run_at == expected  # local time, stored as UTC
    assert second.run_at == datetime(2030, 1, 2, 2, 4, 5)
    assert claim_jobs(5) == []  # not due yet
    with pytest.raises(SystemExit):
        cli("enqueue", "t.x", "--at", "tomorrow")
    assert "'tomorrow' is not a date and time: use ISO 8601" in _out(capsys)[1]


def test_batch_list_show_jobs_and_cancel(cli, capsys):
    """An operator follows a batch and calls off what is left of it: pending jobs end at
    once with the reason, the running one is asked to stop; the batch ends failed once
    that one ends too, and its on_failure callback is enqueued."""
    with jobtui.batch(on_failure="etl.alert") as b:
        for n in range(3):
            jobtui.enqueue("etl.load", args=[n])
    (running,) = claim_jobs(1)
    assert cli("batch", "list") == 0
    header, row = _out(capsys)[0].splitlines()[:2]
    assert row.split()[:4] == [b.id, "0", "3", "0"]
    assert cli("batch", "show", b.id[:13]) == 0  # a unique prefix, as for jobs
    out = _out(capsys)[0]
    assert "progress   0/3 ended (2 pending, 1 running)" in out and "on_failure etl.alert" in out
    assert cli("jobs", "--batch", b.id, "--json") == 0
    assert len(json.loads(_out(capsys)[0])) == 3

    assert cli("batch", "cancel", b.id, "--reason", "bad input file") == 0
    assert "cancelled 2 jobs; asked 1 running job to stop" in _out(capsys)[0]
    ended = Job.select().where(Job.status == "cancelled")
    assert {j.error_message for j in ended} == {"bad input file"} and len(ended) == 2
    assert cli("batch", "cancel", b.id) == 1  # the running one is already asked
    fail_job(running.id, running.attempt, running.lease_token, "stopped", permanent=True)
    assert cli("batch", "list") == 0 and "no open batches" in _out(capsys)[0]
    assert cli("batch", "list", "--all", "--json") == 0
    (finished,) = json.loads(_out(capsys)[0])
    assert (finished["done"], finished["outcome"]) == (3, "failure")
    assert Job.select().where(Job.job_type == "etl.alert").count() == 1
    assert cli("batch", "show", "nope") == 1
    assert "no batch nope" in _out(capsys)[1]


def test_limit_caps_a_queue_and_status_shows_it(cli, capsys):
    for n in range(3):
        assert cli("enqueue", "t.x", "--queue", "api", "--args", f"[{n}]") == 0
    assert cli("limit", "api", "2") == 0
    assert "at most 2 running at once" in _out(capsys)[0]
    assert len(claim_jobs(5)) == 2 and claim_jobs(5) == []
    assert cli("status", "--json") == 0
    assert json.loads(_out(capsys)[0])["queues"]["api"]["limit"] == 2
    assert cli("status") == 0
    header, row = _out(capsys)[0].splitlines()[:2]
    assert "limit" in header.lower().split() and row.split()[0] == "api" and row.split()[-1] == "2"
    assert cli("limit", "api", "none") == 0 and "no limit" in _out(capsys)[0]
    assert len(claim_jobs(5)) == 1


def test_jobs_by_user_tag_and_reference(cli, capsys):
    import jobtui

    mine = jobtui.enqueue("t.x", user_id="42", tags=["urgent"], reference_type="order",
                          reference_id="7").id  # fmt: skip
    jobtui.enqueue("t.x", user_id="43", tags=["not-urgent"], reference_type="order",
                   reference_id="8")  # fmt: skip
    for args in (["--user", "42"], ["--tag", "urgent"], ["--reference", "order:7"]):
        assert cli("jobs", "--json", *args) == 0
        assert [j["id"] for j in json.loads(_out(capsys)[0])] == [mine], args
    assert cli("jobs", "--json", "--reference", "order") == 0
    assert len(json.loads(_out(capsys)[0])) == 2


def test_enqueue_with_a_deadline_metadata_and_description(cli, capsys):
    assert cli("enqueue", "t.x", "--deadline", "60", "--metadata", '{"source": "ops"}',
               "--description", "rerun of last night's import") == 0  # fmt: skip
    job = Job.get()
    assert job.metadata == {"source": "ops"} and job.description.startswith("rerun")
    assert 55 <= (job.deadline - job.created_at).total_seconds() <= 65


def test_status_and_workers_list_a_running_supervisor_and_its_workers(cluster, db_url, capsys):
    """What an operator types first on a live system: the supervisor and each worker, the
    busy one naming its job (in the table and in --json)."""
    sup = cluster.start(workers=2)
    busy = jobtui.enqueue(f"{TASKS}.gated", args=["status"])
    cluster.wait_started(busy.id)

    def worker_shows_the_job():
        main(["--database", db_url, "workers", "--json"])
        (listed,) = json.loads(capsys.readouterr().out)
        jobs = [w["current_job_id"] for w in listed["workers"]]
        return listed if busy.id in jobs else None

    listed = wait_until(worker_shows_the_job, 15, "the busy worker's heartbeat")
    assert listed["name"] == sup.name and listed["pid"] == sup.pid
    assert listed["heartbeat_interval_s"] == 0.2  # the harness's: the console judges by it
    assert {w["pid"] for w in listed["workers"]} == sup.worker_pids()
    assert main(["--database", db_url, "status", "--json"]) == 0
    assert json.loads(_out(capsys)[0])["queues"]["default"]["workers"] == 2  # serving it
    assert main(["--database", db_url, "status"]) == 0
    out = _out(capsys)[0]
    assert sup.name in out and busy.id in out and out.count(" worker ") == 2
    assert main(["--database", db_url, "workers"]) == 0
    out = _out(capsys)[0]
    assert busy.id in out and "STALE" not in out
    cluster.open_gate("status")
    assert jobtui.wait(busy.id, timeout=15)["value"] == "status"

    def stale_rows() -> int:
        main(["--database", db_url, "workers"])
        return _out(capsys)[0].count("STALE")

    sup.signal(signal.SIGSTOP)  # frozen: its rows age past 3 heartbeat intervals (0.6 s)
    try:
        wait_until(lambda: stale_rows() == 3, 10, "the supervisor and its workers stale")
    finally:
        sup.signal(signal.SIGCONT)
    wait_until(lambda: stale_rows() == 0, 10, "fresh heartbeats again")
    cluster.check()


def test_rate_and_key_limits_from_the_command_line(cli, capsys):
    for n in range(3):
        assert cli("enqueue", "t.x", "--queue", "api", "--args", f"[{n}]") == 0
    assert cli("enqueue", "t.x", "--concurrency-key", "customer:1") == 0
    assert cli("enqueue", "t.x", "--concurrency-key", "customer:1") == 0
    held_id = _out(capsys)[0].split()[-1]
    assert cli("rate", "api", "1/h") == 0
    assert "queue:api: at most 1 starts per 3600 s" in _out(capsys)[0]
    assert cli("rate", "key:api:stripe", "5/s", "--json") == 0
    assert json.loads(_out(capsys)[0]) == {"action": "rate", "scope": "key:api:stripe",
                                           "rate": "5/s", "max_starts": 5, "period_s": 1.0}  # fmt: skip
    assert cli("limit", "key:customer:*", "1", "--json") == 0
    assert json.loads(_out(capsys)[0]) == {"action": "limit", "scope": "key:customer:*",
                                           "limit": 1}  # fmt: skip
    claimed = claim_jobs(10)
    assert sorted(c.queue_name for c in claimed) == ["api", "default"]
    assert cli("rate") == 0
    listing = _out(capsys)[0]
    assert "queue:api" in listing and "1/h" in listing and "key:api:stripe" in listing
    assert cli("rate", "--json") == 0
    assert [r["name"] for r in json.loads(_out(capsys)[0])] == ["key:api:stripe", "queue:api"]
    assert cli("show", held_id, "--json") == 0
    shown = json.loads(_out(capsys)[0])
    assert shown["held"] == "key customer:1 at 1/1" and shown["concurrency_key"] == "customer:1"
    assert cli("show", held_id) == 0
    assert "key customer:1 at 1/1" in _out(capsys)[0]
    assert cli("status", "--json") == 0
    status = json.loads(_out(capsys)[0])
    assert status["queues"]["api"]["rate"] == "1/h"
    assert [k["running"] for k in status["key_limits"]] == [{"customer:1": 1}]
    assert [r["rate"] for r in status["rates"]] == ["5/s", "1/h"]
    assert cli("limit", "api", "1", "--per-key") == 0
    assert "queue:api: at most 1 running at once for each key of the jobs of queue api" in (
        _out(capsys)[0])  # fmt: skip
    assert cli("limit", "emial", "1", "--per-key") == 1 and "no queue 'emial'" in _out(capsys)[1]
    assert cli("limit", "api", "none", "--per-key") == 0
    assert cli("rate", "api", "none") == 0 and "queue:api: no rate" in _out(capsys)[0]
    assert cli("limit", "key:customer:*", "none") == 0
    assert len(claim_jobs(10)) == 3
