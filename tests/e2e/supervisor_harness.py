"""The harness of the supervisor fault tests: real ``jobtui-supervisor`` processes, a watch
on every process they start, and polling to deadlines (never a sleep-and-hope).

``Cluster`` starts supervisors (the console script, each in its own session so a test can
signal it), captures each one's log, samples their process trees in a thread so every
worker, task subprocess and adopted daemon is recorded, and at the end stops them and
asserts that none of those processes is still alive. ``Cluster.check`` runs the checker of
supervisor_history.py over the execution log and the rows.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psutil
from supervisor_history import TERMINAL, ExecLog, Execution, check_history, job_rows

HERE = Path(__file__).parent
TASKS = "supervisor_tasks"
EXTRA_TASKS = "supervisor_tasks_extra"
SUPERVISOR_EXE = str(Path(sys.executable).parent / "jobtui-supervisor")
FAST = ("--heartbeat-interval", "0.2", "--lease", "1.5", "--kill-grace", "0.5",
        "--shutdown-grace", "2", "--poll-interval", "0.2")  # fmt: skip
T = TypeVar("T")


class WaitTimeout(AssertionError):
    """A condition was not met by its deadline."""


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 15.0,
    what: str = "condition",
    interval: float = 0.02,
    explain: Callable[[], str] | None = None,
) -> T:
    """Poll ``predicate`` until it returns a true value (returned) or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = f"\n{explain()}" if explain else ""
            raise WaitTimeout(f"{what}: not met within {timeout:g} s{detail}")
        time.sleep(interval)


def never(predicate: Callable[[], Any], for_s: float, what: str) -> None:
    """Assert that ``predicate`` stays false for ``for_s`` seconds: a bounded wait that
    must time out."""
    try:
        wait_until(predicate, for_s, what)
    except WaitTimeout:
        return
    raise AssertionError(f"{what} happened within {for_s:g} s")


def gone(pid: int, created: float | None = None) -> bool:
    """Whether process ``pid`` (the one created at ``created``) is dead or a zombie."""
    try:
        proc = psutil.Process(pid)
        if created is not None and abs(proc.create_time() - created) > 0.01:
            return True  # the pid was reused by another process
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


# ------------------------------------------------------------------ processes


class ProcessWatch:
    """Samples the process trees of the supervisors in a thread, so every worker, task
    subprocess and adopted daemon they ever had is recorded (pid and start time)."""

    def __init__(self) -> None:
        self.roots: list[int] = []
        self.seen: dict[tuple[int, float], str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="process-watch")
        self._thread.start()

    def add(self, pid: int, what: str) -> None:
        try:
            created = psutil.Process(pid).create_time()
        except psutil.NoSuchProcess:
            return
        with self._lock:
            self.seen.setdefault((pid, created), what)
            if what.startswith("supervisor"):
                self.roots.append(pid)

    def sample(self) -> None:
        with self._lock:
            roots = list(self.roots)
        for root in roots:
            try:
                tree = psutil.Process(root).children(recursive=True)
            except psutil.NoSuchProcess:
                continue
            for proc in tree:
                try:
                    key = (proc.pid, proc.create_time())
                except psutil.NoSuchProcess:
                    continue
                with self._lock:
                    self.seen.setdefault(key, f"descendant of supervisor {root}")

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.sample()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def alive(self) -> list[str]:
        with self._lock:
            seen = dict(self.seen)
        return [f"pid {pid} ({what})" for (pid, created), what in seen.items()
                if not gone(pid, created)]  # fmt: skip


# ------------------------------------------------------------------ supervisors


