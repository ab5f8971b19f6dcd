"""What each loop turn writes and claims, and handing the claimed jobs to workers.

A mixin of ``Supervisor`` (loop.py), kept apart so each file holds one concern. One group
commit per turn carries every outcome, progress, heartbeat, sweep, cron tick and claim;
for jobs far shorter than a commit it waits a moment (at most ``DEFER_MAX_S``) while any
worker still has a job in hand, so one transaction carries several jobs (group commit).

Claimed jobs wait in the supervisor's ready buffer (ready.py), never in a busy worker's
pipe: each worker holds only the job it runs, and gets the next the moment it reports
that one done, so no job waits for a busy worker while another worker of its group is
free. While workers are fed from the buffer the commit waits up to ``FEED_DEFER_MAX_S``
(until the buffer is half spent), so one transaction still carries many short jobs.
"""

from __future__ import annotations

import heapq
import logging
import time
from datetime import datetime

import peewee

from jobtui.models.clock import sql_timestamp, utcnow
from jobtui.models.dialect import dialect_for
from jobtui.models.outcomes import Outcome
from jobtui.models.ready_reads import READY_PARTS

from . import timeouts
from .commit import ClaimRequest
from .config import WorkerGroup
from .logline import job_fields
from .pool import RunningJob, WorkerHandle
from .prefetch import STALLED_S

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from jobtui.models.claims import ClaimedJob

    from .loop import Supervisor

log = logging.getLogger(__name__)

# a retry keeps its place in line (run_at) and is due once its backoff is over; the ready
# jobs are read per claim index (models/ready_reads.py)
_NEXT_DUE_HALF = """SELECT CASE WHEN next_retry_at > run_at
    THEN next_retry_at ELSE run_at END AS due FROM jobs
    WHERE {half} AND (run_at > :now OR next_retry_at > :now)"""
_NEXT_DUE = f"""SELECT DISTINCT due FROM ({
    " UNION ALL ".join(_NEXT_DUE_HALF.format(half=half) for half in READY_PARTS)
}) d
ORDER BY due LIMIT 32"""

NAME_WORKER_AFTER_S = 0.2  # a job running this long gets its worker's name on its row
# Jobs shorter than a commit: hold their outcomes while a worker still has a job in hand
# (at most DEFER_MAX_S), so one transaction carries several jobs' endings and claims.
DEFER_JOBS_UNDER_S = 0.0003
DEFER_MAX_S = 0.001
#: While the ready buffer feeds the workers, hold outcomes this long at most (or until
#: half the buffer is spent) before the commit that writes them and claims more.
FEED_DEFER_MAX_S = 0.002
MAX_DUE_TIMERS = 1024
DUE_MARGIN_S = 0.002  # claim a due job this late, never early (clocks differ in rounding)
STARTED_LATER_S = 0.001  # a job begun this long after its claim gets its own start time
#: Jobs held behind one running this long (no longer a short one) are taken back for a
#: free worker (gates.py).
TAKE_BACK_AFTER_S = STALLED_S


def _wire(job: ClaimedJob, seq: int = 0) -> tuple:
    """A job as its worker receives it (child.py): (id, task, parameters, attempt, queue),
    then its ``seq`` when it may be taken back (gates.py; 0: not numbered), then the
    enqueuer's trace context when it has one (jobtui/tracing.py)."""
    if job.trace_context is not None:
        return (job.id, job.job_type, job.parameters_json, job.attempt, job.queue_name, seq,
                job.trace_context)  # fmt: skip
    if seq:
        return (job.id, job.job_type, job.parameters_json, job.attempt, job.queue_name, seq)
    return (job.id, job.job_type, job.parameters_json, job.attempt, job.queue_name)


