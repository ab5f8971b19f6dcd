"""End to end: the real ``jobtui`` console in a terminal (tmux) against a real supervisor,
driven with keys; and ``jobtui --demo``, watched until it moves.

Every wait polls the screen or the database to a deadline.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from tui_tmux import Tmux

from jobtui.api import enqueue
from jobtui.models import Job, store

pytestmark = [
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
    pytest.mark.timeout(120),
]


def wait_until(predicate, timeout: float = 20.0, what: str = "a condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def supervisor(tmp_path):
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    store.reset()
    store.use_database(url)
    log = open(tmp_path / "supervisor.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "jobtui.supervisor.main", "--import", "jobtui.demo",
         "--database", url, "--workers", "2", "--kill-grace", "1", "--shutdown-grace", "2",
         "--heartbeat-interval", "1"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    yield url
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.close()
    store.reset()


def test_the_console_steers_a_real_supervisor(supervisor):
    url = supervisor
    term = Tmux([sys.executable, "-m", "jobtui", "--database", url])
    try:
        term.wait_for("1 sup", describe="the supervisor in the header")
        # enqueued once the console is up: the report runs 6 s, and a loaded machine can
        # take longer than that to start a Textual app
        job = enqueue("jobtui.demo.build_report", args=["e2e [/x]"], database=url)
        term.send("/")
        term.type("task:*build_report")
        term.send("Enter")
        term.wait_for(lambda s: "running" in s and "1 matching" in s, describe="the job running")
        term.send("K")
        term.wait_for("Kill this job?")
        term.send("y")
        wait_until(lambda: Job.get_by_id(job.id).status == "cancelled", 20, "the kill")
        term.wait_for("cancelled", describe="the killed job shown cancelled")
        term.send("R")  # reversible: no confirmation
        wait_until(lambda: Job.get_by_id(job.id).status in ("pending", "running", "completed"),
                   10, "the retry")  # fmt: skip
        term.send("Enter")  # the detail screen of the job under the cursor
        term.wait_for(lambda s: "Overview" in s and job.id in s, describe="the detail screen")
        term.send("q")  # back to the jobs, then out: one key at a time, each screen in place
        term.wait_for(lambda s: "Overview" not in s and "matching" in s, describe="the jobs")
        term.send("q")
        assert term.exit_code() == 0
    finally:
        term.close()


def test_fast_typing_and_esc_in_a_real_terminal(tmp_path):
    """A real terminal: "/a/b/c" typed in one burst reaches the filter in order, and esc
    clears the filter, then at the root says how to quit instead of quitting."""
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    store.reset()
    store.use_database(url)
    enqueue("tests.a/b/c", database=url)
    term = Tmux([sys.executable, "-m", "jobtui", "--database", url])
    try:
        term.wait_for("tests.a/b/c", describe="the job in the table")
        term.type("/a/b/c")  # one write: the keys arrive together
        term.send("Enter")
        term.wait_for("filter a/b/c · 1 matching", describe="the filter applied, in order")
        term.send("Escape")
        term.wait_for("none (/ to filter)", describe="esc clearing the filter")
        term.send("Escape")
        term.wait_for("q quits", describe="esc at the root not quitting")
        assert "EXITED" not in term.screen()
        term.send("q")
        assert term.exit_code() == 0
    finally:
        term.close()
        store.reset()


def _processes_on(database: str) -> list[psutil.Process]:
    """The processes given ``database`` (in their environment: not on their command line,
    where ps would show a password)."""
    found = []
    for process in psutil.process_iter():
        try:
            if database in process.environ().get("JOBTUI_DATABASE", ""):
                found.append(process)
        except psutil.Error:
            pass
    return found


def test_the_demo_moves_and_stops_its_supervisor(tmp_path):
    # README's main command, through the console script the install made; its temporary
    # folder goes under tmp_path (TMPDIR), so its processes are told apart from any other's
    term = Tmux([str(Path(sys.executable).parent / "jobtui"), "--demo"],
                env={"TMPDIR": str(tmp_path)})  # fmt: skip
    try:
        term.wait_for(lambda s: "1 sup" in s and "running" in s, 30,
                      "the demo's supervisor running jobs")  # fmt: skip
        (demo_db,) = tmp_path.glob("*/demo.db")
        running = _processes_on(str(demo_db))  # the supervisor and its forked workers
        assert running and not [p for p in running if str(demo_db) in " ".join(p.cmdline())]
        term.wait_for(lambda s: re.search(r"completed", s) is not None, 30, "completed jobs")
        term.send("4")
        term.wait_for("PermanentError", 30, "a failure group")
        term.send("5")
        term.wait_for("demo-newsletter", describe="the cron schedules")
        term.send("q")
        assert term.exit_code() == 0
        assert _processes_on(str(demo_db)) == []
        assert list(tmp_path.iterdir()) == []  # its folder and database removed
    finally:
        term.close()


def _demo_processes(tmp_path: Path) -> tuple[Path, list[psutil.Process]]:
    """The demo's database and the processes given it: its supervisor and workers."""
    (demo_db,) = tmp_path.glob("*/demo.db")
    return demo_db, _processes_on(str(demo_db))


