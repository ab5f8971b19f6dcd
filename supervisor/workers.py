"""What the supervisor does with its workers' messages: outcomes, progress, recycling.

A mixin of ``Supervisor`` (loop.py), kept apart so each file holds one concern: this one
turns what a worker says (or how it died) into the ``Outcome`` the group commit writes.
"""

from __future__ import annotations

import logging
import selectors
import time

from jobtui.execution import outcome_from_message
from jobtui.models.clock import sql_timestamp, utcnow
from jobtui.models.outcomes import Outcome

from . import procinfo
from .logline import job_fields
from .pool import RunningJob, WorkerHandle

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from .loop import Supervisor

log = logging.getLogger(__name__)

PROGRESS_WRITE_INTERVAL_S = 0.25
STAMP_REUSE_S = 0.0002  # stamp_now reads the clock again after this long


class WorkerEvents:
    def stamp_now(self: Supervisor) -> str:
        """The time now as the columns store it, to within 0.2 ms: a drain of a worker's
        outcomes begins many prefetched jobs at once, and one clock read serves them all."""
        mono = time.monotonic()
        if mono - self.stamp_mono > STAMP_REUSE_S:
            self.stamp_mono, self.stamp_text = mono, sql_timestamp(utcnow())
        return self.stamp_text

    def send(self: Supervisor, worker: WorkerHandle, message: tuple) -> None:
        """Send without ever waiting on the worker: what its socket cannot take now is sent
        when it becomes writable (``flush_worker``)."""
        try:
            if worker.conn.send_nowait(message):
                return
        except (OSError, ValueError):
            worker.conn.outbox.clear()  # it died; reaping will tell
            return
        self._watch(worker, selectors.EVENT_READ | selectors.EVENT_WRITE)

    def flush_worker(self: Supervisor, worker: WorkerHandle) -> None:
        """The worker's socket can take more of what was queued for it."""
        try:
            done = worker.conn.flush()
        except (OSError, ValueError):
            worker.conn.outbox.clear()
            done = True
        if done:
            self._watch(worker, selectors.EVENT_READ)

    def _watch(self: Supervisor, worker: WorkerHandle, events: int) -> None:
        try:
            self.selector.modify(worker.conn, events, worker)
        except (KeyError, ValueError):
            pass  # no longer watched: its pipe closed

    def drain_worker(self: Supervisor, worker: WorkerHandle) -> None:
        """Read every message the worker has sent so far."""
        conn = worker.conn
        if conn.closed:
            return
        try:
            messages = conn.read_ready()
        except OSError:
            messages = []
        if messages:
            worker.last_message_mono = time.monotonic()
            for message in messages:
                self.on_message(worker, message)
        if conn.eof:  # the worker is dying; SIGCHLD follows (stop watching a closed pipe)
            self.child_exited = True
            try:
                self.selector.unregister(conn)
            except (KeyError, ValueError):
                pass

    def _worker_info(self: Supervisor, worker: WorkerHandle) -> dict:
        """Who ran a job, as its outcome records it (built once per worker, never changed)."""
        if worker.info is None:
            worker.info = {"worker_name": worker.name, "supervisor_name": self.config.name,
                           "pid": worker.pid, "host": self.config.host}  # fmt: skip
        return worker.info

    def on_message(self: Supervisor, worker: WorkerHandle, message: tuple) -> None:
        kind = message[0]
        if kind == "beat":
            for job in worker.jobs:  # a report the write interval held back goes out now
                if job.progress is not None:
                    self._write_progress(job)
            return
        if kind == "stack":
            self.stacks.on_answer(worker, message[1], message[2])
            return
        job = worker.find(message[1])
        if job is None or job.claimed.attempt != message[2]:
            return  # a run we no longer track (its lease was lost)
        if kind == "log":
            self.commit.add_log({"id": message[1], "attempt": message[2], "seq": message[3],
                                 "lines": message[4], "dropped": message[5],
                                 "dropped_lines": message[6]})  # fmt: skip
        elif kind == "progress":
            job.progress = (message[3], message[4], message[5])
            due = time.monotonic() - job.progress_written_mono >= PROGRESS_WRITE_INTERVAL_S
            if due or message[3] >= 100:
                self._write_progress(job)
        elif kind in ("done", "error"):
            ran = message[-1]
            self.finish(worker, job, self._outcome_of(worker, job, message[:-1]), ran_s=ran)
        else:
            self.finish(worker, job, self._outcome_of(worker, job, message))

    def _write_progress(self: Supervisor, job: RunningJob) -> None:
        """Queue the run's latest progress for the next group commit (coalesced: the
        worker reports at most every 0.1 s, the row is written at most every 0.25 s, and
        a report held back goes out with the worker's next beat or before the outcome)."""
        job.progress_written_mono = time.monotonic()
        self.commit.add_progress(job.claimed.fence, *job.progress)
        job.progress = None

    def _outcome_of(
        self: Supervisor, worker: WorkerHandle, job: RunningJob, message: tuple
    ) -> Outcome:
        claimed, info = job.claimed, self._worker_info(worker)
        base = {"job_id": claimed.id, "attempt": claimed.attempt, "started_at": job.started_at,
                "lease_token": claimed.lease_token, "worker": info}  # fmt: skip
        kind = message[0]
        if kind == "skipped":
            return Outcome(**base, kind="interrupted", error="supervisor shutdown: not started")
        if job.cancel_sent or kind == "cancelled":
            return Outcome(**base, kind="cancelled", error=job.cancel_error,
                           error_type="Cancelled")  # fmt: skip
        policy = None if kind == "done" else self._task_policy(claimed.job_type)
        return outcome_from_message(message, claimed.lease_token, worker=info,
                                    task_policy=policy, started_at=job.started_at)  # fmt: skip

    def _task_policy(self: Supervisor, job_type: str):
        return self.task_settings.policy(job_type)

    def finish(
        self: Supervisor,
        worker: WorkerHandle,
        job: RunningJob,
        outcome: Outcome,
        ran_s: float | None = None,
    ) -> None:
        worker.jobs.remove(job)
        if worker.jobs and worker.jobs[0].started_mono is None and not worker.exited:
            nxt = worker.jobs[0]
            nxt.started_mono = time.monotonic()  # jobs run in order: the next one begins now
            nxt.started_at = self.stamp_now()
            if self.metrics is not None:
                self.meter_start(nxt)
            if log.isEnabledFor(logging.INFO):
                claimed = nxt.claimed
                log.info("job %s %s attempt %d started on %s (pid %d)", nxt.id,
                         claimed.job_type, claimed.attempt, worker.name, worker.pid,
                         extra=job_fields(nxt.id, claimed.job_type, claimed.queue_name,
                                          claimed.attempt, worker.name))  # fmt: skip
        self.prefetch.job_ran(ran_s)
        ran = ran_s
        if ran is None and job.started_mono is not None:
            ran = time.monotonic() - job.started_mono
        if ran is not None:
            self.job_run_ewma_s += 0.2 * (ran - self.job_run_ewma_s)
        self.finished_info[(outcome.job_id, outcome.attempt)] = (
            job.claimed.job_type,
            ran,
            job.claimed.queue_name,
        )
        self.cancel_deadlines.pop(job.id, None)
        if job.progress is not None:  # the run's last report lands before its outcome
            self._write_progress(job)
        self.commit.add_outcome(outcome)
        if outcome.kind == "completed":
            worker.jobs_done += 1
            self.jobs_done += 1
        elif outcome.kind in ("failed", "cancelled"):
            worker.jobs_failed += 1
            self.jobs_failed += 1
        self.want_claim = True
        self._maybe_recycle(worker)
        if not worker.jobs:
            worker.idle_since = time.monotonic()
            self.feed(worker)  # its next job now, not after this turn's commit

    def _maybe_recycle(self: Supervisor, worker: WorkerHandle) -> None:
        """Retire a worker past its job count or memory limit: it is handed nothing more
        and is stopped once it has run the job it holds."""
        if worker.stop_sent or self.stopping:
            return
        if not worker.retiring:
            limit = self.config.max_jobs_per_worker
            reason = None
            if limit and worker.jobs_done + worker.jobs_failed >= limit:
                reason = f"ran {limit} jobs"
            elif self.config.max_memory_per_worker_mb:
                self.measure(worker)
                if worker.rss_bytes > self.config.max_memory_per_worker_mb * 1024 * 1024:
                    reason = f"uses {worker.rss_bytes / 1048576:.0f} MB"
            if reason:
                log.info("recycling worker %s (pid %d): %s", worker.name, worker.pid, reason)
                worker.retiring = True
        if worker.retiring and not worker.jobs:
            worker.stop_sent = True
            self.send(worker, ("stop",))

    def job_lost_with_worker(
        self: Supervisor,
        worker: WorkerHandle,
        job: RunningJob,
        why: str,
        *,
        started: bool,
        crash: str | None = None,
    ) -> None:
        """The worker running (or holding) ``job`` is gone: decide the job's outcome.

        Crash-loop quarantine counts the runs that killed their worker: a death we did not
        cause (a signal from anyone else — the kernel's OOM killer, the task's own
        ``kill`` — or an exit in the middle of the job: ``crash`` says how), and a hang we
        killed it for (silent past the lease). Not counted: a timeout (the job's own limit,
        retried as such), a cancel, a shutdown, a lost lease, nor a worker that died with
        its supervisor (recovery.py: not the job's fault)."""
        claimed, info = job.claimed, self._worker_info(worker)
        base = {"job_id": claimed.id, "attempt": claimed.attempt, "started_at": job.started_at,
                "lease_token": claimed.lease_token, "worker": info}  # fmt: skip
        plan = worker.kill
        if plan is not None and plan.kind == "lost":
            return  # another supervisor owns it now: write nothing
        if plan is not None and plan.kind == "shutdown":
            outcome = Outcome(**base, kind="interrupted", error=plan.reason)
        elif not started:  # handed over but never begun: back to pending, no retry spent
            outcome = Outcome(**base, kind="interrupted", error=f"worker lost before start: {why}")
        elif job.cancel_sent or (plan is not None and plan.kind == "cancel"):
            outcome = Outcome(**base, kind="cancelled", error=job.cancel_error,
                              error_type="Cancelled", attempt_outcome="cancelled")  # fmt: skip
        elif plan is not None and plan.kind == "timeout":
            outcome = Outcome(**base, kind="failed", error=plan.reason, error_type="Timeout",
                              attempt_outcome="timed_out",
                              task_policy=self._task_policy(claimed.job_type))  # fmt: skip
        else:
            reason = plan.reason if plan is not None else why
            if plan is not None:  # a kill of ours: only a hang counts as a crash
                crash = f"hang: {plan.reason}" if plan.kind == "hang" else None
            outcome = Outcome(**base, kind="failed", error=reason, error_type="WorkerLost",
                              attempt_outcome="crashed",
                              permanent=self._orphan_policy(claimed.job_type) == "fail",
                              task_policy=self._task_policy(claimed.job_type), crash=crash,
                              max_crashes=self.task_settings.crash_limit(claimed.job_type))  # fmt: skip
        self.finish(worker, job, outcome)

    def meter_start(self: Supervisor, job: RunningJob) -> None:
        """Count a run that begins now, once (a job taken back unstarted and begun again
        elsewhere is still one start)."""
        if not job.metered:
            job.metered = True
            claimed = job.claimed
            due, backoff = claimed.run_at, claimed.next_retry_at
            if backoff is not None and (due is None or backoff > due):
                due = backoff  # a retry is due once its backoff is over
            self.metrics.started(claimed.queue_name, claimed.job_type, due)

    def log_outcome(self: Supervisor, outcome: Outcome, status: str | None) -> None:
        task, ran, queue = self.finished_info.pop(
            (outcome.job_id, outcome.attempt), ("?", None, None)
        )
        if self.metrics is not None:
            self.metrics.ended(queue, task, status, outcome.attempt_outcome, ran)
        if status == "completed" and not log.isEnabledFor(logging.INFO):
            return
        took = "" if ran is None else f" after {ran:.3f} s"
        what = f"job {outcome.job_id} {task} attempt {outcome.attempt}"
        extra = job_fields(outcome.job_id, task, queue, outcome.attempt,
                           outcome.worker.get("worker_name"))  # fmt: skip
        if status is None:
            log.warning("%s: outcome dropped, its lease was lost", what, extra=extra)
        elif status == "completed":
            log.info("%s completed%s", what, took, extra=extra)
        elif status == "retrying":
            log.warning("%s failed%s, will retry: %s", what, took, outcome.error, extra=extra)
            if self.notifier.settings.retries:
                self.notify(outcome.job_id, task, queue, outcome.attempt, outcome.error,
                            outcome.error_type, event="retrying")  # fmt: skip
        elif status == "failed":
            error, error_type = outcome.error, outcome.error_type
            if outcome.crash:  # maybe quarantined: the row says so (a rare read)
                error, error_type = self._final_error(outcome.job_id) or (error, error_type)
            log.error("%s failed for good%s: %s", what, took, error, extra=extra)
            self.notify(outcome.job_id, task, queue, outcome.attempt, error, error_type)
        else:
            log.info("%s %s%s: %s", what, status, took, outcome.error, extra=extra)

    def _final_error(self: Supervisor, job_id: str) -> tuple[str, str] | None:
        """The error a job ended with, as its row has it (a quarantine's own words)."""
        import peewee

        from jobtui.models.dialect import dialect_for

        try:
            row = self.db.execute_sql(dialect_for(self.db).sql(
                "SELECT error_message, error_type FROM jobs WHERE id = :id"),
                {"id": job_id}).fetchone()  # fmt: skip
        except peewee.PeeweeException:
            return None
        return None if row is None else (row[0], row[1])

    def measure(self: Supervisor, worker: WorkerHandle) -> None:
        """CPU % since the last measure and RSS of the worker process."""
        if worker.usage is None:
            worker.usage = procinfo.Usage(worker.pid)
        reading = worker.usage.read()
        if reading is not None:
            worker.cpu_percent, worker.rss_bytes = reading