class Dispatch:
    # ---------------------------------------------------------------- database

    def prefetch_depth(self: Supervisor) -> int:
        """Jobs a busy worker may hold now beyond the one it runs (prefetch.py)."""
        now = time.monotonic()
        return self.prefetch.depth(
            now - w.jobs[0].started_mono
            for w in self.workers.values()
            if w.jobs and w.jobs[0].started_mono is not None
        )

    def _capacity_requests(self: Supervisor) -> list[ClaimRequest]:
        if self.stopping or self.quiet:
            return []
        free: dict[WorkerGroup, int] = {}
        depth = self.claim_depth = self.prefetch_depth()  # dispatch hands out what it claims
        for worker in self.workers.values():
            capacity = worker.capacity(depth)
            if capacity:
                free[worker.group] = free.get(worker.group, 0) + capacity
        requests = []
        for group, room in free.items():
            room -= self.ready.count(group.queues)  # claimed already, waiting for a worker
            if room > 0:
                requests.append(ClaimRequest(queues=group.queues, limit=room))
        return requests

    def _deferring(self: Supervisor, now: float) -> bool:
        """Hold this turn's commit for a moment? Only while jobs are far shorter than a
        commit, outcomes wait and some worker still has a job in hand: its outcome is a
        few microseconds away, and the next commit carries it too (group commit). The
        daemon's core, not the workers', is what limits such jobs. Not with a deeper
        prefetch: each turn has many outcomes anyway, and waiting measured slower."""
        first = self.commit.first_outcome_mono
        if self._feeding() and now < first + FEED_DEFER_MAX_S:
            return True  # the buffer still feeds every worker: write and claim a bit later
        if (first is None or now >= first + DEFER_MAX_S or self.stopping
                or self.job_run_ewma_s > DEFER_JOBS_UNDER_S
                or self.claim_depth > 1):  # fmt: skip
            return False
        return any(worker.jobs for worker in self.workers.values())

    def _feeding(self: Supervisor) -> bool:
        """Outcomes wait while the ready buffer, at least half full, feeds the workers."""
        return (self.commit.first_outcome_mono is not None and bool(self.ready)
                and not self.stopping
                and 2 * len(self.ready) >= self.claim_depth * len(self.workers))  # fmt: skip

    def defer_deadline(self: Supervisor) -> float:
        """When a commit held back by ``_deferring`` is due."""
        first = self.commit.first_outcome_mono or 0.0
        return first + (FEED_DEFER_MAX_S if self._feeding() else DEFER_MAX_S)

    def claim_at(self: Supervisor, due: str | datetime) -> None:
        """Jobs are due at ``due`` (UTC, as a wake-up announced it): claim then, not at a
        safety poll up to a second later."""
        try:
            moment = due if isinstance(due, datetime) else datetime.fromisoformat(due)
            wait = (moment - utcnow()).total_seconds()
        except (TypeError, ValueError):
            return  # not a timestamp: the safety poll will do
        at = time.monotonic() + max(0.0, wait) + DUE_MARGIN_S
        timers = self.due_times
        if len(timers) < MAX_DUE_TIMERS:
            heapq.heappush(timers, at)
        else:  # full: keep the soonest (the latest falls back to the safety poll)
            latest = max(range(len(timers)), key=timers.__getitem__)
            if at < timers[latest]:
                timers[latest] = at
                heapq.heapify(timers)

    def arm_next_due(self: Supervisor) -> None:
        """At start, once we listen: timers for the next jobs due later that were
        enqueued while no supervisor listened (one scan of the pending jobs, once)."""
        try:
            rows = self.db.execute_sql(dialect_for(self.db).sql(_NEXT_DUE),
                                       {"now": sql_timestamp(utcnow())}).fetchall()  # fmt: skip
        except peewee.PeeweeException as exc:
            log.debug("no timers for delayed jobs: %s", exc)
            return
        for (run_at,) in rows:
            self.claim_at(run_at)

    def write_and_claim(self: Supervisor) -> None:
        now = time.monotonic()
        while self.due_times and self.due_times[0] <= now:
            heapq.heappop(self.due_times)
            self.want_claim = True
        self.unwritten_starts(now)  # queued even while the database refuses (no busy loop)
        if now >= self.next_heartbeat and not self.commit.healthy:
            self.beat_alone(now)
        if not self.commit.can_try(now):
            return
        heartbeat = sweep = unknown = None
        if now >= self.next_heartbeat:
            heartbeat = self.heartbeat_rows()
        # After a refused commit, the next one carries only what is ours (outcomes,
        # progress, heartbeats, claims that skip locked rows): a sweep, a cron tick or an
        # unknown-task sweep may wait on a row another transaction holds (a supervisor
        # stopped mid-commit) and must not keep our heartbeats from landing.
        essentials_only = not self.commit.healthy
        if now >= self.next_sweep and not essentials_only:
            sweep = lambda db: self.reaper.sweep(db, self.held_runs())  # noqa: E731
        if now >= self.next_unknown_sweep and not self.stopping and not essentials_only:
            known = set(self.registry.names())
            unknown = lambda db, stamp, tally: self.reaper.fail_unknown_tasks(  # noqa: E731
                db, known, stamp, tally)  # fmt: skip
        poll_due = now >= self.next_poll
        if poll_due and self.change_watch.quiet(now):  # SQLite: nothing new (quiet_poll.py)
            self.next_poll = now + self.config.poll_interval_s
            poll_due = False
        if not (heartbeat or sweep or unknown or poll_due) and self._deferring(now):
            return
        if poll_due:
            self._open_wake_pg()
        requests = self._capacity_requests() if (self.want_claim or poll_due) else []
        if poll_due and not requests:  # no room to claim: this poll looks for no job (nor
            self.change_watch.forget()  # limit), so the next one may not be skipped
        cron = (poll_due or now >= self.next_cron) and not self.stopping and not essentials_only
        if not (self.commit.has_writes() or heartbeat or sweep or unknown or requests or cron):
            if poll_due:
                self.poll_cancellations()
                self.next_poll = now + self.config.poll_interval_s
            return
        result = self.commit.run(requests, heartbeat, sweep, unknown, cron,
                                 look_for_limits=poll_due)  # fmt: skip
        if result is None:
            if poll_due:
                self.change_watch.forget()  # the poll found nothing yet: the next one runs
            return
        if heartbeat is not None:
            self.next_heartbeat = now + self.config.heartbeat_interval_s
        if sweep is not None:
            self.next_sweep = now + max(0.5, min(self.config.lease_s / 3, 10.0))
        if unknown is not None:
            self.next_unknown_sweep = now + max(1.0, self.config.heartbeat_interval_s)
        if cron:
            self.next_cron = self.cron_deadline(now)
        self.after_commit(result, requests)
        if poll_due:
            self.poll_cancellations()
            self.next_poll = now + self.config.poll_interval_s

    def held_runs(self: Supervisor) -> set[tuple[str, int]]:
        """(job id, attempt) of every run this supervisor holds: in a worker's hands, or
        ended with its outcome not yet written."""
        held = {(job.id, job.claimed.attempt) for w in self.workers.values() for job in w.jobs}
        held.update((job.id, job.claimed.attempt) for job in self.ready)
        held.update((o.job_id, o.attempt) for o in self.commit.outcomes)
        return held

    def beat_alone(self: Supervisor, now: float) -> None:
        """Commits are being refused (maybe one row of ours is locked elsewhere): renew our
        leases and rows in a transaction of their own, so that no reaper judges our
        healthy jobs by a heartbeat that only a stuck outcome held back."""
        sup, rows, fences = self.heartbeat_rows()
        # runs that ended with the outcome not written yet are still ours: keep their lease
        # (in a turn's commit their outcomes are written instead)
        lost = self.commit.beat((sup, rows, fences + self.commit.pending_fences()))
        if lost is None:
            return
        self.next_heartbeat = now + self.config.heartbeat_interval_s
        self.stop_lost(lost)

    def stop_lost(self: Supervisor, job_ids: list[str]) -> None:
        for job_id in job_ids:
            if self.ready.remove(job_id) is not None:
                log.warning("job %s: lease lost to another supervisor before it began", job_id,
                            extra=job_fields(job_id))  # fmt: skip
                continue
            for worker in self.workers.values():
                if worker.find(job_id) is not None and worker.kill is None:
                    log.warning("job %s: lease lost to another supervisor; stopping worker %s",
                                job_id, worker.name,
                                extra=job_fields(job_id, worker=worker.name))  # fmt: skip
                    timeouts.start_kill(worker, "lease lost", "lost", 0)

    def after_commit(self: Supervisor, result, requests: list[ClaimRequest]) -> None:
        for due in result.retry_times:
            self.claim_at(due)  # a retry starts when its backoff ends, not a poll later
        for due in result.held:
            self.claim_at(due)  # a rate's next start, a locked rate's retry (flow.py)
        for outcome, status in result.statuses:
            self.log_outcome(outcome, status)
        for outcome, status in result.recovered:
            if status is not None:
                log.warning("job %s attempt %d recovered: %s -> %s", outcome.job_id,
                            outcome.attempt, outcome.error, status,
                            extra=job_fields(outcome.job_id, attempt=outcome.attempt))  # fmt: skip
            if status == "failed":
                self.notify(outcome.job_id, None, None, outcome.attempt, outcome.error,
                            outcome.error_type)  # fmt: skip
            elif status == "retrying" and self.notifier.settings.retries:
                self.notify(outcome.job_id, None, None, outcome.attempt, outcome.error,
                            outcome.error_type, event="retrying")  # fmt: skip
        for schedule, fire, job_id in result.fired:
            log.info("schedule %s fired for %s: job %s", schedule, fire.isoformat(), job_id)
            self.want_claim = True
        for job_id, task in result.unknown_failed:
            if task == "expired":
                log.info("job %s cancelled: expired, not started by its deadline", job_id,
                         extra=job_fields(job_id))  # fmt: skip
                continue
            log.warning("job %s failed: unknown task %s", job_id, task,
                        extra=job_fields(job_id, task))  # fmt: skip
            self.notify(job_id, task, None, 0, f"unknown task {task}", "TaskNotFound")
        self.stop_lost(result.lost_leases)
        self.want_claim = False
        for request, claimed in zip(requests, result.claimed, strict=True):
            self.dispatch(request, claimed)
            if len(claimed) == request.limit:
                self.want_claim = True  # maybe more is waiting

    def dispatch(self: Supervisor, request: ClaimRequest, claimed) -> None:
        """Put claimed jobs in the ready buffer, then hand them to the group's free workers."""
        now = time.monotonic()
        for job in claimed:
            timeout = self.task_settings.timeout_for(job)
            self.ready.add(request.queues, RunningJob(claimed=job, timeout_s=timeout,
                                                      handed_mono=now))  # fmt: skip
        if claimed:
            self.ready.show_due = min(self.ready.show_due, now + NAME_WORKER_AFTER_S)
        self.hand_out()

    def hand_out(self: Supervisor) -> None:
        """Every free worker gets the next ready job of its group; if its group has none,
        the jobs a worker stuck in a long job holds unstarted are taken back for it."""
        if self.stopping:
            return
        deep = self.claim_depth > 1  # busy workers are topped up too (one batch each)
        if self.ready:
            for worker in self.workers.values():
                if deep or not worker.jobs:
                    self.feed(worker)
        if self.take_back_due() is not None and self.take_back(time.monotonic()):
            for worker in self.workers.values():
                if not worker.jobs:
                    self.feed(worker)

    def _stuck_holders(self: Supervisor) -> list[WorkerHandle]:
        """Busy workers holding jobs that could be taken back, while a worker of their
        group is free and the group has no ready job to give it."""
        workers = self.workers.values()
        free = {w.group.queues for w in workers if not w.jobs and w.capacity(0)}
        if not free:  # the usual case under load: one pass over the workers
            return []
        holders = [w for w in workers if len(w.jobs) > 1 and w.kill is None
                   and any(j.seq for j in w.jobs[1:])]  # fmt: skip
        return [w for w in holders
                if w.group.queues in free and not self.ready.count(w.group.queues)
                and w.jobs[0].started_mono is not None]  # fmt: skip

    def take_back_due(self: Supervisor) -> float | None:
        """When jobs held behind a running one should be taken back (None: no such case):
        once that job has run ``TAKE_BACK_AFTER_S``, no longer one of the short ones."""
        holders = self._stuck_holders() if not self.stopping else []
        if not holders:
            return None
        return min(w.jobs[0].started_mono for w in holders) + TAKE_BACK_AFTER_S

    def take_back(self: Supervisor, now: float) -> bool:
        """Take back from each stuck worker the jobs it has not begun (gates.py) into the
        ready buffer, for the free workers. True when some came back."""
        moved = False
        for worker in self._stuck_holders():
            if now - worker.jobs[0].started_mono < TAKE_BACK_AFTER_S:
                continue
            # Every numbered job the worker has not begun comes back, the one the loop
            # believes current too (its predecessor's outcome read, itself not begun yet):
            # the worker skips them all, so none may be left waited for.
            numbered = [j for j in worker.jobs if j.seq]
            if not numbered:
                continue
            started = self.gates.take_back(worker.slot, worker.handed_seq)
            if started is None:
                continue  # the worker holds the lock this instant: next turn
            back = [j for j in numbered if j.seq > started]
            for job in numbered:
                if job.seq <= started:
                    job.seq = 0  # it has begun (its outcome is on its way): never taken back
            for job in back:
                worker.jobs.remove(job)
                job.seq, job.started_mono, job.started_at = 0, None, None
                job.name_written = False
                if job.cancel_sent:  # asked to cancel, never begun: it ends cancelled here
                    self.cancel_deadlines.pop(job.id, None)
                    claimed = job.claimed
                    self.commit.add_outcome(Outcome(claimed.id, claimed.attempt,
                                                    claimed.lease_token, "cancelled",
                                                    error=job.cancel_error,
                                                    error_type="Cancelled"))  # fmt: skip
                else:
                    self.ready.add(worker.group.queues, job)
            if back:
                moved = True
                log.info("took back %d job(s) not begun from %s (pid %d)", len(back),
                         worker.name, worker.pid)  # fmt: skip
        return moved

    def feed(self: Supervisor, worker: WorkerHandle) -> None:
        """Hand ``worker`` ready jobs of its group: an idle worker its next one, at once
        (before this turn's commit), so no job waits for a busy worker while this one is
        free. Only while jobs are far shorter than a commit (a deep prefetch, prefetch.py)
        does a worker hold more than the job it runs: then it is topped up with a batch
        after each claim (one message for many jobs, as before the ready buffer)."""
        if not self.ready or self.stopping:
            return
        depth = self.claim_depth
        room = worker.capacity(depth if depth > 1 else 0)
        if room <= 0:
            return
        group, now, batch = worker.group.queues, time.monotonic(), []
        while room > 0:
            running = self.ready.take(group)
            if running is None:
                break
            room -= 1
            job = running.claimed
            if now - running.handed_mono >= STARTED_LATER_S:  # its claim's time is wrong
                running.started_at = self.stamp_now()
            running.handed_mono = now
            if not worker.jobs:
                running.started_mono = now  # an idle worker begins it at once
                if self.metrics is not None:
                    self.meter_start(running)
                if log.isEnabledFor(logging.INFO):
                    log.info("job %s %s attempt %d started on %s (pid %d)", job.id,
                             job.job_type, job.attempt, worker.name, worker.pid,
                             extra=job_fields(job.id, job.job_type, job.queue_name,
                                              job.attempt, worker.name))  # fmt: skip
                worker.jobs.append(running)
                batch.append(_wire(job))
                continue
            running.started_at = None  # set when it begins (workers.finish)
            worker.jobs.append(running)
            if self.gates.covers(worker.slot):  # numbered: it can be taken back unstarted
                worker.handed_seq += 1
                running.seq = worker.handed_seq
                batch.append(_wire(job, running.seq))
            else:
                batch.append(_wire(job))
        if batch:
            self.send(worker, ("run", batch))

    def unwritten_starts(self: Supervisor, now: float) -> None:
        """What the job rows say of the jobs our workers hold, written only for jobs held
        ``NAME_WORKER_AFTER_S`` (no statement per short job: the worker rows say which job
        each runs meanwhile, and an outcome carries the rest).

        A job running that long gets its worker's name and when it began. A prefetched job
        waiting that long behind its worker's current one gets its worker's name and no
        start time: claimed, not begun — shown as waiting, not as running for as long as
        the job ahead of it. Once it begins, that is written at once. A job in the ready
        buffer that long is shown waiting too, with no worker yet."""
        ready = self.ready
        if ready and now >= ready.show_due:
            due = float("inf")
            for job in ready:
                if job.shown_waiting:
                    continue
                at = job.handed_mono + NAME_WORKER_AFTER_S
                if now >= at:
                    job.shown_waiting = True
                    self.commit.add_started(job.claimed.fence, None, None)
                else:
                    due = min(due, at)
            ready.show_due = due
        for worker in self.workers.values():
            for job in worker.jobs:
                if job.started_mono is None:
                    if not job.shown_waiting and now - job.handed_mono >= NAME_WORKER_AFTER_S:
                        job.shown_waiting = True
                        self.commit.add_started(job.claimed.fence, worker.name, None)
                elif not job.name_written and (
                    job.shown_waiting or now - job.started_mono >= NAME_WORKER_AFTER_S
                ):
                    job.name_written = True
                    began = job.started_at or job.claimed.started_at
                    self.commit.add_started(job.claimed.fence, worker.name, began)