def _gone(processes: list[psutil.Process]) -> bool:
    def alive(process: psutil.Process) -> bool:
        try:
            return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    return not any(alive(p) for p in processes)


def _start_demo(tmp_path: Path) -> tuple[Tmux, Path, list[psutil.Process]]:
    term = Tmux([str(Path(sys.executable).parent / "jobtui"), "--demo"],
                env={"TMPDIR": str(tmp_path)})  # fmt: skip
    term.wait_for(lambda s: "1 sup" in s and "running" in s, 30,
                  "the demo's supervisor running jobs")  # fmt: skip
    demo_db, running = _demo_processes(tmp_path)
    assert len(running) > 1  # the supervisor and its workers
    return term, demo_db, running


def _sweep(demo_db: Path | None) -> None:
    """A failed test leaves no demo processes behind."""
    for process in _processes_on(str(demo_db)) if demo_db else []:
        try:
            process.kill()
        except psutil.Error:
            pass


def test_closing_the_demos_terminal_stops_its_supervisor_and_removes_its_folder(tmp_path):
    """Issue 12, item 6: tmux kill-session (SIGHUP, as closing the window) ends the demo as
    q does; the supervisor used to live on under PID 1."""
    demo_db = None
    term = None
    try:
        term, demo_db, running = _start_demo(tmp_path)
        term.kill_session()
        wait_until(lambda: _gone(running), 30, "the supervisor and its workers to stop")
        assert _processes_on(str(demo_db)) == []
        wait_until(lambda: list(tmp_path.iterdir()) == [], 10, "the demo's folder removed")
    finally:
        if term is not None:
            term.close()
        _sweep(demo_db)


def test_a_killed_demo_console_takes_its_supervisor_with_it(tmp_path):
    """The backstop: SIGKILL leaves the console no time to stop anything, so the
    supervisor dies with its parent (its folder stays: nothing is left to remove it)."""
    demo_db = None
    term = None
    try:
        term, demo_db, running = _start_demo(tmp_path)
        pids = {p.pid for p in running}
        (supervisor,) = [p for p in running if p.ppid() not in pids]
        console = supervisor.parent()
        assert "--demo" in console.cmdline()
        console.kill()
        wait_until(lambda: _gone(running), 30, "the supervisor and its workers to stop")
    finally:
        if term is not None:
            term.close()
        _sweep(demo_db)


def test_sigterm_ends_the_demo_as_q_does(tmp_path):
    """A plain ``kill`` of the console: the terminal is put back (the shell prints the
    exit code 128 + 15), the supervisor is stopped and the folder removed."""
    demo_db = None
    term = None
    try:
        term, demo_db, running = _start_demo(tmp_path)
        pids = {p.pid for p in running}
        (supervisor,) = [p for p in running if p.ppid() not in pids]
        supervisor.parent().terminate()
        assert term.exit_code() == 128 + signal.SIGTERM
        assert _gone(running) and list(tmp_path.iterdir()) == []
    finally:
        if term is not None:
            term.close()
        _sweep(demo_db)
