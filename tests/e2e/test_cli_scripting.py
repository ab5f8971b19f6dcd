"""The CLI as a script uses it: short ids, ``--json`` on every verb, ``enqueue --stdin``,
refusals that write nothing, read commands that never create a database, and tables that
stay aligned. On both engines where a database is involved."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid

import pytest

import jobtui
from jobtui.cli import main
from jobtui.models import Job, Queue, claim_jobs, store
from jobtui.models.worker import Supervisor

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def cli(db, db_url):
    """``jobtui --database URL ARGS...`` in-process; returns the exit code."""
    return lambda *args: main(["--database", db_url, *args])


def _out(capsys) -> tuple[str, str]:
    captured = capsys.readouterr()
    return captured.out, captured.err


def _script(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """The real ``jobtui`` command (as the console script runs it)."""
    return subprocess.run([sys.executable, "-m", "jobtui", *args], capture_output=True,
                          text=True, timeout=120, input=stdin, env=dict(os.environ))  # fmt: skip


def _job_with_id(job_id: str) -> str:
    made = jobtui.enqueue("t.x")
    Job.update(id=job_id).where(Job.id == made.id).execute()
    return job_id


# ------------------------------------------------------------------ short ids

A = "01a2aaaa-0000-7000-8000-77771234c0de"
B = "01a2bbbb-0000-7000-8000-88881234c0de"
C = "01a2cccc-0000-7000-8000-000001a2bbbb"  # ends with B's first 8 digits


def test_commands_take_the_console_short_id_and_unique_prefixes_or_suffixes(cli, capsys):
    made = jobtui.enqueue("t.x")
    assert cli("show", made.id[-8:], "--json") == 0  # what the console shows
    assert json.loads(_out(capsys)[0])["id"] == made.id
    for ident in (A, B, C):
        _job_with_id(ident)
    for typed, expected in [
        ("01a2aaaa", A),  # prefix, 8 digits
        ("01a2aaaa-0000-7", A),  # prefix with its dashes
        ("77771234c0de", A),  # suffix of 12 digits
        ("8000-77771234c0de", A),  # suffix with a dash
        (A.replace("-", ""), A),  # whole, without dashes
        (A.upper(), A),
    ]:
        assert cli("show", typed, "--json") == 0, _out(capsys)[1]
        assert json.loads(_out(capsys)[0])["id"] == expected, typed
    assert cli("cancel", made.id[-8:], "01a2aaaa") == 0
    assert _out(capsys)[0] == "cancelled 2 jobs\n"
    assert Job.get_by_id(made.id).status == Job.get_by_id(A).status == "cancelled"
    assert cli("retry", "77771234c0de", "--json") == 0
    assert json.loads(_out(capsys)[0])["jobs"] == [{"id": A, "result": "retrying"}]


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("1234c0de", f"job id '1234c0de' is ambiguous: it matches {A}, {B}"),
        ("01a2bbbb", f"job id '01a2bbbb' is ambiguous: it matches {B}, {C}"),  # prefix + suffix
        ("01a2aaa", "too short: give the whole id, or 8 or more of its hex digits"),
        ("deadbeef", "no job deadbeef"),
        ("zz-top", "no job zz-top"),
    ],
)
def test_an_ambiguous_or_unknown_id_is_refused_naming_the_matches(cli, capsys, typed, message):
    for ident in (A, B, C):
        _job_with_id(ident)
    for command in (["show", typed], ["cancel", typed], ["delete", typed], ["retry", typed]):
        assert cli(*command) == 1
        err = _out(capsys)[1]
        assert message in err and err.count("\n") == 1, (command, err)
    assert Job.select().where(Job.status == "pending").count() == 3  # nothing touched


def test_batch_ids_resolve_the_same_way(cli, capsys):
    with jobtui.batch() as b:
        jobtui.enqueue("t.x")
    assert cli("batch", "show", b.id[-8:], "--json") == 0
    assert json.loads(_out(capsys)[0])["id"] == b.id
    assert cli("jobs", "--batch", b.id[-8:], "--json") == 0
    assert len(json.loads(_out(capsys)[0])) == 1


# ------------------------------------------------------------------ --json on actions


def test_every_action_verb_says_what_it_did_per_id_in_json(cli, capsys):
    waiting, running, done = (jobtui.enqueue("t.x").id for _ in range(3))
    (claimed,) = claim_jobs(1, tasks=["t.x"])  # the oldest: `waiting`
    running, waiting = waiting, running
    assert claimed.id == running
    assert cli("cancel", waiting, running, "--json") == 0
    assert json.loads(_out(capsys)[0]) == {
        "action": "cancel",
        "jobs": [
            {"id": waiting, "result": "cancelled"},
            {"id": running, "result": "asked_to_stop"},
        ],
        "dependants_cancelled": [],
    }
    assert cli("cancel", running, "--kill", "--json") == 0  # asked already: now killed
    assert json.loads(_out(capsys)[0])["jobs"] == [{"id": running, "result": "killing"}]
    assert cli("cancel", waiting, "--json") == 1  # nothing to do: same exit as without --json
    assert json.loads(_out(capsys)[0])["jobs"] == [
        {"id": waiting, "result": "skipped", "reason": "already ended or stopping"}
    ]
    assert cli("retry", waiting, done, "--json") == 1
    assert json.loads(_out(capsys)[0])["jobs"] == [
        {"id": waiting, "result": "retrying"},
        {"id": done, "result": "skipped",
         "reason": "not failed or cancelled (or its unique key is taken)"},
    ]  # fmt: skip
    assert cli("delete", done, running, "--json") == 1
    assert json.loads(_out(capsys)[0])["jobs"] == [
        {"id": done, "result": "deleted"},
        {"id": running, "result": "skipped", "reason": "running (cancel first)"},
    ]
    assert cli("pause", "default", "--json") == 0
    assert json.loads(_out(capsys)[0]) == {"action": "pause", "queue": "default", "paused": True}
    assert cli("resume", "default", "--json") == 0
    assert json.loads(_out(capsys)[0])["paused"] is False
    assert cli("limit", "default", "3", "--json") == 0
    assert json.loads(_out(capsys)[0]) == {"action": "limit", "queue": "default", "limit": 3}
    assert cli("purge", "--older-than", "0", "--failed", "--json") == 0
    assert json.loads(_out(capsys)[0])["deleted"] == 0
    assert cli("schedule", "add", "n", "0 2 * * *", "t.x", "--json") == 0
    assert json.loads(_out(capsys)[0])["next_run"].endswith("+00:00")
    assert cli("schedule", "pause", "n", "--json") == 0
    assert json.loads(_out(capsys)[0]) == {"action": "schedule pause", "schedule": "n",
                                           "enabled": False}  # fmt: skip
    assert cli("schedule", "run-now", "n", "--json") == 0
    assert Job.get_by_id(json.loads(_out(capsys)[0])["job_id"]).schedule_name == "n"
    parent = jobtui.enqueue("t.x").id
    child = jobtui.enqueue("t.x", depends_on=[parent]).id
    assert cli("cancel", parent, "--json") == 0
    assert json.loads(_out(capsys)[0])["dependants_cancelled"] == [child]
    with jobtui.batch() as b:
        member = jobtui.enqueue("t.x").id
    assert cli("batch", "cancel", b.id, "--json") == 0
    assert json.loads(_out(capsys)[0])["jobs"] == [{"id": member, "result": "cancelled"}]


# ------------------------------------------------------------------ enqueue --stdin


def test_enqueue_stdin_writes_many_jobs_and_prints_the_count_or_the_ids(db_url, db):
    lines = [json.dumps({"args": [n], "kwargs": {"k": n}, "priority": n % 3}) for n in range(2500)]
    lines.insert(10, "")  # blank lines are skipped
    done = _script("--database", db_url, "enqueue", "t.bulk", "--queue", "bulk", "--stdin",
                   stdin="\n".join(lines) + "\n")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "enqueued 2500 jobs"
    jobs = list(Job.select().order_by(Job.id))
    assert [j.args for j in jobs] == [[n] for n in range(2500)]
    assert [j.priority for j in jobs[:4]] == [0, 1, 2, 0]
    assert {j.queue_name for j in jobs} == {"bulk"} and jobs[7].kwargs == {"k": 7}
    done = _script("--database", db_url, "enqueue", "t.bulk", "--stdin", "--json",
                   stdin='{"args": [1], "priority": "high"}\n{"kwargs": {"a": 2}}\n')  # fmt: skip
    ids = json.loads(done.stdout)
    assert [Job.get_by_id(i).priority for i in ids] == [10, 0]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{nope", "line 1502: not valid JSON"),
        ("[1, 2]", "line 1502: a JSON object is needed"),
        ('{"args": [1], "max_retries": -1}', "line 1502: max_retries must be >= 0"),
        ('{"args": [1], "colour": "red"}', "line 1502: unknown enqueue option(s): colour"),
    ],
)
def test_enqueue_stdin_stops_at_a_bad_line_after_writing_every_line_before_it(
    cli, capsys, monkeypatch, bad, message
):
    lines = [json.dumps({"args": [n]}) for n in range(1501)] + [bad, '{"args": ["after"]}']
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(lines) + "\n"))
    assert cli("enqueue", "t.bulk", "--stdin") == 1
    out, err = _out(capsys)
    assert out.strip() == "enqueued 1501 jobs"
    assert message in err and "(1501 enqueued before it, none from it on)" in err
    assert err.count("\n") == 1
    assert Job.select().count() == 1501  # the first chunk, and its own chunk up to the bad line


# ------------------------------------------------------------------ refusals


def test_pause_resume_limit_refuse_a_queue_nothing_names(cli, capsys):
    jobtui.enqueue("t.x", queue="emails")
    Supervisor.create(name="s1", host="h", pid=1, queues={"reports": 2},
                      tasks={"t.y": {"queue": "exports"}})  # fmt: skip
    for command in (["pause", "emial"], ["resume", "emial"], ["limit", "emial", "2"]):
        assert cli(*command) == 1
        err = _out(capsys)[1]
        assert "no queue 'emial'" in err and "known: default, emails, exports, reports" in err
        assert err.count("\n") == 1
    assert Queue.select().count() == 0  # no phantom queue
    assert cli("status", "--json") == 0
    assert "emial" not in json.loads(_out(capsys)[0])["queues"]
    for name in ("emails", "reports", "exports", "default"):
        assert cli("pause", name) == 0
    assert cli("limit", "later", "2", "--new") == 0  # on purpose, ahead of its jobs
    assert Queue.get_by_id("later").concurrency == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["jobs", "--limit", "-5"], "--limit must be at least 1, got -5"),
        (["jobs", "--limit", "0"], "--limit must be at least 1, got 0"),
        (["batch", "list", "--limit", "-1"], "--limit must be at least 1"),
        (["enqueue", "t.x", "--delay", "5", "--at", "2030-01-01T00:00"], "--delay and --at"),
        (["enqueue", "t.x", "--queue", ""], "a queue name cannot be empty"),
        (["jobs", "--queue", " "], "a queue name cannot be empty"),
        (["pause", ""], "a queue name cannot be empty"),
        (["limit", "default", "-5"], "limit '-5': a whole number of at least 1, or none"),
        (["enqueue", "t.x", "--stdin", "--args", "[1]"], "--stdin takes args and kwargs"),
        (["jobs", "--status", "zombie"], "unknown status 'zombie'"),
    ],
)
def test_option_mistakes_are_refused_in_one_line_writing_nothing(cli, capsys, args, message):
    assert cli(*args) == 1
    err = _out(capsys)[1]
    assert message in err and err.count("\n") == 1 and err.startswith("jobtui: ")
    assert Job.select().count() == Queue.select().count() == 0


# ------------------------------------------------------------------ jobs


def test_jobs_says_on_stderr_when_more_match_than_it_shows(cli, capsys):
    ids = [jobtui.enqueue("t.x").id for _ in range(4)]
    assert cli("jobs", "--limit", "3") == 0
    out, err = _out(capsys)
    assert len(out.splitlines()) == 4  # header and 3 rows: stdout stays the table
    assert "showing the newest 3 matching jobs; more match" in err
    assert cli("jobs", "--limit", "3", "--json") == 0
    out, err = _out(capsys)
    assert [j["id"] for j in json.loads(out)] == ids[::-1][:3] and "more match" in err
    assert cli("jobs", "--limit", "4") == 0 and _out(capsys)[1] == ""


def test_jobs_status_takes_the_console_aliases(cli, capsys):
    failed, ok, queued = (jobtui.enqueue("t.x").id for _ in range(3))
    Job.update(status="failed").where(Job.id == failed).execute()
    Job.update(status="completed").where(Job.id == ok).execute()
    for status, expected in [("dead", [failed]), ("done", [ok]), ("queued", [queued]),
                             ("dead,done", [ok, failed]), ("fail", [failed])]:  # fmt: skip
        assert cli("jobs", "--status", status, "--json") == 0
        assert [j["id"] for j in json.loads(_out(capsys)[0])] == expected, status


def test_columns_stay_aligned_with_wide_characters(cli, capsys):
    jobtui.enqueue("報告.生成")  # CJK: two columns a character
    jobtui.enqueue("e\u0301.x")  # a combining accent: none
    jobtui.enqueue("plain.task")
    assert cli("jobs") == 0
    lines = _out(capsys)[0].splitlines()
    from jobtui.cli_format import display_width

    starts = set()
    for line in lines:
        task_end = line.index("pending") if "pending" in line else line.index("STATE")
        starts.add(display_width(line[:task_end]))
    assert len(starts) == 1, lines


# ------------------------------------------------------------------ databases


@pytest.mark.parametrize(
    "command",
    [["status"], ["jobs"], ["workers"], ["show", "01a2aaaa"], ["batch", "list"],
     ["schedule", "list"]],
)  # fmt: skip
def test_a_read_command_never_creates_a_sqlite_database(tmp_path, command):
    path = tmp_path / "typo.db"
    done = _script("--database", f"sqlite:///{path}", *command)
    assert done.returncode == 1
    assert done.stderr == (
        f"jobtui: no jobtui database at {path} (nothing was created): any write creates it "
        "(jobtui enqueue, or starting jobtui-supervisor)\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_read_command_never_creates_tables_in_an_empty_postgresql_database():
    import psycopg2

    dsn = os.environ.get("JOBTUI_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
    try:
        admin = psycopg2.connect(dsn, connect_timeout=3)
    except Exception as exc:  # noqa: BLE001 - no server: nothing to test against
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    admin.autocommit = True
    name = f"jobtui_empty_{uuid.uuid4().hex[:8]}"
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    url = f"{dsn.rsplit('/', 1)[0]}/{name}"
    try:
        done = _script("--database", url, "status")
        assert done.returncode == 1 and "no jobtui database at" in done.stderr
        conn = psycopg2.connect(url)
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            assert cur.fetchone() == (0,)
        conn.close()
        assert _script("--database", url, "enqueue", "t.x").returncode == 0  # a write creates
        assert _script("--database", url, "status").returncode == 0
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_a_directory_as_the_sqlite_path_says_so(tmp_path):
    done = _script("--database", f"sqlite:///{tmp_path}", "enqueue", "t.x")
    assert done.returncode == 1
    assert done.stderr == (
        f"jobtui: cannot open SQLite database {tmp_path}: it is a directory; name a file in it, "
        f"e.g. sqlite:///{tmp_path}/jobtui.db\n"
    )


def test_a_read_only_database_says_so_once(tmp_path):
    path = tmp_path / "jobs.db"
    assert _script("--database", f"sqlite:///{path}", "enqueue", "t.x").returncode == 0
    made_immutable = False
    if os.geteuid() == 0:  # root writes through file modes: the immutable flag stops it
        made_immutable = subprocess.run(["chattr", "+i", str(path)]).returncode == 0
        if not made_immutable:
            pytest.skip("running as root without chattr: cannot make a file read-only")
    else:
        path.chmod(0o444)
    try:
        done = _script("--database", f"sqlite:///{path}", "enqueue", "t.y")
    finally:
        if made_immutable:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    assert done.returncode == 1
    assert done.stderr.count("readonly database") == 1 and done.stderr.count("\n") == 1


def test_postgresql_without_its_driver_says_what_to_install():
    code = ("import sys; sys.modules['psycopg2'] = sys.modules['psycopg'] = None; "
            "from jobtui.cli import main; "
            "sys.exit(main(['--database', 'postgresql://postgres@127.0.0.1/test', 'status']))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 1
    assert done.stderr == "jobtui: PostgreSQL needs a driver: pip install 'jobtui[postgres]'\n"


@pytest.fixture(autouse=True)
def _forget_databases():
    yield
    store.reset()
