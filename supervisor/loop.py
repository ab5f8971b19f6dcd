"""The supervisor's single-threaded loop: wait, react, write once, dispatch.

One turn: ``select`` over the worker pipes, the signal pipe and the wake-up socket (or
PostgreSQL LISTEN); read worker messages; reap dead children; enforce timeouts, hangs,
cancellations and shutdown; then one group commit (outcomes, progress, heartbeats,
recovered orphans, claims) and hand the claimed jobs to workers. No threads, so forking
a replacement worker stays safe (RELIABILITY.md, fact 3).
"""

from __future__ import annotations

import logging
import os
import resource  # noqa: F401 - os.wait4 imports it on first use: before the fork
import selectors
import signal
import time
from contextlib import nullcontext

import peewee

from jobtui.models.outcomes import Outcome
from jobtui.registry import TaskRegistry

from . import linux, procinfo, timeouts
from .alerts import AlertWatch
from .catalog import TaskSettings
from .commit import GroupCommit
from .config import SupervisorConfig, WorkerGroup
from .dispatch import NAME_WORKER_AFTER_S, Dispatch
from .flow_upkeep import FairKeeper, PriorityAger
from .gates import StartGates
from .notify import Notifier, NotifySettings
from .pool import WorkerHandle, describe_exit, spawn_workers
from .prefetch import PrefetchDepth
from .quiet_poll import ChangeWatch
from .ready import ReadyJobs
from .recovery import Reaper
from .reload import Reloading
from .rollup_upkeep import RollupKeeper
from .scaling import Scaler
from .signals import SignalInbox
from .stacks import StackRequests
from .upkeep import PRUNE_INTERVAL_S, Upkeep
from .wakeup import WakeListener
from .workers import WorkerEvents

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from .metrics import SupervisorMetrics

log = logging.getLogger(__name__)

RESPAWN_BACKOFF_MAX_S = 30.0
REAP_SAFETY_INTERVAL_S = 1.0  # waitpid without a SIGCHLD too, in case one was missed
#: Free heap pages go back to the kernel once no job has ended for this long.
IDLE_TRIM_AFTER_S = 1.0
#: Idle turns the loop rehearses before the workers fork (CPython 3.11 specialises a
#: function after 8 calls).
WARM_UP_TURNS = 10