@dataclass
class SupervisorProcess:
    name: str
    proc: subprocess.Popen
    log_path: Path
    workers: int
    expect_exit: int | None = 0  # what a clean stop must return (None: killed by the test)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def kill(self) -> None:
        """SIGKILL the supervisor alone (its workers are in their own process groups)."""
        self.expect_exit = None
        os.kill(self.pid, signal.SIGKILL)
        self.proc.wait(10)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def worker_rows(self) -> dict[str, int]:
        """Worker name -> pid, as its last heartbeat wrote them."""
        from jobtui.models import Worker

        query = Worker.select(Worker.name, Worker.pid).where(Worker.supervisor == self.name)
        return {row.name: row.pid for row in query}

    def worker_pids(self) -> set[int]:
        """The live workers of this supervisor (direct children that lead their group)."""
        try:
            children = psutil.Process(self.pid).children()
        except psutil.NoSuchProcess:
            return set()
        pids = set()
        for child in children:
            try:
                if os.getpgid(child.pid) == child.pid and child.status() != "zombie":
                    pids.add(child.pid)
            except (ProcessLookupError, psutil.NoSuchProcess):
                continue
        return pids & set(self.worker_rows().values()) if pids else pids

    def wait_exit(self, timeout: float = 15.0) -> int:
        return self.proc.wait(timeout)


