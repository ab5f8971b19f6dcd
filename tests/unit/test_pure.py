"""Pure logic: retry policy, ids, URLs, dialect SQL, task registry, cron times, layering."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import uuid
from datetime import datetime
from pathlib import Path

import pytest

from jobtui.models.db import (
    ConfigurationError,
    default_database_url,
    open_database,
    redact_url,
    resolve_database_url,
)
from jobtui.models.dialect import POSTGRESQL, SQLITE
from jobtui.models.errors import InvalidJob
from jobtui.models.ids import new_job_id
from jobtui.models.retry import RetryPolicy
from jobtui.models.scheduling import fire_times, validate_cron
from jobtui.registry import TaskRegistry, task


def test_retry_ceiling_is_capped_exponential():
    policy = RetryPolicy(delay_s=10, backoff=2, max_delay_s=3600, jitter=False)
    assert [policy.ceiling_s(n) for n in range(4)] == [10, 20, 40, 80]
    assert policy.ceiling_s(20) == 3600
    assert policy.ceiling_s(10_000) == 3600  # no overflow
    assert policy.delay_for(2) == 40


def test_retry_jitter_is_uniform_between_half_and_full():
    policy = RetryPolicy(delay_s=10, backoff=2, jitter=True)
    rng = random.Random(7)
    draws = [policy.delay_for(1, rng) for _ in range(1000)]
    assert min(draws) >= 10 and max(draws) <= 20
    assert min(draws) < 11 and max(draws) > 19


def test_policy_columns_fall_back_to_the_task_then_the_defaults():
    task_policy = RetryPolicy(delay_s=1, backoff=5, max_delay_s=9, jitter=False)
    assert RetryPolicy.from_columns(None, None, None, None, task_policy) == task_policy
    assert RetryPolicy.from_columns(2, None, None, True, task_policy).delay_s == 2
    assert RetryPolicy.from_columns(None, None, None, None) == RetryPolicy()


def test_job_ids_are_uuid7_and_strictly_increasing():
    ids = [new_job_id() for _ in range(5000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(uuid.UUID(i).version == 7 for i in ids[:10])


def _child_job_id() -> str:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, new_job_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    made = os.read(read, 64).decode()
    os.close(read)
    return made


def test_a_forked_child_draws_its_own_job_ids():
    """Ids take their random bits from bytes read ahead: a child must not reuse the bytes
    its parent read, or both would make the same ids in the same millisecond."""
    new_job_id()  # the parent has read ahead
    theirs = _child_job_id()
    mine = new_job_id()
    assert mine[19:] != theirs[19:]  # the 62 random bits (and variant) differ


def test_fresh_processes_draw_random_bits_from_their_first_id():
    """A child's first id (its read-ahead dropped at the fork, as at import) has random
    bits of its own: two children forked at once must not make the same id in the same
    millisecond (they took all-zero bits until their first 400 ids, and collided)."""
    first, second = _child_job_id(), _child_job_id()
    assert first[24:] != "0" * 12 and second[24:] != "0" * 12
    assert first[19:] != second[19:]


def test_database_url_precedence_and_redaction(monkeypatch, tmp_path):
    monkeypatch.delenv("JOBTUI_DATABASE", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_database_url() == f"sqlite:///{tmp_path}/jobtui/jobtui.db"
    assert resolve_database_url(None) == default_database_url()
    monkeypatch.setenv("JOBTUI_DATABASE", "sqlite:///env.db")
    assert resolve_database_url(None) == "sqlite:///env.db"
    assert resolve_database_url("sqlite:///flag.db") == "sqlite:///flag.db"
    assert redact_url("postgresql://u:secret@h:5432/d") == "postgresql://u:***@h:5432/d"
    assert redact_url("postgresql://u@h/d") == "postgresql://u@h/d"


def test_bad_database_urls_are_configuration_errors(tmp_path):
    with pytest.raises(ConfigurationError, match="does not exist"):
        open_database(f"sqlite:///{tmp_path}/missing/jobs.db")
    with pytest.raises(ConfigurationError, match="unsupported"):
        open_database("mysql://x@y/z")


def test_dialect_parameter_styles():
    assert POSTGRESQL.sql("a = :id AND b = :d0 AND c::text[] = x") == (
        "a = %(id)s AND b = %(d0)s AND c::text[] = x")  # fmt: skip
    assert SQLITE.sql("a = :id") == "a = :id"
    assert (
        "FOR UPDATE SKIP LOCKED" in POSTGRESQL.claim_sql and "MATERIALIZED" in POSTGRESQL.claim_sql
    )
    assert "json_each" in SQLITE.claim_sql and "SKIP LOCKED" not in SQLITE.claim_sql


def test_task_names_options_and_duplicates():
    local = TaskRegistry()

    def handler():
        return 1

    from jobtui.registry import Task

    local.register(Task(func=handler, name="x.y"))
    assert "x.y" in local and local.get("x.y").func is handler
    with pytest.raises(ValueError, match="two tasks"):
        local.register(Task(func=lambda: 2, name="x.y"))
    with pytest.raises(TypeError, match="unknown task option"):
        task(colour="red")
    with pytest.raises(TypeError, match="orphan_policy"):
        task(orphan_policy="maybe")


def test_cron_validation_and_dst():
    with pytest.raises(InvalidJob, match="out of range"):
        validate_cron("61 * * * *")
    with pytest.raises(InvalidJob, match="5 or 6 fields"):
        validate_cron("* *")
    spring = fire_times(
        "30 2 * * *", "Europe/Berlin", datetime(2026, 3, 28, 12), datetime(2026, 3, 31, 1)
    )
    # 2:30 does not exist on 29 March: it fires once, at the first moment after the gap
    assert spring == [
        datetime(2026, 3, 29, 1, 0),
        datetime(2026, 3, 30, 0, 30),
        datetime(2026, 3, 31, 0, 30),
    ]
    autumn = fire_times(
        "30 2 * * *", "Europe/Berlin", datetime(2026, 10, 24, 12), datetime(2026, 10, 27)
    )
    # 2:30 happens twice on 25 October: it fires once (CEST), not again an hour later
    assert autumn == [datetime(2026, 10, 25, 0, 30), datetime(2026, 10, 26, 1, 30)]
    half_hourly = fire_times("*/30 * * * *", "Europe/Berlin", datetime(2026, 10, 24, 23, 59),
                             datetime(2026, 10, 25, 2, 1))  # fmt: skip
    assert len(half_hourly) == 5  # real elapsed time: 00:00 .. 02:00 UTC
    seconds = fire_times("* * * * * */10", "UTC", datetime(2026, 1, 1), datetime(2026, 1, 1, 0, 1))
    assert len(seconds) == 6


def test_models_and_supervisor_never_import_textual():
    code = ("import sys, jobtui, jobtui.models, jobtui.api, jobtui.cli, jobtui.supervisor.main, "
            "jobtui.supervisor.loop; bad = [m for m in sys.modules if m.split('.')[0] == 'textual']; "
            "print(bad); sys.exit(1 if bad else 0)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


ROOT = Path(__file__).resolve().parents[2]

#: Modules the daemon must not hold: each stays in the memory its workers share (the
#: benchmark's PSS target). typing, shutil (argparse's terminal width), zoneinfo, random
#: and subprocess load on first use; psutil, hashlib, OpenSSL and the PostgreSQL driver
#: not at all on SQLite.
DAEMON_NEVER_IMPORTS = ("textual", "typing", "shutil", "bz2", "lzma", "zoneinfo", "random",
                        "subprocess", "tempfile", "psutil", "hashlib", "_hashlib", "ssl",
                        "psycopg2", "croniter", "asyncio", "argparse", "gettext",
                        "opentelemetry")  # fmt: skip

_DAEMON_MODULES = """
import sys
import jobtui.supervisor.main as main

