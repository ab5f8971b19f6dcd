"""Shared pieces of the fault tests: the real supervisor as a subprocess, bounded waits,
and the Jepsen-style checker over the execution log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psutil
from supervisor_harness import wait_until

from jobtui.models import Job

HERE = Path(__file__).parent
FAST = ["--heartbeat-interval", "0.2", "--lease", "1.5", "--kill-grace", "0.5",
        "--shutdown-grace", "2", "--poll-interval", "0.2"]  # fmt: skip


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.02, what: str = "condition"):
    """supervisor_harness.wait_until, with this module's longer default."""
    return wait_until(predicate, timeout, what, interval=interval)


class SupervisorProcess:
    """One real ``jobtui-supervisor`` with the fault tasks; remembers every pid it had."""

    def __init__(self, url: str, log_path: Path, tmp: Path, *extra: str, name: str = "") -> None:
        self.env = dict(os.environ, JOBTUI_DATABASE=url, PYTHONPATH=str(HERE),
                        JOBTUI_TEST_LOG=str(log_path))  # fmt: skip
        self.stderr_path = tmp / f"supervisor-{name or 'main'}-{time.monotonic_ns()}.log"
        self.stderr = open(self.stderr_path, "w")  # noqa: SIM115 - closed in stop()
        args = [sys.executable, "-m", "jobtui.supervisor.main", "--import", "fault_tasks",
                *FAST, *extra]  # fmt: skip
        if name:
            args += ["--name", name]
        self.proc = subprocess.Popen(args, env=self.env, stderr=self.stderr,
                                     stdout=self.stderr, start_new_session=True)  # fmt: skip
        self.seen: set[int] = {self.proc.pid}
        wait_for(lambda: len(self.workers()) >= 1 or self.proc.poll() is not None,
                 what="workers up")  # fmt: skip
        assert self.proc.poll() is None, self.log()

    def workers(self) -> list[psutil.Process]:
        try:
            found = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.Error:
            return []
        self.seen.update(p.pid for p in found)
        return found

    def log(self) -> str:
        self.stderr.flush()
        return self.stderr_path.read_text()

    def signal(self, sig: int) -> None:
        self.workers()
        self.proc.send_signal(sig)

    def stop(self) -> int | None:
        self.workers()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(10)
        self.stderr.close()
        return self.proc.returncode

    def assert_nothing_left(self) -> None:
        def gone() -> bool:
            for pid in self.seen:
                try:
                    if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                        return False
                except psutil.NoSuchProcess:
                    continue
            return True

        wait_for(gone, what="every process of the supervisor gone")


def executions(log_path: Path) -> Counter:
    """(job id, attempt) -> how many times a task began it."""
    if not log_path.exists():
        return Counter()
    runs = Counter()
    for line in log_path.read_text().splitlines():
        job_id, attempt, _pid, event = line.split()
        if event == "run":
            runs[(job_id, int(attempt))] += 1
    return runs


def check_history(log_path: Path, faulted: set[str] = frozenset()) -> None:
    """The checker: one terminal state per job, none running, executions within attempts,
    an attempt executed at most once, and extra executions only where a fault was made."""
    runs = executions(log_path)
    jobs = {job.id: job for job in Job.select()}
    for job in jobs.values():
        assert job.status in ("completed", "failed", "cancelled"), (job.id, job.status)
    for (job_id, attempt), count in runs.items():
        assert count == 1, f"attempt {attempt} of {job_id} ran {count} times"
        assert attempt <= jobs[job_id].attempt
    for job_id, job in jobs.items():
        ran = sum(1 for (jid, _a) in runs if jid == job_id)
        if job_id not in faulted and job.job_type == "fault_tasks.record":
            assert ran == 1, f"{job_id} ran {ran} times without a fault"
