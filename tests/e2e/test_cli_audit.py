"""``jobtui retry ID --args/--kwargs`` and ``jobtui audit``, in-process on both engines
(every CLI action writes exactly one audit row, a failed one none), through the installed
console script (exit codes, one-line errors) and through a real supervisor (the edited
job runs with its new arguments; its first attempt keeps the old ones)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hostile import HOSTILE, acting_chars
from supervisor_harness import TASKS, wait_until

import jobtui
from jobtui.cli import main
from jobtui.models import Job, JobAttempt
from jobtui.models.audit import AuditEntry, os_identity
from jobtui.models.clock import utcnow

pytestmark = pytest.mark.timeout(90)
JOBTUI = str(Path(sys.executable).parent / "jobtui")


@pytest.fixture
def cli(db, db_url):
    def run(*args: str) -> int:
        return main(["--database", db_url, *args])

    return run


def rows() -> list[AuditEntry]:
    return list(AuditEntry.select().order_by(AuditEntry.id))


def job_in(status: str, **options) -> str:
    job = jobtui.enqueue("t.task", args=[1], **options)
    if status != "pending":
        Job.update(status=status, attempt=1, lease_token="x", error_message="boom").where(
            Job.id == job.id).execute()  # fmt: skip
    return job.id


def _schedule() -> str:
    jobtui.schedule("nightly", "0 2 * * *", "t.task")
    AuditEntry.delete().execute()  # the set-up's own row
    return "nightly"


#: action -> the command line (built from a fresh fixture) and the count it records
CLI_ACTIONS = {
    "cancel": (lambda: ["cancel", job_in("pending")], 1),
    "kill": (lambda: ["cancel", "--kill", job_in("running")], 1),
    "retry": (lambda: ["retry", job_in("failed")], 1),
    "edit": (lambda: ["retry", job_in("failed"), "--args", "[2]", "--priority", "5"], 1),
    "delete": (lambda: ["delete", job_in("completed")], 1),
    "pause": (lambda: ["pause", "default"], None),
    "resume": (lambda: ["resume", "default"], None),
    "limit": (lambda: ["limit", "default", "4"], None),
    "purge": (lambda: ["purge", "--failed", job_in("failed") and "--json"], 1),
    "schedule add": (lambda: ["schedule", "add", "s1", "*/5 * * * *", "t.task"], None),
    "schedule remove": (lambda: ["schedule", "remove", _schedule()], None),
    "schedule pause": (lambda: ["schedule", "pause", _schedule()], None),
    "schedule resume": (lambda: ["schedule", "resume", _schedule()], None),
    "schedule run-now": (lambda: ["schedule", "run-now", _schedule()], 1),
    "rate": (lambda: ["rate", "task:t.task", "10/m"], None),
    "aging": (lambda: ["aging", "default", "10m"], None),
}


def test_a_key_limit_is_audited_with_its_scope(cli, capsys):
    assert cli("limit", "key:customer:*", "2") == 0, capsys.readouterr().err
    [row] = rows()
    assert (row.action, row.target, row.where) == ("limit", "key:customer:*", "cli")
    assert cli("limit", "key:customer:*", "0") != 0  # refused: writes no row
    assert len(rows()) == 1


@pytest.mark.parametrize("action", list(CLI_ACTIONS))
def test_each_cli_action_writes_one_row(cli, capsys, action):
    build, count = CLI_ACTIONS[action]
    argv = build()
    assert cli(*argv) == 0, capsys.readouterr().err
    [row] = rows()
    assert (row.action, row.where, row.count) == (action, "cli", count)
    assert (row.actor, row.host) == os_identity()


def test_batch_cancel_is_audited_with_its_batch(cli, capsys):
    with jobtui.batch() as b:
        jobtui.enqueue("t.task")
        jobtui.enqueue("t.task")
    assert cli("batch", "cancel", b.id) == 0
    [row] = rows()
    assert (row.action, row.count, row.arguments["batch"]) == ("cancel", 2, b.id)


@pytest.mark.parametrize("argv", [
    ["cancel", "0" * 32],  # an unknown id
    ["retry", "PENDING"],  # a refused transition
    ["cancel", "COMPLETED"],
    ["delete", "RUNNING"],
    ["retry", "PENDING", "--args", "[1]"],
    ["retry", "FAILED", "--args", "{not json"],
    ["retry", "FAILED", "--kwargs", "[1]"],
    ["retry", "FAILED", "--args", "[1]", "--queue", " "],
    ["schedule", "remove", "no-such"],
    ["schedule", "run-now", "no-such"],
    ["schedule", "add", "s", "not cron", "t.task"],
    ["pause", "no-such-queue"],
    ["limit", "default", "0"],
])  # fmt: skip
def test_a_failed_cli_action_writes_none(cli, capsys, argv):
    ids = {"PENDING": job_in("pending"), "COMPLETED": job_in("completed"),
           "RUNNING": job_in("running"), "FAILED": job_in("failed")}  # fmt: skip
    code = cli(*[ids.get(a, a) for a in argv])
    err = capsys.readouterr().err
    assert code == 1 and rows() == [], err
    if argv[0] == "retry" and "--args" in argv or "--kwargs" in argv:
        assert Job.get_by_id(ids["FAILED"]).parameters == {"args": [1], "kwargs": {}}


def test_edit_and_retry_prints_and_records_what_changed(cli, capsys):
    job_id = job_in("failed")
    assert cli("retry", job_id, "--args", '["x"]', "--kwargs", '{"k": 2}', "--queue", "fixes",
               "--priority", "high", "--json") == 0  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert out["action"] == "edit" and out["jobs"] == [{"id": job_id, "result": "retrying"}]
    assert out["parameters"] == {"args": ["x"], "kwargs": {"k": 2}}
    assert (out["queue"], out["priority"]) == ("fixes", 10)
    job = Job.get_by_id(job_id)
    assert (job.status, job.queue_name, job.priority) == ("pending", "fixes", 10)
    assert rows()[0].arguments["was"] == {"args": [1], "kwargs": {}}


def test_edit_takes_one_job(cli, capsys):
    assert cli("retry", job_in("failed"), job_in("failed"), "--args", "[1]") == 1
    assert "give one id" in capsys.readouterr().err
    assert cli("retry", "--all-failed", "--kwargs", "{}") == 1


def test_audit_lists_newest_first_and_filters_by_time(cli, capsys):
    cli("pause", "default")
    cli("resume", "default")
    AuditEntry.update(at=utcnow().replace(year=2020)).where(AuditEntry.action == "pause").execute()
    capsys.readouterr()
    assert cli("audit", "--json") == 0
    assert [r["action"] for r in json.loads(capsys.readouterr().out)] == ["resume", "pause"]
    assert cli("audit", "--since", "1h", "--json") == 0
    [entry] = json.loads(capsys.readouterr().out)
    assert (
        entry["action"] == "resume" and entry["where"] == "cli" and entry["at"].endswith("+00:00")
    )
    assert cli("audit", "--since", "2021-01-01T00:00Z") == 0
    out = capsys.readouterr().out
    assert "resume" in out and "pause" not in out
    with pytest.raises(SystemExit) as exited:  # argparse's usage error, as for --at
        cli("audit", "--since", "yesterday")
    assert exited.value.code == 2 and "neither a span" in capsys.readouterr().err


def test_hostile_text_in_the_audit_listing_is_shown_not_acted_on(cli, capsys):
    every = "".join(text for name, text in HOSTILE.items() if "\x00" not in text)
    job_id = job_in("pending")
    jobtui.cancel(job_id, reason=every, actor=every)
    jobtui.schedule(every[:60], "0 2 * * *", "t.task", actor=every)
    capsys.readouterr()
    for argv in (["audit"], ["audit", "--json"]):
        assert cli(*argv) == 0
        out = capsys.readouterr().out
        assert acting_chars(out).strip("\n") == acting_chars(out).replace("\n", "") == "", argv


def test_the_installed_script_says_bad_json_in_one_line(db, db_url):
    job_id = job_in("failed")
    done = subprocess.run([JOBTUI, "--database", db_url, "retry", job_id, "--args", "[1,"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1 and done.stdout == ""
    assert (
        done.stderr.startswith("jobtui: --args is not valid JSON") and done.stderr.count("\n") == 1
    )
    assert Job.get_by_id(job_id).status == "failed" and rows() == []


def test_edit_and_retry_through_a_real_supervisor(cluster, capsys):
    """A job that failed on its arguments (the worker's signature check) runs with the
    edited ones; its first attempt keeps what it ran with, and ``show`` prints both."""
    job = jobtui.enqueue(f"{TASKS}.add", args=[1])  # b is missing
    cluster.start(workers=1)
    cluster.wait_status([job.id], ["failed"])
    assert "InvalidParameters" in (Job.get_by_id(job.id).error_type or "")
    assert main(["retry", job.id, "--kwargs", '{"b": 41}']) == 0
    assert jobtui.wait(job.id, timeout=20)["value"] == 42  # the logged task wraps it
    first, second = JobAttempt.select().where(JobAttempt.job == job.id).order_by(JobAttempt.attempt)
    assert first.parameters == {"args": [1], "kwargs": {}} and first.outcome == "failed"
    assert second.parameters is None and second.outcome == "completed"  # the job's own
    capsys.readouterr()
    assert main(["show", job.id, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["parameters"] == {"args": [1], "kwargs": {"b": 41}}
    assert shown["attempts"][0]["parameters"] == {"args": [1], "kwargs": {}}
    assert main(["show", job.id]) == 0
    assert 'attempt 1 ran with  {"args": [1], "kwargs": {}}' in capsys.readouterr().out
    [row] = [r for r in rows() if r.action == "edit"]
    assert row.where == "cli" and row.count == 1


def test_the_supervisor_prunes_audit_rows_past_their_retention(sqlite_cluster):
    """``--audit-retention-days``: old rows go (even with job retention off), recent stay."""
    from datetime import timedelta

    from jobtui.models import audit

    for name in ("old-1", "old-2", "recent"):
        audit.record("pause", name)
    AuditEntry.update(at=utcnow() - timedelta(days=31)).where(
        AuditEntry.target.startswith("old")).execute()  # fmt: skip
    sup = sqlite_cluster.start("--audit-retention-days", "30", "--retention-days", "0", workers=1)
    wait_until(lambda: [r.target for r in rows()] == ["recent"], 20, "old audit rows pruned",
               explain=sup.log)  # fmt: skip
    assert "pruned 2 audit row(s) older than 30 days" in sup.log()
