"""The supervisor's upkeep between jobs: heartbeat rows, cancellation polls, cron timing,
retention and failure notifications.

A mixin of ``Supervisor`` (loop.py), so the loop file holds the loop and the processes.
"""

from __future__ import annotations

import logging
import math
import os
import time
from datetime import timedelta

import peewee

from jobtui.models.audit import prune_audit
from jobtui.models.clock import utcnow
from jobtui.models.dialect import dialect_for
from jobtui.models.errors import StoreError
from jobtui.models.outcomes import Outcome
from jobtui.models.retention import PRUNE_BATCH, prune_jobs, prune_schedule_fires
from jobtui.models.scheduling import next_schedule_due

from . import timeouts
from .logline import job_fields
from .pool import RunningJob, WorkerHandle

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from typing import Any

    from .loop import Supervisor

log = logging.getLogger(__name__)

PRUNE_INTERVAL_S = 60.0
_CANCEL_POLL = """SELECT id, cancel_reason, kill_requested FROM jobs WHERE status = 'running'
    AND supervisor_name = :me AND cancel_requested"""


class Upkeep:
    def prune(self: Supervisor) -> None:
        """Retention: one small batch of old completed and cancelled jobs (and of old cron
        fire records, and of old audit rows) per call."""
        now = time.monotonic()
        config = self.config
        if self.stopping or now < self.next_prune or (
                config.retention_days <= 0 and config.audit_retention_days <= 0):  # fmt: skip
            return
        self.next_prune = now + PRUNE_INTERVAL_S
        deleted = fires = audited = 0
        try:
            if config.retention_days > 0:
                keep = timedelta(days=config.retention_days)
                deleted = prune_jobs(older_than=keep, max_batches=1, retry_locked=False,
                                     db=self.db)  # fmt: skip
                fires = prune_schedule_fires(older_than=keep, db=self.db)
            if config.audit_retention_days > 0:
                audited = prune_audit(older_than=timedelta(days=config.audit_retention_days),
                                      max_batches=1, db=self.db)  # fmt: skip
        except (peewee.PeeweeException, StoreError) as exc:
            log.debug("pruning postponed: %s", exc)
            return
        if deleted:
            log.info("pruned %d job(s) older than %g days", deleted, config.retention_days)
        if fires:
            log.info("pruned %d cron fire record(s)", fires)
        if audited:
            log.info("pruned %d audit row(s) older than %g days", audited,
                     config.audit_retention_days)  # fmt: skip
        if max(deleted, fires, audited) >= PRUNE_BATCH:
            self.next_prune = now  # more to do: another batch next turn

    def cron_deadline(self: Supervisor, now_mono: float) -> float:
        """When the next schedule is due, on our monotonic clock; none: never (a schedule
        added or changed by another process is found by the safety poll, which ticks cron
        too, and on SQLite runs in full whenever another connection has committed)."""
        try:
            upcoming = next_schedule_due(self.db)
        except peewee.PeeweeException:
            return now_mono + self.config.poll_interval_s  # look again at the next poll
        if upcoming is None:
            return math.inf
        return now_mono + max(0.0, (upcoming - utcnow()).total_seconds())

    def notify(self: Supervisor, job_id: str, task: str | None, queue: str | None, attempts: int,
               error: str | None, error_type: str | None, event: str = "failed") -> None:  # fmt: skip
        """Hand a final failure (or, ``event="retrying"``, a failed attempt that will be
        retried) to the notifier (webhook, e-mail, on_failure hook).

        A run recovered from a dead owner arrives without its task and queue: they are read
        from the job row, so its notification and its task's ``on_failure`` hook match
        those of any other final failure."""
        if (task is None or queue is None) and self.notifier.write_fd is not None:
            try:
                row = self.db.execute_sql(dialect_for(self.db).sql(
                    "SELECT job_type, queue_name FROM jobs WHERE id = :id"), {"id": job_id},
                ).fetchone()  # fmt: skip
            except peewee.PeeweeException as exc:
                log.debug("could not read job %s for its notification: %s", job_id, exc)
                row = None
            if row is not None:
                task, queue = task or row[0], queue or row[1]
        self.notifier.send({"event": event, "job_id": job_id, "task": task, "queue": queue,
                            "attempts": attempts, "error": error, "error_type": error_type,
                            "supervisor": self.config.name})  # fmt: skip

    def poll_cancellations(self: Supervisor) -> None:
        """At each safety poll while jobs are held: cancel requests, and stack requests
        whose wake-up was lost (stacks.py)."""
        if not self.ready and not any(w.jobs for w in self.workers.values()):
            return
        self.stacks.poll(self.db, self.workers.values())
        try:
            rows = self.db.execute_sql(dialect_for(self.db).sql(_CANCEL_POLL),
                                       {"me": self.config.name}).fetchall()  # fmt: skip
        except peewee.PeeweeException as exc:
            log.debug("cancel poll failed: %s", exc)
            return
        for job_id, reason, kill in rows:
            held = self.ready.remove(job_id)
            if held is not None:  # not begun: it ends cancelled without running
                held.cancel_reason = reason
                self.commit.add_outcome(Outcome(
                    held.id, held.claimed.attempt, held.claimed.lease_token, "cancelled",
                    error=held.cancel_error, error_type="Cancelled"))  # fmt: skip
                log.info("job %s cancelled before it began (%s)", job_id, held.cancel_error,
                         extra=job_fields(job_id, held.claimed.job_type,
                                          held.claimed.queue_name, held.claimed.attempt))  # fmt: skip
                continue
            for worker in self.workers.values():
                job = worker.find(job_id)
                if job is not None:
                    self.stop_cancelled(worker, job, reason, bool(kill))

    def stop_cancelled(self: Supervisor, worker: WorkerHandle, job: RunningJob,
                       reason: str | None, kill: bool) -> None:  # fmt: skip
        """An operator cancelled ``job``. A job still waiting behind another is told not to
        start. A running one is asked to stop (``cancel_requested``) and killed after the
        kill grace, or for a kill its process tree gets SIGTERM now, without asking (also
        when it was asked before and did not listen)."""
        job.cancel_reason = reason
        running = worker.current is job and job.started_mono is not None
        if kill and running:
            if not job.kill_sent:
                job.cancel_sent = job.kill_sent = True
                self.cancel_deadlines.pop(job.id, None)
                log.info("job %s: kill requested (%s); stopping its processes", job.id,
                         job.cancel_error, extra=self.job_extra(worker, job))  # fmt: skip
                timeouts.start_kill(worker, job.cancel_error, "cancel", self.config.kill_grace_s)
        elif not job.cancel_sent:
            job.cancel_sent = True
            self.send(worker, ("cancel", job.id))
            self.cancel_deadlines[job.id] = time.monotonic() + self.config.kill_grace_s
            log.info("job %s: cancel requested (%s); asking it to stop", job.id,
                     job.cancel_error, extra=self.job_extra(worker, job))  # fmt: skip

    @staticmethod
    def job_extra(worker: WorkerHandle, job: RunningJob) -> dict[str, Any]:
        """The JSON log keys of ``job`` on ``worker`` (logline.job_fields)."""
        claimed = job.claimed
        return job_fields(claimed.id, claimed.job_type, claimed.queue_name, claimed.attempt,
                          worker.name)  # fmt: skip

    def state(self: Supervisor) -> str:
        """What the supervisor row says it does: running, quiet, reloading or stopping."""
        if self.stopping:
            return "reloading" if self.reload_requested else "stopping"
        return "quiet" if self.quiet else "running"

    def heartbeat_rows(self: Supervisor) -> tuple[dict[str, Any], list[dict[str, Any]], list]:
        cpu_percent, rss_bytes = self.process.read() or (0.0, 0)
        sup = {"name": self.config.name, "pid": os.getpid(),
               "state": self.state(), "cpu_percent": cpu_percent, "rss_bytes": rss_bytes,
               "jobs_done": self.jobs_done, "jobs_failed": self.jobs_failed}  # fmt: skip
        rows, fences = [], []
        for worker in self.workers.values():
            self.measure(worker)
            current = worker.current
            rows.append({
                "name": worker.name, "supervisor_name": self.config.name, "host": self.config.host,
                "pid": worker.pid, "process_started_at": worker.process_started_at,
                "started_at": worker.started_at, "state": worker.state, "queue_name": worker.group.label,
                "current_job_id": current.id if current else None,
                "cpu_percent": worker.cpu_percent, "rss_bytes": worker.rss_bytes,
                "jobs_done": worker.jobs_done, "jobs_failed": worker.jobs_failed,
            })  # fmt: skip
            fences += [job.claimed.fence for job in worker.jobs]
        fences += [job.claimed.fence for job in self.ready]  # claimed, waiting for a worker
        return sup, rows, fences
