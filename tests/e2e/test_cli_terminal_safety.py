"""Issue 12: the CLI shows job text with its control characters visible — tables, ``show``,
status/workers, batch show — and ``--json`` stays exact JSON that a terminal can show."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from hostile import HOSTILE, PWNED, acting_chars

from jobtui.api import enqueue
from jobtui.cli import main
from jobtui.models import Job, JobAttempt, Supervisor, Worker
from jobtui.models.clock import utcnow

pytestmark = pytest.mark.timeout(60)

SHOWN = "␛[31mRED␛[0m [red]x[/red] ␛]0;PWNED␇ ␛[2J clear"
#: Every case in one string (PostgreSQL text cannot hold NUL: that one is left out here).
EVERY_CASE = " | ".join(v for k, v in sorted(HOSTILE.items()) if k != "very_long").replace(
    "\x00", ""
)
HOSTILE_NAME = "w\x1b]0;PWNED\x07\u202e1"


def hostile_job() -> str:
    """A failed job whose every text field a task controls is hostile, run by a worker
    with a hostile name (as a supervisor on a hostile host would register it)."""
    job = enqueue("tests.\x1b[2Jtask", args=[PWNED, EVERY_CASE], kwargs={"k": PWNED},
                  title=PWNED, description=EVERY_CASE, metadata={"m": PWNED})  # fmt: skip
    Job.update(status="failed", attempt=1, failed_at=utcnow(), error_type="Runtime\x9bError",
               error_message=PWNED + "\nforged: line", error_traceback="Traceback:\n" + EVERY_CASE,
               progress_message="\x1b[32mgreen\x1b[0m", result={"r": EVERY_CASE},
               worker_name=HOSTILE_NAME).where(Job.id == job.id).execute()  # fmt: skip
    now = utcnow()
    JobAttempt.create(job=job.id, attempt=1, worker_name=HOSTILE_NAME, pid=7, outcome="failed",
                      error_type="RuntimeError", error_message=PWNED,
                      started_at=now - timedelta(seconds=2), ended_at=now)  # fmt: skip
    Supervisor.create(name="sup\x1b[2J", host="h\x1b]0;x\x07", pid=100, heartbeat_at=now,
                      queues={"*": 1})  # fmt: skip
    Worker.create(name=HOSTILE_NAME, supervisor="sup\x1b[2J", host="h\x1b]0;x\x07", pid=101,
                  heartbeat_at=now, state="idle", queue_name="*")  # fmt: skip
    return job.id


@pytest.fixture
def cli(db, db_url, capsys):
    """``jobtui --database URL ARGS...`` in-process: (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["--database", db_url, *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def assert_visible(out: str) -> None:
    leaked = acting_chars(out.replace("\n", ""))
    assert leaked == "", f"emitted {leaked!r}"


def test_show_prints_every_field_on_its_line_with_controls_visible(cli):
    job_id = hostile_job()
    code, out, _ = cli("show", job_id)
    assert code == 0
    assert_visible(out)
    lines = out.splitlines()
    assert any(line.startswith("title") and line.endswith(SHOWN) for line in lines)
    error = next(line for line in lines if line.startswith("error_message"))
    assert error.endswith(SHOWN + "␤forged: line")  # the newline cannot forge a field
    assert not any(line.startswith("forged") for line in lines)
    assert "␛[32mgreen" in out and "Runtime\\x9bError" in out and "\\u202e" in out
    assert "Traceback:\n" in out  # a traceback keeps its lines


@pytest.mark.parametrize("command", [["jobs"], ["jobs", "--status", "failed"], ["status"],
                                     ["workers"]])  # fmt: skip
def test_tables_show_controls_and_close_every_cell(cli, command):
    hostile_job()
    code, out, _ = cli(*command)
    assert code == 0
    assert_visible(out)
    assert "sup␛[2J" in out or "tests.␛[2Jtask" in out


@pytest.mark.parametrize("command", [["show"], ["jobs"], ["status"], ["workers"]])
def test_json_is_exact_and_safe_for_a_terminal(cli, command):
    job_id = hostile_job()
    code, out, _ = cli(*command, *([job_id] if command == ["show"] else []), "--json")
    assert code == 0
    assert_visible(out)
    data = json.loads(out)
    job = Job.get_by_id(job_id)
    if command == ["show"]:
        assert (data["title"], data["error_message"]) == (PWNED, job.error_message)
        assert (data["parameters"], data["result"]) == (job.parameters, job.result)
        assert data["attempts"][0]["worker_name"] == HOSTILE_NAME
    elif command == ["jobs"]:
        assert data[0]["description"] == EVERY_CASE
    else:
        supervisors = data["supervisors"] if command == ["status"] else data
        assert supervisors[0]["host"] == "h\x1b]0;x\x07"
        assert supervisors[0]["workers"][0]["name"] == HOSTILE_NAME


def test_lines_quoting_user_input_are_visible_and_an_error_stays_one_line(cli):
    code, _, err = cli("show", "\x1b]0;PWNED\x07\nforged")
    assert code == 1 and err.count("\n") == 1
    assert_visible(err) and "␛]0;PWNED␇␤forged" in err
    code, _, err = cli("pause", "q\x1b]0;PWNED\x07")  # a queue nothing names: refused
    assert code != 0 and err.count("\n") == 1 and "q\\x1b]0;PWNED\\x07" in err  # its repr
    assert_visible(err)
    code, out, _ = cli("pause", "q\x1b]0;PWNED\x07", "--new")
    assert code == 0 and out == "paused queue q␛]0;PWNED␇\n"


def test_the_console_script_writes_no_raw_control_bytes(db, db_url):
    """The installed command, its real stdout: no ESC, BEL or C1 byte reaches it."""
    job_id = hostile_job()
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    for args in (["show", job_id], ["jobs"], ["show", job_id, "--json"]):
        done = subprocess.run([sys.executable, "-m", "jobtui", "--database", db_url, *args],
                              capture_output=True, timeout=60, env=env)  # fmt: skip
        assert done.returncode == 0, done.stderr
        text = done.stdout.decode("utf-8")
        assert b"\x1b" not in done.stdout and b"\x07" not in done.stdout
        assert_visible(text)


def test_scale_says_hostile_names_visibly_on_one_line(cli, db):
    """Queue and supervisor names reach ``scale``'s errors from the command line and from
    supervisor rows (a hostile host's registration): shown, never emitted."""
    with db.atomic():
        Supervisor.create(name="sup\x1b[2J", host="h", pid=100, heartbeat_at=utcnow(),
                          queues={"q\x1b]0;PWNED\x07": 1}, heartbeat_interval_s=5.0)  # fmt: skip
    for name, value in sorted(HOSTILE.items()):
        if "\x00" in value or name == "very_long":
            continue
        code, _, err = cli("scale", value, "2")
        assert code == 1 and err.count("\n") == 1, (name, err)
        assert_visible(err)
        code, _, err = cli("scale", "--supervisor", value, "q", "2")
        assert code == 1 and err.count("\n") == 1, (name, err)
        assert_visible(err)
    code, _, err = cli("scale", "other", "2", "--supervisor", "sup\x1b[2J")
    assert code == 1 and "does not serve queue 'other'" in err and "q␛]0;PWNED␇=1" in err
    assert_visible(err)


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_keys_and_held_reasons_print_with_controls_visible(cli, db_url, case):
    """Rate keys and concurrency keys are job data: ``show`` (its held-back reason),
    ``status`` and ``rate`` print them with their controls shown, never emitted."""
    import jobtui
    from jobtui.models import claim_jobs
    from jobtui.models.key_limits import set_key_limit
    from jobtui.models.rates import set_rate

    text = HOSTILE[case][:190] or "empty"
    if not db_url.startswith("sqlite"):
        text = text.replace("\x00", "")  # PostgreSQL text cannot hold NUL at all
    jobtui.enqueue("t.x", concurrency_key=text, rate_key=text)
    held = jobtui.enqueue("t.x", concurrency_key=text, rate_key=text)
    set_key_limit("key:*", 1)
    set_rate(f"key:{text}", "1/h")
    assert len(claim_jobs(5)) == 1
    for args in (("show", held.id), ("status",), ("rate",), ("show", held.id, "--json")):
        code, out, err = cli(*args)
        assert code == 0, err
        assert_visible(out)
    code, out, _ = cli("show", held.id)
    assert "held" in out