load_peewee = main._load_peewee_for


def load_then_stop_before_running(url):
    load_peewee(url)
    import jobtui.supervisor.loop as loop

    def run(self):
        print(" ".join(sorted(sys.modules)))
        return 0

    loop.Supervisor.run = run


main._load_peewee_for = load_then_stop_before_running
sys.exit(main.main(["--import", "smoke_tasks", "--database", sys.argv[1]]))
"""


def test_the_supervisor_loads_no_module_it_can_do_without(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests" / "e2e")]))
    done = subprocess.run(
        [sys.executable, "-c", _DAEMON_MODULES, f"sqlite:///{tmp_path / 'jobs.db'}"],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.split())
    assert {"peewee", "jobtui.supervisor.loop", "smoke_tasks"} <= loaded  # it got that far
    assert sorted(loaded.intersection(DAEMON_NEVER_IMPORTS)) == []


def test_a_postgresql_supervisor_loads_psycopg2_and_not_psycopg3_beside_it(pg_base_url):
    """Peewee imports every driver it finds; psycopg 3 (installed here for the integration
    tests, as Django brings it) cost a PostgreSQL supervisor ~55 ms of start-up and 13 MB
    (jobtui/lean_import.py). A task may still import it: only Peewee's first load hides it."""
    import importlib.util

    if importlib.util.find_spec("psycopg") is None:
        pytest.skip("psycopg 3 is not installed: nothing to leave out")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests" / "e2e")]))
    done = subprocess.run([sys.executable, "-c", _DAEMON_MODULES, pg_base_url],
                          capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.split())
    assert {"peewee", "jobtui.supervisor.loop", "psycopg2"} <= loaded
    assert "psycopg" not in loaded
    hidden_then_back = (
        "from jobtui.lean_import import load_peewee_for; load_peewee_for('postgresql://x/y');"
        "import peewee, psycopg; print(peewee.psycopg2 is not None, psycopg.__name__)"
    )
    done = subprocess.run([sys.executable, "-c", hidden_then_back], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)  # fmt: skip
    assert done.stdout.split() == ["True", "psycopg"], done.stderr


def test_every_public_name_resolves_to_the_api_object_not_a_module():
    import types

    import jobtui
    import jobtui.api  # noqa: F401 - loading submodules must not shadow exported names

    for name in jobtui.__all__:
        assert not isinstance(getattr(jobtui, name), types.ModuleType), name
    assert callable(jobtui.eager)