@dataclass
class Cluster:
    """The supervisors of one test on one database, and what they did."""

    db_url: str
    tmp_path: Path
    supervisors: list[SupervisorProcess] = field(default_factory=list)
    injected: dict[str, str] = field(default_factory=dict)  # job id -> the fault that hit it
    stopped: bool = False

    def __post_init__(self) -> None:
        self.gates = self.tmp_path / "gates"
        self.gates.mkdir(exist_ok=True)
        self.execlog = ExecLog(self.tmp_path / "executions.log")
        self.watch = ProcessWatch()
        self.env = dict(os.environ, JOBTUI_DATABASE=self.db_url, PYTHONPATH=str(HERE),
                        JOBTUI_E2E_LOG=str(self.execlog.path),
                        JOBTUI_E2E_GATES=str(self.gates))  # fmt: skip

    @property
    def is_sqlite(self) -> bool:
        return self.db_url.startswith("sqlite")

    # -------------------------------------------------------------- starting

    def start(
        self,
        *options: str,
        name: str | None = None,
        workers: int = 2,
        imports: Iterable[str] = (TASKS,),
        wait: bool = True,
    ) -> SupervisorProcess:
        """Start ``jobtui-supervisor`` with the fast settings (``options`` come after them,
        so they override); wait until it and all its workers are registered."""
        name = name or f"sup-{len(self.supervisors) + 1}"
        args = [SUPERVISOR_EXE, "--name", name, "--workers", str(workers), *FAST]
        for module in imports:
            args += ["--import", module]
        log_path = self.tmp_path / f"{name}-{len(self.supervisors) + 1}.log"
        with open(log_path, "w") as out:
            proc = subprocess.Popen(args + list(options), env=self.env, stdout=out, stderr=out,
                                    stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
        sup = SupervisorProcess(name, proc, log_path, workers)
        self.supervisors.append(sup)
        self.watch.add(proc.pid, f"supervisor {name}")
        if wait:
            self.wait_ready(sup)
        return sup

    def wait_ready(self, sup: SupervisorProcess, timeout: float = 20.0) -> None:
        from jobtui.models import Supervisor as SupervisorRow

        def ready() -> bool:
            assert sup.alive(), f"{sup.name} exited with {sup.proc.returncode}:\n{sup.log()}"
            row = SupervisorRow.get_or_none(SupervisorRow.name == sup.name)
            return (row is not None and row.pid == sup.pid
                    and len(sup.worker_pids()) == sup.workers)  # fmt: skip

        wait_until(ready, timeout, f"{sup.name} ready", explain=sup.log)
        for pid in sup.worker_pids():
            self.watch.add(pid, f"worker of {sup.name}")

    # -------------------------------------------------------------- the test's levers

    def open_gate(self, name: str) -> None:
        (self.gates / name).touch()

    def fault(self, job_id: str, what: str) -> None:
        """Record a fault injected into ``job_id``'s run: extra executions are allowed."""
        self.injected[job_id] = what

    def freeze(self, sup: SupervisorProcess, attempts: int = 50) -> None:
        """SIGSTOP ``sup`` at a moment it holds no transaction open. (A supervisor stopped
        inside one blocks every other writer: another fault, not the one tested here.)"""
        for _ in range(attempts):
            sup.signal(signal.SIGSTOP)
            wait_until(lambda: psutil.Process(sup.pid).status() == psutil.STATUS_STOPPED,
                       5, f"{sup.name} stopped")  # fmt: skip
            if not self._in_transaction(sup):
                return
            sup.signal(signal.SIGCONT)
        raise AssertionError(f"{sup.name} was inside a transaction at every SIGSTOP")

    def _in_transaction(self, sup: SupervisorProcess) -> bool:
        if self.is_sqlite:
            import sqlite3

            probe = sqlite3.connect(self.db_url.split("sqlite:///", 1)[1], timeout=0)
            try:
                probe.execute("BEGIN IMMEDIATE")
                probe.execute("ROLLBACK")
                return False
            except sqlite3.OperationalError:
                return True  # somebody holds the write lock; maybe the stopped one
            finally:
                probe.close()
        from jobtui.models.store import get_database

        ports = {c.laddr.port for c in psutil.Process(sup.pid).net_connections("tcp")
                 if c.laddr}  # fmt: skip
        rows = (
            get_database()
            .execute_sql(
                "SELECT client_port FROM pg_stat_activity WHERE datname = current_database()"
                " AND state <> 'idle'"
            )
            .fetchall()
        )
        return any(port in ports for (port,) in rows)

    def logs(self) -> str:
        return "\n".join(f"----- {s.log_path.name} (pid {s.pid})\n{s.log()}"
                         for s in self.supervisors)  # fmt: skip

    def wait_started(self, job_id: str, attempt: int = 1, timeout: float = 15.0) -> Execution:
        """Wait until the job's ``attempt`` has begun executing (its start is in the log)."""
        return wait_until(lambda: self.execlog.started(job_id, attempt), timeout,
                          f"job {job_id} attempt {attempt} started", explain=self.logs)  # fmt: skip

    def wait_status(self, job_ids: Iterable[str], statuses: Iterable[str] = TERMINAL,
                    timeout: float = 20.0) -> dict[str, Any]:  # fmt: skip
        """Wait until every job is in one of ``statuses``; returns id -> Job."""
        from jobtui.models import Job

        ids, wanted = list(job_ids), set(statuses)

        def reached() -> dict[str, Any] | None:
            rows = {row.id: row for row in job_rows(Job.id.in_(ids))}
            done = len(rows) == len(ids) and all(r.status in wanted for r in rows.values())
            return rows if done else None

        def explain() -> str:
            rows = job_rows(Job.id.in_(ids))
            states = Counter(r.status for r in rows)
            return f"statuses now: {dict(states)}\n{self.logs()[-6000:]}"

        return wait_until(reached, timeout, f"{len(ids)} job(s) {'/'.join(sorted(wanted))}",
                          interval=0.05, explain=explain)  # fmt: skip

    # -------------------------------------------------------------- stopping and checking

    def stop(self, timeout: float = 15.0) -> None:
        """Warm-stop every supervisor still running; each must exit 0. Then every process
        they started must be gone."""
        if self.stopped:
            return
        self.stopped = True
        running = [s for s in self.supervisors if s.alive()]
        for sup in running:
            self.watch.sample()
            sup.signal(signal.SIGTERM)
        problems = []
        for sup in self.supervisors:
            try:
                code = sup.wait_exit(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(sup.pid, signal.SIGKILL)
                sup.proc.wait(5)
                problems.append(f"{sup.name} did not stop within {timeout:g} s")
                continue
            if sup.expect_exit is not None and code != sup.expect_exit:
                problems.append(f"{sup.name} exited with {code}, not {sup.expect_exit}")
        self.watch.stop()
        try:
            wait_until(lambda: not self.watch.alive(), 10, "every recorded process gone",
                       explain=lambda: "\n".join(self.watch.alive()))  # fmt: skip
        except WaitTimeout as exc:
            for text in self.watch.alive():
                pid = int(text.split()[1])
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            problems.append(str(exc))
        assert not problems, "\n".join(problems) + "\n" + self.logs()

    def check(self, pending: Iterable[str] = (), stop: bool = True) -> dict[str, Any]:
        """The Jepsen checker (supervisor_history.py); stops the cluster first."""
        return check_history(self, pending, stop)

    def close(self) -> None:
        """Teardown: stop whatever still runs and assert that no process is left."""
        try:
            self.stop()
        finally:
            self.watch.stop()
