"""The supervisor under faults, with the real processes on SQLite and PostgreSQL:
worker and supervisor SIGKILLs, timeouts with double-forked grandchildren, cancellation,
warm and cold shutdown, quiet mode, bad data, recycling, several supervisors draining."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading

import psutil
import pytest
from faults import SupervisorProcess, check_history, executions, wait_for

import jobtui
from jobtui.models import Job, JobAttempt, set_queue_paused, store
from jobtui.models.dialect import dialect_for

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def env(db, db_url, tmp_path):
    log_path = tmp_path / "executions.log"
    started: list[SupervisorProcess] = []

    def start(*extra: str, name: str = "") -> SupervisorProcess:
        sup = SupervisorProcess(db_url, log_path, tmp_path, *extra, name=name)
        started.append(sup)
        from jobtui.models import Supervisor

        wait_for(
            lambda: (
                Supervisor.select().count() >= len([s for s in started if s.proc.poll() is None])
            )
        )
        return sup

    yield start, log_path
    for sup in started:
        sup.stop()
    for sup in started:
        sup.assert_nothing_left()
    store.reset()


def _status(job_id: str) -> str:
    return Job.get_by_id(job_id).status


def test_worker_sigkill_is_seen_at_once_and_the_job_retried(env):
    start, log_path = env
    sup = start("--workers", "1")
    job = jobtui.enqueue("fault_tasks.sleep_then_return", args=[30], retry_delay=0, max_retries=1)
    wait_for(lambda: executions(log_path), what="job started")
    (worker,) = sup.workers()
    worker.kill()
    wait_for(lambda: Job.get_by_id(job.id).attempt == 2, what="retried")
    first = JobAttempt.get(JobAttempt.job == job.id, JobAttempt.attempt == 1)
    assert first.outcome == "crashed" and first.error_message.startswith(
        "killed by signal 9 (SIGKILL)"
    )
    assert Job.get_by_id(job.id).retry_count == 1
    wait_for(lambda: [w.pid for w in sup.workers()] not in ([], [worker.pid]), what="replaced")
    jobtui.cancel(job.id)
    wait_for(lambda: _status(job.id) == "cancelled")


def test_timeout_kills_the_whole_tree_including_a_double_forked_daemon(env, tmp_path):
    start, _log = env
    sup = start("--workers", "1")
    pid_file = tmp_path / "daemon.pid"
    job = jobtui.enqueue("fault_tasks.spawn_daemon", args=[str(pid_file)], timeout=1.5,
                         max_retries=0)  # fmt: skip
    stubborn = jobtui.enqueue("fault_tasks.ignore_sigterm", args=[60], timeout=0.5, max_retries=0)
    daemon_pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text()))
    assert psutil.pid_exists(daemon_pid)
    wait_for(lambda: _status(job.id) == "failed", what="timed out")
    assert Job.get_by_id(job.id).error_message == "timed out after 1.5 s"
    attempt = JobAttempt.get(JobAttempt.job == job.id)
    assert attempt.outcome == "timed_out" and attempt.error_message == "timed out after 1.5 s"

    def daemon_gone() -> bool:
        try:
            return psutil.Process(daemon_pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    wait_for(daemon_gone, what="double-forked grandchild swept")
    wait_for(lambda: _status(stubborn.id) == "failed", what="SIGTERM ignored, then SIGKILL")
    assert Job.get_by_id(stubborn.id).error_message == "timed out after 0.5 s"
    assert sup.proc.poll() is None


def test_supervisor_sigkill_takes_its_workers_and_the_next_supervisor_recovers(env):
    start, log_path = env
    first = start("--workers", "1")
    job = jobtui.enqueue("fault_tasks.sleep_then_return", args=[0.3], retry_delay=0)
    wait_for(lambda: executions(log_path), what="job started")
    workers = first.workers()
    first.proc.kill()
    first.proc.wait(10)
    for worker in workers:
        wait_for(lambda w=worker: not w.is_running() or w.status() == psutil.STATUS_ZOMBIE,
                 what="worker died with its supervisor")  # fmt: skip
    assert _status(job.id) == "running"
    start("--workers", "1")
    wait_for(lambda: _status(job.id) == "completed", what="recovered and completed")
    row = Job.get_by_id(job.id)
    assert row.attempt == 2 and row.retry_count == 1
    assert "died" in JobAttempt.get(JobAttempt.job == job.id, JobAttempt.attempt == 1).error_message
    check_history(log_path, faulted={job.id})


def test_cancel_pending_cooperative_and_stubborn_jobs(env):
    start, log_path = env
    start("--workers", "2", "--poll-interval", "0.1")
    coop = jobtui.enqueue("fault_tasks.cooperative", args=[30])
    stubborn = jobtui.enqueue("fault_tasks.ignore_sigterm", args=[60])
    pending = jobtui.enqueue("fault_tasks.record", delay=600)
    assert jobtui.cancel(pending.id).status == "cancelled"
    wait_for(lambda: len(executions(log_path)) == 2, what="both running")
    jobtui.cancel(coop.id)
    jobtui.cancel(stubborn.id)
    wait_for(lambda: _status(coop.id) == "cancelled", what="cooperative job stopped")
    wait_for(lambda: _status(stubborn.id) == "cancelled", what="stubborn job killed")
    assert JobAttempt.get(JobAttempt.job == stubborn.id).outcome == "cancelled"


def test_warm_shutdown_finishes_short_jobs_and_puts_long_ones_back(env):
    start, log_path = env
    sup = start("--workers", "2", "--shutdown-grace", "1")
    short = jobtui.enqueue("fault_tasks.sleep_then_return", args=[0.3])
    long = jobtui.enqueue("fault_tasks.sleep_then_return", args=[30])
    wait_for(lambda: len(executions(log_path)) == 2, what="both running")
    sup.signal(signal.SIGTERM)
    assert sup.proc.wait(20) == 0
    assert _status(short.id) == "completed"
    row = Job.get_by_id(long.id)
    assert row.status == "pending" and row.retry_count == 0
    assert "shutdown" in row.error_message
    assert JobAttempt.get(JobAttempt.job == long.id).outcome == "interrupted"


def test_second_signal_is_a_cold_stop(env):
    start, log_path = env
    sup = start("--workers", "1", "--shutdown-grace", "60")
    job = jobtui.enqueue("fault_tasks.sleep_then_return", args=[60])
    wait_for(lambda: executions(log_path), what="running")
    sup.signal(signal.SIGINT)
    wait_for(lambda: "warm shutdown" in sup.log(), what="warm shutdown began")
    sup.signal(signal.SIGINT)
    assert sup.proc.wait(20) == 0
    assert _status(job.id) == "pending" and Job.get_by_id(job.id).retry_count == 0


def test_sigtstp_quiets_and_sigcont_resumes(env):
    start, log_path = env
    sup = start("--workers", "1")
    sup.signal(signal.SIGTSTP)
    wait_for(lambda: "SIGTSTP" in sup.log(), what="quiet")
    job = jobtui.enqueue("fault_tasks.record")
    with pytest.raises(AssertionError):
        wait_for(lambda: _status(job.id) != "pending", timeout=1.0)
    sup.signal(signal.SIGCONT)
    wait_for(lambda: _status(job.id) == "completed", what="claimed after SIGCONT")


def test_bad_data_fails_alone(env, db):
    start, _log = env
    sup = start("--workers", "1", "--max-result-bytes", "1000")
    set_queue_paused("default", True)  # corrupt the row before anyone can claim it
    corrupt = jobtui.enqueue("fault_tasks.record")
    db.execute_sql(
        dialect_for(db).sql("UPDATE jobs SET parameters = :p WHERE id = :id"),
        {"p": "{not json", "id": corrupt.id},
    )
    set_queue_paused("default", False)
    bad_result = jobtui.enqueue("fault_tasks.unserialisable")
    too_big = jobtui.enqueue("fault_tasks.huge")
    good = jobtui.enqueue("fault_tasks.record", args=[7])
    assert jobtui.wait(good.id, timeout=20) == 7
    for job_id, message in ((corrupt.id, "corrupt parameters"),
                            (bad_result.id, "not JSON-serialisable"),
                            (too_big.id, "over --max-result-bytes 1000")):  # fmt: skip
        wait_for(lambda j=job_id: _status(j) == "failed", what=message)
        row = Job.get_by_id(job_id)
        assert message in row.error_message and row.retry_count == 0
    assert sup.proc.poll() is None


def test_workers_are_recycled_after_n_jobs(env):
    start, _log = env
    sup = start("--workers", "1", "--max-jobs-per-worker", "2")
    first_pid = wait_for(sup.workers, what=f"a worker\n{sup.log()}")[0].pid
    jobs = [jobtui.enqueue("fault_tasks.record", args=[n]) for n in range(5)]
    for job in jobs:
        jobtui.wait(job.id, timeout=20)
    pids = {a.pid for a in JobAttempt.select()}
    assert first_pid in pids and len(pids) == 3  # 2 + 2 + 1 jobs


def test_a_held_sqlite_write_lock_delays_but_loses_nothing(env, db_url, tmp_path):
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite's write lock")
    start, log_path = env
    sup = start("--workers", "2")
    jobs = [jobtui.enqueue("fault_tasks.record", args=[n]) for n in range(20)]
    blocker = sqlite3.connect(db_url.split("sqlite:///", 1)[1], isolation_level=None,
                              check_same_thread=False)  # fmt: skip
    blocker.execute("BEGIN IMMEDIATE")
    release = threading.Timer(3.0, lambda: blocker.execute("COMMIT"))
    release.start()
    during = [jobtui.enqueue("fault_tasks.record", args=[n]) for n in range(20, 23)]  # waits
    release.join()
    for job in jobs + during:
        jobtui.wait(job.id, timeout=30)
    assert sup.proc.poll() is None
    check_history(log_path)


@pytest.mark.timeout(180)
def test_three_supervisors_drain_2000_jobs_each_exactly_once(env):
    start, log_path = env
    for n in range(3):
        start("--workers", "2", name=f"drain-{n}-{os.getpid()}")
    jobs = jobtui.enqueue_many("fault_tasks.record", [{"args": [n]} for n in range(2000)])
    wait_for(lambda: Job.select().where(Job.status == "completed").count() == len(jobs),
             timeout=150, interval=0.2, what="drained")  # fmt: skip
    runs = executions(log_path)
    assert len(runs) == len(jobs) and set(runs.values()) == {1}
    assert len({a.supervisor_name for a in JobAttempt.select()}) >= 2  # the work was shared
    check_history(log_path)