def test_a_failure_keeps_a_bounded_message_and_the_end_of_its_traceback():
    from jobtui.execution import ERROR_MESSAGE_MAX, TRACEBACK_MAX, execute_job
    from jobtui.registry import Task

    def huge() -> None:
        raise ValueError("body: " + "x" * 5_000_000)

    local = TaskRegistry()
    local.register(Task(func=huge, name="huge"))

    message = execute_job(local, ("id", "huge", "{}", 1), report_progress=lambda p, m: None,
                          check_cancel=lambda: False)  # fmt: skip
    kind, error, trace = message[3], message[4], message[5]
    assert kind == "ValueError" and error.startswith("body: xxx")
    assert len(error) < ERROR_MESSAGE_MAX + 100 and "characters cut]" in error
    assert len(trace) < TRACEBACK_MAX + 100 and trace.startswith("Traceback")
    assert "characters cut] …" in trace and trace.rstrip().endswith("x")  # the end is kept


@pytest.mark.parametrize("error", ["short", "é" * 5000, 'quote" and\nnewline' * 900, None])
def test_a_notification_line_fits_one_atomic_pipe_write(error):
    import json
    import select

    from jobtui.supervisor.notify import _line

    payload = {"job_id": "j" * 36, "task": "app.send", "queue": "q", "attempts": 3,
               "error": error, "error_type": "E", "supervisor": "s"}  # fmt: skip
    data = _line(payload)
    assert len(data) <= select.PIPE_BUF and data.endswith(b"\n") and data.count(b"\n") == 1
    decoded = json.loads(data)
    assert {k: v for k, v in decoded.items() if k != "error"} == {
        k: v for k, v in payload.items() if k != "error"}  # fmt: skip
    if error and len(error) < 100:
        assert decoded["error"] == error
    elif error:
        assert decoded["error"].endswith("…") and error.startswith(decoded["error"][:-1])
        assert len(data) > select.PIPE_BUF - 16  # cut to fit, not far below


def test_due_timers_keep_the_soonest_when_full(monkeypatch):
    import time
    from datetime import timedelta

    from jobtui.models.clock import utcnow
    from jobtui.supervisor import dispatch

    class Loop(dispatch.Dispatch):
        def __init__(self) -> None:
            self.due_times: list[float] = []

    monkeypatch.setattr(dispatch, "MAX_DUE_TIMERS", 4)
    loop = Loop()
    for days in (5, 4, 3, 2):  # a full heap of far-away jobs...
        loop.claim_at(utcnow() + timedelta(days=days))
    loop.claim_at(utcnow() + timedelta(seconds=1))  # ...still takes a job due in a second
    loop.claim_at("not a time")  # a stray datagram is ignored
    days_away = sorted(round((t - time.monotonic()) / 86400) for t in loop.due_times)
    assert days_away == [0, 2, 3, 4] and 0.5 < loop.due_times[0] - time.monotonic() < 1.5


_CLI_MODULES = """
import sys
import types

def report():
    del sys.modules["jobtui.cli"]
    import jobtui.cli  # the real one, as the command imports it
    jobtui.cli.build_parser()
    print(" ".join(sorted(m for m in sys.modules if m.split(".")[0] in ("psycopg2", "psycopg",
                                                                        "peewee", "hashlib"))))
    import peewee
    print("peewee-pg2", peewee.psycopg2 is not None)
    import psycopg2  # still importable by the code that runs next (a task, an integration)
    print("reimported", psycopg2.__name__)
    return 0

stand_in = types.ModuleType("jobtui.cli")
stand_in.main = report
sys.modules["jobtui.cli"] = stand_in
from jobtui.console_script import main
sys.argv = ["jobtui", *sys.argv[1:]]
sys.exit(main())
"""


def _cli_modules(tmp_path, *argv: str, env_url: str | None = None) -> list[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("JOBTUI_DATABASE", None)
    if env_url:
        env["JOBTUI_DATABASE"] = env_url
    done = subprocess.run([sys.executable, "-c", _CLI_MODULES, *argv], capture_output=True,
                          text=True, timeout=60, env=env, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_the_command_on_sqlite_loads_no_postgresql_driver(tmp_path):
    """``jobtui`` on SQLite (the flag, the environment or the default file) leaves the
    drivers out of Peewee; on PostgreSQL they load; either way they import later."""
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    for lines in (_cli_modules(tmp_path, "--database", url, "status"),
                  _cli_modules(tmp_path, f"--database={url}", "jobs"),
                  _cli_modules(tmp_path, "queues", env_url=url),
                  _cli_modules(tmp_path, "status")):  # fmt: skip
        modules = lines[0].split()
        assert "peewee" in modules and not {"psycopg2", "psycopg"} & set(modules)
        assert lines[1:] == ["peewee-pg2 False", "reimported psycopg2"]
    pg = _cli_modules(tmp_path, "--database", "postgresql://u@127.0.0.1:1/db", "status")
    assert "psycopg2" in pg[0].split() and pg[1] == "peewee-pg2 True"
