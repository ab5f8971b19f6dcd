"""Jobs, workers and supervisors written straight into the test database."""

from __future__ import annotations

from datetime import timedelta

from jobtui.api import enqueue
from jobtui.models import Job, Supervisor, Worker, store
from jobtui.models.clock import utcnow
from jobtui.tui.app import JobtuiApp
from jobtui.tui.clock import SystemClock
from jobtui.tui.operations import Operations
from jobtui.tui.source import DataSource


def make_job(task: str = "tests.task", queue: str = "default", status: str = "pending",
             **fields) -> str:  # fmt: skip
    """A job in ``status``; ``fields`` are written over the enqueued row."""
    job = enqueue(task, queue=queue, max_retries=fields.pop("max_retries", 3))
    values = dict(fields)
    if status != "pending":
        values["status"] = status
    if status == "running":
        values.setdefault("attempt", 1)
        values.setdefault("started_at", utcnow() - timedelta(seconds=5))
        values.setdefault("lease_token", "t")
    if status == "failed":
        values.setdefault("attempt", 1)
        values.setdefault("failed_at", utcnow())
        values.setdefault("error_type", "RuntimeError")
        values.setdefault("error_message", "boom")
    if values:
        Job.update(**values).where(Job.id == job.id).execute()
    return job.id


def make_jobs(count: int, **kwargs) -> list[str]:
    """``count`` jobs, newest last (ids grow with creation)."""
    return [make_job(**kwargs) for _ in range(count)]


def make_worker(name: str = "sup-1-w1", supervisor: str = "sup-1", job_id: str | None = None,
                *, age_s: float = 0.0, interval_s: float | None = None) -> None:  # fmt: skip
    beat = utcnow() - timedelta(seconds=age_s)
    if Supervisor.get_or_none(Supervisor.name == supervisor) is None:
        Supervisor.create(name=supervisor, host="host", pid=100, heartbeat_at=beat,
                          queues={"*": 2}, heartbeat_interval_s=interval_s)  # fmt: skip
    Worker.create(name=name, supervisor=supervisor, host="host", pid=101, heartbeat_at=beat,
                  state="busy" if job_id else "idle", current_job_id=job_id, queue_name="*")  # fmt: skip


def status_of(job_id: str) -> str | None:
    job = Job.get_or_none(Job.id == job_id)
    return None if job is None else job.status


def db_app(db, *, read_only: bool = False, refresh_interval: float | None = None) -> JobtuiApp:
    """The console on the test database, as ``jobtui`` builds it (no timers by default)."""
    source = DataSource(db, url=store.current_url() or "", clock=SystemClock())
    operations = None if read_only else Operations(db)
    return JobtuiApp(source, operations=operations, read_only=read_only,
                     refresh_interval=refresh_interval)  # fmt: skip