class Supervisor(WorkerEvents, Dispatch, Upkeep, Reloading):
    def __init__(
        self,
        config: SupervisorConfig,
        registry: TaskRegistry,
        db: peewee.Database,
        wake: WakeListener | None = None,
        inbox: SignalInbox | None = None,
        metrics: SupervisorMetrics | None = None,
    ):
        self.config = config
        self.registry = registry
        self.db = db
        self.inbox = inbox or SignalInbox()  # installed by main before registering
        self.selector = selectors.DefaultSelector()
        self.workers: dict[int, WorkerHandle] = {}
        # Retry a refused write well within a lease, so that once the database is back our
        # heartbeat lands before any reaper could judge our jobs (recovery.py, _look).
        self.commit = GroupCommit(db, config.name, registry.names(),
                                  max_backoff_s=config.lease_s / 4)  # fmt: skip
        self.task_settings = TaskSettings(registry, config)
        self.stacks = StackRequests(self.commit, config.name)  # live stacks (stacks.py)
        self.reaper = Reaper(config, self._orphan_policy, self.task_settings.policy)
        self.wake = wake  # bound before our row was written (SQLite), else opened in run()
        self.notifier = Notifier(NotifySettings(
            webhook=config.notify_webhook, email_to=config.notify_email,
            retries=config.notify_retries, hook=config.notify_hook,
            smtp_url=config.smtp_url, smtp_from=config.smtp_from), registry)  # fmt: skip
        self.metrics = metrics  # --metrics-port (metrics.py); None costs nothing
        self.stopping = False
        self.cold = False
        self.quiet = False
        self.stop_deadline = 0.0
        self.want_claim = True
        self.jobs_done = 0
        self.trim_seen_done = 0  # jobs_done + jobs_failed when the loop last looked
        self.trim_due: float | None = None  # when to hand back free memory, if still idle
        self.jobs_failed = 0
        self.job_run_ewma_s = 1.0  # recent run time of a job; learned from outcomes
        self.prefetch = PrefetchDepth(config.prefetch)
        self.claim_depth = 1  # the prefetch depth the last claim was sized with
        self.ready = ReadyJobs()  # claimed, waiting for a free worker (the prefetch)
        self.gates = StartGates()  # jobs handed in a batch, taken back unstarted
        self.stamp_mono, self.stamp_text = -1.0, ""  # stamp_now's last clock read
        self.child_exited = True  # SIGCHLD seen (or a worker's pipe closed): reap this turn
        self.next_reap = 0.0
        self.due_times: list[float] = []  # heap: when jobs announced as due later are due
        self.cancel_deadlines: dict[str, float] = {}
        self.finished_info: dict[tuple[str, int], tuple[str, float | None, str | None]] = {}
        self.respawn: dict[
            int, tuple[WorkerGroup, float, float]
        ] = {}  # slot -> (group, at, backoff)
        self.process = procinfo.Usage(os.getpid())
        now = time.monotonic()
        self.next_heartbeat = now
        self.next_poll = now
        self.next_sweep = now
        self.next_unknown_sweep = now + config.heartbeat_interval_s * 2
        self.next_cron = now
        self.next_prune = now + PRUNE_INTERVAL_S / 10
        self.rollup = RollupKeeper(db, now)
        self.alerts = AlertWatch(db, config.alerts, config.heartbeat_interval_s, config.name,
                                 self.notifier.send)  # fmt: skip
        self.fair_keeper = FairKeeper(db, now)
        self.ager = PriorityAger(db, now, config.priority_aging_s, config.served_queues)
        self.started_mono = now
        self.scaler = Scaler(self)  # live scaling and --autoscale (scaling.py)
        self.change_watch = ChangeWatch(db)  # SQLite: skip a poll with nothing to find

    def _orphan_policy(self, job_type: str) -> str:
        task = self.registry.get(job_type)
        return getattr(task, "orphan_policy", "retry") if task is not None else "retry"

    # ---------------------------------------------------------------- processes

    def _close_in_child(self) -> None:
        if self.metrics is not None:
            self.metrics.close_in_child()
        self.notifier.close_in_child()
        self.inbox.close_in_child()
        if self.wake is not None:
            self.wake.close_in_child()
        try:
            self.selector.close()
        except OSError:
            pass
        for worker in self.workers.values():
            worker.conn.close()

    def spawn(self, slots: list[tuple[int, WorkerGroup]]) -> None:
        """Fork workers for ``slots``; database connections are closed around the fork."""
        if not slots:
            return
        self._close_db_for_fork()
        self._close_wake_pg()
        for slot, _ in slots:
            if self.gates.covers(slot):
                self.gates.reset(slot)
        guard = self.metrics.fork_lock if self.metrics is not None else nullcontext()
        try:
            with guard:  # no fork in the middle of a scrape (metrics.py)
                for worker in spawn_workers(self.config, self.registry, slots,
                                            self._close_in_child, self.gates):  # fmt: skip
                    self.workers[worker.pid] = worker
                    self.selector.register(worker.conn, selectors.EVENT_READ, worker)
        finally:
            self._open_wake_pg()
            self.want_claim = True

    def _close_db_for_fork(self) -> None:
        """Fork with no database connection open: the loop's, and its claims' (PostgreSQL)."""
        self.db.close()
        if self.commit.parallel is not None:
            self.commit.parallel.close()

    def _close_wake_pg(self) -> None:
        if self.wake is not None and self.wake.pg is not None:
            try:
                self.selector.unregister(self.wake.fileno())
            except (KeyError, ValueError):
                pass
            self.wake.close_pg()

    def _open_wake_pg(self) -> None:
        if self.wake is not None and self.wake.sock is None and self.wake.pg is None:
            self.wake.open_pg()
            if self.wake.fileno() is not None:
                self.selector.register(self.wake.fileno(), selectors.EVENT_READ, "wake")

    def _initial_slots(self) -> list[tuple[int, WorkerGroup]]:
        slots, slot = [], 1
        for group in self.config.groups:
            for _ in range(group.size):
                slots.append((slot, group))
                slot += 1
        return slots

    def reap_children(self) -> None:
        """Collect every exited child: workers are finalised, other orphans just reaped."""
        while True:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self.workers.pop(pid, None)
            if worker is None:
                if self.reload_check_reaped(pid, status):
                    continue
                if pid == self.notifier.pid:
                    self.notifier.exited()
                continue  # an orphan the subreaper adopted: nothing to record
            self.worker_exited(worker, status, usage.ru_maxrss * 1024)

    def worker_exited(self, worker: WorkerHandle, status: int, peak_rss: int = 0) -> None:
        """``status`` as waitpid gives it; ``peak_rss``: the worker's largest resident set
        (bytes), on the job's error, so a SIGKILL from the kernel's OOM killer shows why."""
        worker.exited = True
        try:
            self.selector.unregister(worker.conn)
        except (KeyError, ValueError):
            pass
        self.drain_worker(worker)  # an outcome sent just before exiting still counts
        worker.conn.close()
        if worker.control_fd >= 0:
            os.close(worker.control_fd)
            worker.control_fd = -1
        why, crash = describe_exit(status, peak_rss)
        for index, job in enumerate(list(worker.jobs)):
            started = index == 0 and job.started_mono is not None
            self.job_lost_with_worker(worker, job, why, started=started, crash=crash)
        if worker.kill is not None and worker.kill.kind in ("timeout", "cancel", "hang", "lost"):
            timeouts.sweep_orphans(self._keep_pids())
        if worker.kill is not None:
            log.info("worker %s (pid %d) stopped (%s): %s", worker.name, worker.pid,
                     worker.kill.reason, why)  # fmt: skip
        elif not worker.stop_sent:
            log.warning("worker %s (pid %d) %s", worker.name, worker.pid, why)
        if not self.stopping and not worker.scaled_down:
            lived = time.monotonic() - worker.started_mono
            backoff = (
                0.0
                if (lived > 5 or worker.retiring or worker.kill)
                else min(
                    RESPAWN_BACKOFF_MAX_S,
                    max(0.5, self.respawn.get(worker.slot, (None, 0, 0.25))[2] * 2),
                )
            )
            self.respawn[worker.slot] = (worker.group, time.monotonic() + backoff, backoff)

    def respawn_due(self) -> None:
        now = time.monotonic()
        due = [(slot, plan[0]) for slot, plan in self.respawn.items() if plan[1] <= now]
        for slot, _ in due:
            del self.respawn[slot]
        self.spawn(due)

    # ---------------------------------------------------------------- the loop

    def _keep_pids(self) -> list[int]:
        keep = [*self.workers, *([self.notifier.pid] if self.notifier.pid else [])]
        return keep + ([self.import_check.pid] if self.import_check is not None else [])

    def _start_notifier(self) -> None:
        self._close_db_for_fork()
        with self.metrics.fork_lock if self.metrics is not None else nullcontext():
            self.notifier.start(self._close_in_child)

    def run(self) -> int:
        self.inbox.install()
        self._start_notifier()
        self.selector.register(self.inbox.read_fd, selectors.EVENT_READ, "signal")
        self.warm_up()
        self.spawn(self._initial_slots())
        if self.wake is None:
            self.wake = WakeListener(self.db, self.config.name)
        if self.wake.fileno() is not None:
            self.selector.register(self.wake.fileno(), selectors.EVENT_READ, "wake")
        self.arm_next_due()
        log.info("supervisor %s running %d worker(s), %d task(s), queues %s",
                 self.config.name, len(self.workers), len(self.registry),
                 " ".join(f"{g.label}={g.size}" for g in self.config.groups))  # fmt: skip
        failures = 0
        try:
            while not self._finished():
                try:
                    self.turn()
                    failures = 0
                except Exception:  # noqa: BLE001 - the daemon must outlive its own bugs
                    failures += 1
                    log.exception("supervisor loop error (%d in a row); carrying on", failures)
                    time.sleep(min(1.0, 0.01 * failures))
        finally:
            self.shutdown_finally()
        return 0

    def warm_up(self) -> None:
        """Run the idle side of a turn (heartbeat, safety poll, sweeps, cron) a few times
        before the workers fork: what the first turns do anyway. CPython 3.11 rewrites a
        function's bytecode in place as it warms up; done after the fork, every such write
        copies a page the workers share too (measured 0.3 MB in all with two workers)."""
        for _ in range(WARM_UP_TURNS):
            now = time.monotonic()
            self.next_heartbeat = self.next_poll = self.next_sweep = self.next_cron = now
            self.want_claim = True
            try:
                self.write_and_claim()
            except Exception as exc:  # noqa: BLE001 - the real turns will meet it again
                log.debug("warm-up stopped: %s", exc)
                return
            if not self.commit.healthy:  # a lock held elsewhere: no start waits on a warm-up
                return

    def _finished(self) -> bool:
        return self.stopping and not self.workers and not self.commit.has_writes()

    def _timeout(self) -> float:
        now = time.monotonic()
        deadlines = [self.next_heartbeat, self.next_poll, self.next_sweep, self.next_cron]
        if self.trim_due is not None:
            deadlines.append(self.trim_due)
        if self.due_times:
            deadlines.append(self.due_times[0])
        if self.ready:
            deadlines.append(self.ready.show_due)
        take_back_at = self.take_back_due()
        if take_back_at is not None:
            deadlines.append(take_back_at)
        if self.commit.has_writes() or (self.want_claim and self._capacity_requests()):
            if not self.commit.healthy:
                deadlines.append(self.commit.retry_at)
            elif self._deferring(now):
                deadlines.append(self.defer_deadline())
            else:
                deadlines.append(now)
        for worker in self.workers.values():
            if worker.kill is not None and not worker.kill.kill_sent:
                deadlines.append(worker.kill.kill_after_mono)
            for job in worker.jobs:
                if job.started_mono is None:
                    if not job.shown_waiting:
                        deadlines.append(job.handed_mono + NAME_WORKER_AFTER_S)
                    continue
                if job.timeout_s:
                    deadlines.append(job.started_mono + job.timeout_s)
                if not job.name_written:
                    wait = 0.0 if job.shown_waiting else NAME_WORKER_AFTER_S
                    deadlines.append(job.started_mono + wait)
        deadlines += list(self.cancel_deadlines.values())
        deadlines += [plan[1] for plan in self.respawn.values()]
        if self.import_check is not None:
            deadlines.append(self.import_check.deadline_mono)
        stack_deadline = self.stacks.deadline()
        if stack_deadline is not None:
            deadlines.append(stack_deadline)
        if self.stopping:
            deadlines.append(self.stop_deadline)
        else:
            deadlines.append(self.scaler.due())
        return max(0.0, min(deadlines) - now)

    def _trim_when_idle(self, now: float) -> None:
        """Hand back the C heap's free pages once a busy spell is over (no job ended for
        IDLE_TRIM_AFTER_S). A drain leaves SQLite's and the loop's freed buffers resident,
        and a page once copied from the memory the workers share stays copied: measured
        0.45 MB of the daemon's 24 MB with two idle workers. A busy loop never trims."""
        done = self.jobs_done + self.jobs_failed
        if done != self.trim_seen_done:
            self.trim_seen_done, self.trim_due = done, now + IDLE_TRIM_AFTER_S
        elif self.trim_due is not None and now >= self.trim_due:
            if any(w.jobs for w in self.workers.values()):
                self.trim_due = now + IDLE_TRIM_AFTER_S
            else:
                self.trim_due = None
                linux.trim_free_memory()

    def turn(self) -> None:
        self._trim_when_idle(time.monotonic())
        for key, events in self.selector.select(self._timeout()):
            if key.data == "signal":
                self.inbox.drain_pipe()
            elif key.data == "wake":
                if self.wake is not None and not self.wake.drain():
                    self._close_wake_pg()  # lost: reopened on the next safety poll
                self.want_claim = True
                if self.wake is not None:
                    if self.wake.scale_wanted:
                        self.wake.scale_wanted = False
                        self.scaler.wanted = True
                    for due in self.wake.take_due():
                        self.claim_at(due)
                    if self.wake.stack_wanted:
                        self.wake.stack_wanted, self.stacks.wanted = False, True
            else:
                if events & selectors.EVENT_WRITE:
                    self.flush_worker(key.data)
                if events & selectors.EVENT_READ:
                    self.drain_worker(key.data)
        for signum in self.inbox.take():
            self.on_signal(signum)
        now = woke = time.monotonic()  # the turn's work is timed from here (not its wait)
        if self.child_exited or now >= self.next_reap:
            self.child_exited = False  # (cleared first: a SIGCHLD from now on sets it again)
            self.next_reap = now + REAP_SAFETY_INTERVAL_S
            self.reap_children()
        self.enforce_limits()
        if self.stacks.wanted:
            self.stacks.poll(self.db, self.workers.values())
        if self.stacks.asked:
            self.stacks.tick(now, self.workers)
        if self.import_check is not None:
            self.reload_check_tick(now)
        if self.stopping:
            self.advance_shutdown()
        else:
            if self.respawn:
                self.respawn_due()
            self.scaler.tick(now)
        self.hand_out()  # a worker freed or forked this turn takes a ready job
        if not self.stopping and self.notifier.wanted and self.notifier.pid is None:
            self._start_notifier()
        self.write_and_claim()
        self.prune()
        self.task_settings.rehome_tick(self.db, now)
        if not self.stopping:
            self.rollup.tick(time.monotonic())
            self.alerts.tick(time.monotonic())
            self.fair_keeper.tick(now)
            self.ager.tick(now)
        if self.metrics is not None:
            now = time.monotonic()
            self.metrics.turn_took(now - woke, now, self)

    def on_signal(self, signum: int) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            if self.reload_requested:  # a stop wins over a reload; its warm stop goes on
                self.reload_requested = False
                log.info("%s: stopping instead of reloading (again to stop now)",
                         signal.Signals(signum).name)  # fmt: skip
            elif not self.stopping:
                log.info("%s: warm shutdown (running jobs get %g s; again to stop now)",
                         signal.Signals(signum).name, self.config.shutdown_grace_s)  # fmt: skip
                self.begin_shutdown()
            elif not self.cold:
                log.info("%s again: cold shutdown", signal.Signals(signum).name)
                self.cold = True
                for worker in self.workers.values():
                    timeouts.start_kill(worker, "supervisor stopped (cold shutdown)", "shutdown", 0)
        elif signum == signal.SIGCHLD:
            self.child_exited = True
        elif signum == signal.SIGTSTP:
            if not self.quiet:
                log.info("SIGTSTP: quiet (no new jobs; running jobs finish)")
            self.quiet = True
        elif signum == signal.SIGCONT:
            if self.quiet:
                log.info("SIGCONT: claiming again")
            self.quiet = False
            self.want_claim = True
        elif signum == signal.SIGHUP:
            self.request_reload()

    def begin_shutdown(self) -> None:
        self.stopping = True
        self.abandon_reload_check()  # a reload asked for first no longer matters
        self.stop_deadline = time.monotonic() + self.config.shutdown_grace_s
        self.respawn.clear()
        for held in self.ready.take_all():  # never begun: back in line, in their places
            self.commit.add_outcome(Outcome(held.id, held.claimed.attempt,
                                            held.claimed.lease_token, "interrupted",
                                            error="supervisor shutdown: not started"))  # fmt: skip
        for worker in self.workers.values():
            self.send(worker, ("stop",))
            worker.stop_sent = True

    def advance_shutdown(self) -> None:
        if time.monotonic() >= self.stop_deadline:
            for worker in self.workers.values():
                if worker.kill is None:
                    timeouts.start_kill(worker, "supervisor shutdown: grace period over",
                                        "shutdown", self.config.kill_grace_s)  # fmt: skip

    def enforce_limits(self) -> None:
        """Timeouts, hung workers, cancellation graces, SIGKILL escalation."""
        now = time.monotonic()
        for worker in list(self.workers.values()):
            if worker.kill is not None:
                timeouts.escalate(worker)
                continue
            if now - worker.last_message_mono > self.config.hang_timeout_s:
                silent = now - worker.last_message_mono
                timeouts.start_kill(worker, f"worker stopped answering for {silent:.0f} s",
                                    "hang", 0)  # fmt: skip
                continue
            job = worker.current
            if job is None or job.started_mono is None:
                continue
            if job.timeout_s and now - job.started_mono >= job.timeout_s:
                timeouts.start_kill(worker, f"timed out after {job.timeout_s:g} s",
                                    "timeout", self.config.kill_grace_s)  # fmt: skip
            elif job.id in self.cancel_deadlines and now >= self.cancel_deadlines[job.id]:
                timeouts.start_kill(worker, job.cancel_error, "cancel",
                                    self.config.kill_grace_s)  # fmt: skip

    def shutdown_finally(self) -> None:
        self.abandon_reload_check()
        for worker in list(self.workers.values()):
            timeouts.kill_group_now(worker.pid)
        deadline = time.monotonic() + 5
        while self.workers and time.monotonic() < deadline:
            self.reap_children()
            time.sleep(0.01)
        self.notifier.stop()
        timeouts.sweep_orphans(())
        for _ in range(50):
            if not self.commit.has_writes():
                break
            if self.commit.run() is None:
                time.sleep(
                    self.commit.retry_at - time.monotonic()
                    if self.commit.retry_at > time.monotonic()
                    else 0.05
                )
        try:
            from jobtui.models.dialect import dialect_for
            from jobtui.models.heartbeats import remove_supervisor

            with dialect_for(self.db).write_transaction(self.db):
                remove_supervisor(self.db, self.config.name)
        except peewee.PeeweeException as exc:
            log.warning("could not remove the supervisor row: %s", exc)
        if self.wake is not None:
            self.wake.close()
        self.inbox.uninstall()
        log.info("supervisor %s stopped", self.config.name)
