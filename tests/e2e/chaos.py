"""A chaos soak: real supervisors drain a stream of jobs while random faults hit them, then
the Jepsen checker (supervisor_history.py) judges every job.

The faults are the ones issue 3 names, at random, from a seed: SIGKILL a worker, SIGKILL a
supervisor (a new one starts on the same host), a warm shutdown (SIGTERM) and a
replacement, SIGSTOP a supervisor for up to twice its lease and SIGCONT it (a zombie whose
jobs others may have recovered), SIGTSTP one (quiet: no claims) and SIGCONT it, SIGHUP
one (a reload: checked, stopped warm, started again as the same process), hold
SQLite's write lock for up to 2 s, or cut every PostgreSQL connection or lock a job's row
from an application's transaction for up to 3 s, pause and resume a queue, limit it to
one or two running jobs and lift that, set and lift a rate on it, and cancel or kill jobs
that are pending or running. Some jobs carry a concurrency key (at most 2 running per
key) or a rate key (20 starts a second), and a watch checks that neither is ever passed
(chaos_flow.py). Supervisors recycle their workers after a few jobs at
random, some queue 32 jobs per worker, and some give the second queue a worker of its own. Meanwhile jobs of every shape
keep arriving: instant, napping, failing then succeeding, failing for good, delayed,
prioritised, reporting progress, timing out, on a second queue, unique, chained by
dependencies, grouped in batches with callbacks, and a cron schedule ticks every second.

Since any job may have been hit, the checker allows a crashed attempt an extra execution
but nothing else: every job ends in exactly one terminal state, none is left running, no
attempt executes twice, executions never exceed attempts, a completed job's result comes
from its final attempt (which the log saw finish), and no process is left behind. And the
workflows hold: a dependant starts only after all its dependencies completed (in the
log's order), and is cancelled, never run, when one of them did not; every batch is
finished once all its jobs ended, with the right outcome and exactly its callbacks; each
cron tick made one job, whatever the supervisors racing for it went through. No
supervisor logged an exception of its own loop (faults are the database's or a process's;
such an exception is a bug of ours, however well the loop carries on).

    python tests/e2e/chaos.py [--engine sqlite|postgresql] [--seconds 60] [--seed N]

A short seeded run on both engines is a test (test_supervisor_chaos.py).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from chaos_flow import FlowWatch, flow_options  # noqa: E402
from supervisor_harness import Cluster, SupervisorProcess, wait_until  # noqa: E402

LEASE_S = 1.5  # supervisor_harness.FAST
TICK = "chaos-tick"
SECOND_QUEUE = "chaos-q2"
TENANTS = ("tenant-a", "tenant-a", "tenant-a", "tenant-b", "tenant-c")  # one tenant is busy
MIN_LIVE = 2


def _resume(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        pass


class Chaos:
    """One soak over ``cluster``: ``run`` injects faults for a while, ``settle`` lets the
    survivors finish, then ``cluster.check`` judges."""

    def __init__(self, cluster: Cluster, seed: int, say: Callable[[str], None] = print) -> None:
        self.cluster = cluster
        self.rng = random.Random(seed)
        self.say = say
        self.done: Counter = Counter()
        self.job_ids: list[str] = []
        self.frozen: dict[int, float] = {}  # supervisor pid -> when to SIGCONT it
        self.started = 0
        self.depends: dict[str, list[str]] = {}  # dependant -> its dependencies
        self.cancelled: set[str] = set()  # cancelled by the soak itself
        self.batches: list[str] = []
        self.paused = False
        self.limited = False
        self.flow: FlowWatch | None = None  # rates and key limits (chaos_flow.py)

    # ------------------------------------------------------------------ supervisors

    def live(self) -> list[SupervisorProcess]:
        return [s for s in self.cluster.supervisors if s.alive() and s.expect_exit is not None
                and not getattr(s, "stopping", False)]  # fmt: skip

    def start_one(self) -> None:
        self.started += 1
        # not waited for: a stopped supervisor may hold a lock the new one needs at first
        options = ["--max-jobs-per-worker", self.rng.choice(["0", "0", "3", "20"]),
                   # the adaptive prefetch rarely deepens among these jobs: force it at times
                   "--prefetch", self.rng.choice(["auto", "auto", "32"])]  # fmt: skip
        if self.rng.random() < 0.3:  # a worker of its own for the second queue
            options += ["--queue", f"{SECOND_QUEUE}=1"]
        if self.rng.random() < 0.5:  # waiting jobs gain priority (aging.py)
            options += ["--priority-aging", "0.5s"]
        self.cluster.start(*options, name=f"chaos-{self.started}",
                           workers=self.rng.choice([1, 2, 3]), wait=False)  # fmt: skip

    def keep_enough(self) -> None:
        while len([s for s in self.live() if s.pid not in self.frozen]) < MIN_LIVE:
            self.start_one()

    # ------------------------------------------------------------------ jobs

    def _one(self, **options) -> str:
        import jobtui

        kind = self.rng.random()
        options.setdefault("priority", self.rng.choice([0, 0, 0, 5, -5]))
        options.update(flow_options(self.rng))
        if self.rng.random() < 0.1:
            options["delay"] = self.rng.uniform(0.05, 1.0)
        if self.rng.random() < 0.15:
            options["queue"] = SECOND_QUEUE  # the one that gets paused
        if self.rng.random() < 0.4:  # a tenant's line, served round-robin (fairness.py)
            options["fair_key"] = self.rng.choice(TENANTS)
        if self.rng.random() < 0.02:  # runs past its timeout on every attempt
            options["timeout"] = 0.2
            job = jobtui.enqueue("supervisor_tasks.nap", [0.3], **options)
            self.job_ids.append(job.id)
            return job.id
        if kind < 0.45:
            job = jobtui.enqueue("supervisor_tasks.quick", [len(self.job_ids)], **options)
        elif kind < 0.8:
            job = jobtui.enqueue("supervisor_tasks.nap", [self.rng.uniform(0.01, 0.4)],
                                 **options)  # fmt: skip
        elif kind < 0.95:
            job = jobtui.enqueue("supervisor_tasks.flaky", [self.rng.randint(1, 2)], **options)
        else:
            job = jobtui.enqueue("supervisor_tasks.always_fail", **options)
        self.job_ids.append(job.id)
        return job.id

    def enqueue_some(self) -> None:
        import jobtui

        for _ in range(self.rng.randint(1, 8)):
            shape = self.rng.random()
            if shape < 0.75:
                self._one()
            elif shape < 0.85:  # a chain, sometimes a diamond
                first = self._one()
                second = self._one(depends_on=[first])
                self.depends[second] = [first]
                if self.rng.random() < 0.5:
                    third = self._one(depends_on=[first, second])
                    self.depends[third] = [first, second]
            elif shape < 0.93:
                with jobtui.batch(on_success="supervisor_tasks.add",
                                  on_failure="supervisor_tasks.add",
                                  on_complete="supervisor_tasks.add") as handle:  # fmt: skip
                    for _ in range(self.rng.randint(1, 6)):
                        self._one()
                self.batches.append(handle.id)
            else:  # a unique job: while one with the key lives, enqueue returns it
                job = jobtui.enqueue("supervisor_tasks.nap", [0.05],
                                     unique_key=f"u{self.rng.randint(1, 3)}")  # fmt: skip
                if job.id not in self.job_ids:
                    self.job_ids.append(job.id)
        self.done["enqueued"] = len(self.job_ids)

    # ------------------------------------------------------------------ faults

    def kill_worker(self) -> None:
        sups = [s for s in self.live() if s.pid not in self.frozen]
        for sup in self.rng.sample(sups, len(sups)):
            pids = sorted(sup.worker_pids())
            if pids:
                try:
                    os.kill(self.rng.choice(pids), signal.SIGKILL)
                except ProcessLookupError:
                    continue  # it exited meanwhile (recycled, or its supervisor reloads)
                self.done["worker SIGKILL"] += 1
                return

    def kill_supervisor(self) -> None:
        sups = [s for s in self.live() if s.pid not in self.frozen]
        if sups:
            self.rng.choice(sups).kill()
            self.done["supervisor SIGKILL"] += 1
            self.keep_enough()

    def registered(self, sup: SupervisorProcess) -> bool:
        """Its row is written, so its signal handlers are in (a SIGTERM sent while the
        interpreter is still starting meets the default action, as for any program)."""
        from jobtui.models import Supervisor as SupervisorRow

        row = SupervisorRow.get_or_none(SupervisorRow.name == sup.name)
        return row is not None and row.pid == sup.pid

    def warm_stop(self) -> None:
        sups = [s for s in self.live() if s.pid not in self.frozen and self.registered(s)]
        if sups:
            sup = self.rng.choice(sups)
            sup.stopping = True  # type: ignore[attr-defined] - not chosen again
            sup.signal(signal.SIGTERM)
            self.done["supervisor SIGTERM"] += 1
            self.keep_enough()

    def reload(self) -> None:
        """SIGHUP: the code is checked, then a warm stop and the same process starts again
        (faults may hit it meanwhile: a SIGKILL, a SIGTERM that turns it into a stop)."""
        sups = [s for s in self.live() if s.pid not in self.frozen and self.registered(s)]
        if sups:
            self.rng.choice(sups).signal(signal.SIGHUP)
            self.done["supervisor SIGHUP (reload)"] += 1

    def freeze(self) -> None:
        sups = [s for s in self.live() if s.pid not in self.frozen]
        if len(sups) <= 1:
            return
        sup = self.rng.choice(sups)
        sup.signal(signal.SIGSTOP)  # maybe inside a transaction: others wait for its locks
        hold = self.rng.uniform(0.2, 2 * LEASE_S)
        # SIGCONT from a timer thread: this loop may itself be waiting on those locks
        thaw = threading.Timer(hold, _resume, (sup.pid,))
        thaw.daemon = True
        thaw.start()
        self.frozen[sup.pid] = time.monotonic() + hold
        self.done["supervisor SIGSTOP"] += 1
        self.keep_enough()

    def thaw_due(self, now: float, everyone: bool = False) -> None:
        for pid, at in list(self.frozen.items()):
            if everyone or now >= at:
                if everyone:
                    _resume(pid)
                del self.frozen[pid]

    def quiet(self) -> None:
        """SIGTSTP: no new claims until SIGCONT (from a timer), running jobs go on."""
        sups = [s for s in self.live() if s.pid not in self.frozen and self.registered(s)]
        if not sups:
            return
        sup = self.rng.choice(sups)
        sup.signal(signal.SIGTSTP)
        thaw = threading.Timer(self.rng.uniform(0.2, 2.0), _resume, (sup.pid,))
        thaw.daemon = True
        thaw.start()
        self.done["supervisor SIGTSTP"] += 1

    def pause_queue(self) -> None:
        from jobtui.models.actions import set_queue_paused

        self.paused = not self.paused
        set_queue_paused(SECOND_QUEUE, self.paused)
        self.done["queue paused" if self.paused else "queue resumed"] += 1

    def forget_fair_keys(self) -> None:
        """The fair keys' rows vanish (as a requeue or a retry by hand can leave a key
        without one): the upkeep must find them again, and every keyed job still end."""
        from jobtui.models.store import get_database

        get_database().execute_sql("DELETE FROM fair_keys")
        self.done["fair keys forgotten"] += 1

    def limit_queue(self) -> None:
        """A concurrency limit on the second queue (1 or 2 across every supervisor), or
        none: its jobs must still all end, whatever the other faults do meanwhile."""
        from jobtui.models.limits import set_queue_limit

        self.limited = not self.limited
        set_queue_limit(SECOND_QUEUE, self.rng.choice([1, 2]) if self.limited else None)
        self.done["queue limited" if self.limited else "queue limit lifted"] += 1

    def rate_queue(self) -> None:
        """A rate on the second queue (5 or 50 a second, across every supervisor) or none."""
        if self.flow is not None:
            self.done[self.flow.toggle_queue_rate(SECOND_QUEUE, self.rng)] += 1

    def database_trouble(self) -> None:
        if self.cluster.is_sqlite:
            import sqlite3

            hold = self.rng.uniform(0.1, 2.0)
            blocker = sqlite3.connect(self.cluster.db_url.split("sqlite:///", 1)[1], timeout=10)
            try:
                blocker.execute("BEGIN IMMEDIATE")
                time.sleep(hold)  # the fault itself: every writer waits meanwhile
                blocker.execute("ROLLBACK")
            finally:
                blocker.close()
            self.done["SQLite write lock held"] += 1
            return
        from jobtui.models.store import get_database

        get_database().execute_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        self.done["PostgreSQL connections cut"] += 1

    def lock_a_row(self) -> None:
        """PostgreSQL: an application's transaction holds a recent job's row for a while
        (released by a timer: this loop may wait on that row itself)."""
        if self.cluster.is_sqlite or not self.job_ids:
            return
        import psycopg2

        holder = psycopg2.connect(self.cluster.db_url)
        with holder.cursor() as cur:
            cur.execute("SELECT 1 FROM jobs WHERE id = %s FOR UPDATE",
                        (self.rng.choice(self.job_ids[-20:]),))  # fmt: skip

        def release() -> None:
            try:
                holder.rollback()
            except psycopg2.Error:
                pass  # cut meanwhile by the other fault: the lock went with it
            holder.close()

        timer = threading.Timer(self.rng.uniform(0.3, 2 * LEASE_S), release)
        timer.daemon = True
        timer.start()
        self.done["job row locked"] += 1

    def cancel_some(self) -> None:
        import jobtui
        from jobtui.models.errors import JobtuiError

        for job_id in self.rng.sample(self.job_ids[-40:], min(3, len(self.job_ids))):
            try:
                self.cancelled.add(job_id)  # even if it ended meanwhile: the check allows it
                kill = self.rng.random() < 0.5  # a kill stops it at once, without asking
                jobtui.cancel(job_id, reason="chaos", kill=kill)
                self.done["kill" if kill else "cancel"] += 1
            except JobtuiError:
                pass  # ended already

    # ------------------------------------------------------------------ the soak

    def run(self, seconds: float) -> None:
        import jobtui

        jobtui.schedule(TICK, "* * * * * *", "supervisor_tasks.quick", args=[-1])
        self.flow = FlowWatch()
        self.keep_enough()
        faults = [(self.kill_worker, 5), (self.kill_supervisor, 2), (self.warm_stop, 2),
                  (self.reload, 1), (self.freeze, 2), (self.quiet, 1), (self.database_trouble, 2),
                  (self.pause_queue, 1), (self.limit_queue, 1), (self.lock_a_row, 2),
                  (self.cancel_some, 2), (self.rate_queue, 1),
                  (self.forget_fair_keys, 1)]  # fmt: skip
        actions, weights = zip(*faults, strict=True)
        end = time.monotonic() + seconds
        while (now := time.monotonic()) < end:
            self.thaw_due(now)
            self.enqueue_some()
            if self.rng.random() < 0.35:
                self.rng.choices(actions, weights)[0]()
            self.keep_enough()
            time.sleep(self.rng.uniform(0.02, 0.15))
        self.thaw_due(time.monotonic(), everyone=True)
        jobtui.schedule(TICK, "* * * * * *", "supervisor_tasks.quick", args=[-1], enabled=False)
        if self.paused:
            self.pause_queue()  # resumed: its jobs must end too
        if self.flow is not None and self.flow.rated_queue:
            self.rate_queue()  # lifted: the settle drains its jobs at once

    def settle(self, timeout: float = 90.0) -> None:
        """No more faults: wait for every job to end on the supervisors still running."""
        from jobtui.models import Job

        self.keep_enough()
        terminal = ("completed", "failed", "cancelled")

        def open_jobs() -> int:
            return Job.select().where(Job.status.not_in(terminal)).count()

        wait_until(lambda: open_jobs() == 0, timeout, "every job ended after the chaos",
                   interval=0.2, explain=lambda: self.cluster.logs()[-6000:])  # fmt: skip

    def check_workflows(self) -> None:
        """Dependencies in the log's order, cascaded cancellations, finished batches."""
        from jobtui.models import Batch, Job

        status = dict(Job.select(Job.id, Job.status).tuples())
        final = dict(Job.select(Job.id, Job.attempt).tuples())
        lines = self.cluster.execlog.records()
        first_start: dict[str, int] = {}
        final_end: dict[str, int] = {}
        for index, record in enumerate(lines):
            if record.event == "start":
                first_start.setdefault(record.job_id, index)
            elif record.event == "end" and record.attempt == final.get(record.job_id):
                final_end[record.job_id] = index
        problems = []
        for job_id, deps in self.depends.items():
            ended = [status[d] for d in deps]
            if job_id in first_start:
                for dep in deps:
                    if (
                        status[dep] != "completed"
                        or final_end.get(dep, 1 << 60) > first_start[job_id]
                    ):
                        problems.append(f"{job_id} started before its dependency {dep} "
                                        f"completed ({status[dep]})")  # fmt: skip
            if any(s != "completed" for s in ended) and job_id not in self.cancelled:
                if status[job_id] != "cancelled" or job_id in first_start:
                    problems.append(f"{job_id} is {status[job_id]} though a dependency "
                                    f"ended {ended}")  # fmt: skip
            if all(s == "completed" for s in ended) and job_id not in self.cancelled:
                if status[job_id] == "cancelled":
                    problems.append(f"{job_id} cancelled though its dependencies completed")
        for batch_id in self.batches:
            row = Batch.get_by_id(batch_id)
            members = [
                s for (s,) in Job.select(Job.status).where(Job.batch_id == batch_id).tuples()
            ]
            want = "success" if set(members) <= {"completed"} else "failure"
            if row.finished_at is None or row.outcome != want:
                problems.append(f"batch {batch_id} of {members}: finished {row.finished_at}, "
                                f"outcome {row.outcome}, not {want}")  # fmt: skip
            callbacks = sorted(p["args"][1] for (p,) in Job.select(Job.parameters).where(
                Job.job_type == "supervisor_tasks.add").tuples() if p["args"][0] == batch_id)  # fmt: skip
            if callbacks != sorted(["complete", want]):
                problems.append(f"batch {batch_id} ({want}) enqueued callbacks {callbacks}")
        problems += self._tick_problems()
        assert not problems, "\n".join(problems[:20])
        self.done["dependants checked"] = len(self.depends)
        self.done["batches checked"] = len(self.batches)

    def _tick_problems(self) -> list[str]:
        """One job per fire time of the cron schedule, each one the fire record names."""
        from jobtui.models import Job, ScheduleFire

        fires = list(ScheduleFire.select(ScheduleFire.fire_time, ScheduleFire.job_id)
                     .where(ScheduleFire.schedule == TICK).tuples())  # fmt: skip
        jobs = {
            job_id for (job_id,) in Job.select(Job.id).where(Job.schedule_name == TICK).tuples()
        }
        fired = {job_id for _, job_id in fires if job_id}
        self.done["cron ticks"] = len(fires)
        problems = []
        if len({fire_time for fire_time, _ in fires}) != len(fires):
            problems.append("a cron fire time was recorded twice")
        if jobs != fired:
            problems.append(f"cron jobs {len(jobs)} vs fire records {len(fired)}: "
                            f"{sorted(jobs ^ fired)[:5]}")  # fmt: skip
        if len(fires) < 2:
            problems.append(f"the cron schedule barely fired ({len(fires)} ticks)")
        return problems

    def report(self) -> str:
        from jobtui.models import Job

        statuses = Counter(status for (status,) in Job.select(Job.status).tuples())
        return f"faults {dict(self.done)}; jobs {dict(statuses)}"


def soak(cluster: Cluster, seconds: float, seed: int, say: Callable[[str], None] = print) -> Chaos:
    """Chaos for ``seconds``, settle, check (stops the cluster). Returns what was done."""
    chaos = Chaos(cluster, seed, say)
    try:
        chaos.run(seconds)
    finally:
        chaos.thaw_due(time.monotonic(), everyone=True)
    flow = chaos.flow.finish() if chaos.flow is not None else {"problems": [], "figures": {}}
    chaos.settle()
    chaos.check_workflows()
    assert not flow["problems"], "\n".join(flow["problems"])
    say(f"flow control: {flow['figures']}")
    # a fault is the database's or a process's; an exception in the loop is a bug of ours
    wedged = [s.name for s in cluster.supervisors if "supervisor loop error" in s.log()]
    assert not wedged, f"loop errors in {wedged}:\n{cluster.logs()[-8000:]}"
    say(chaos.report())
    from jobtui.models import Job

    cluster.injected.update({job_id: "chaos" for (job_id,) in Job.select(Job.id).tuples()})
    cluster.check()
    return chaos


# ---------------------------------------------------------------------- command line


PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
PG_SCRATCH = "jobtui_chaos"


def _scratch_postgres(create: bool) -> str:
    """(Re)create, or drop, the soak's own PostgreSQL database."""
    import psycopg2

    admin = psycopg2.connect(PG_ADMIN)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {PG_SCRATCH} WITH (FORCE)")
        if create:
            cur.execute(f"CREATE DATABASE {PG_SCRATCH}")
    admin.close()
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + PG_SCRATCH


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    from jobtui.models import store

    tmp = Path(tempfile.mkdtemp(prefix="jobtui-chaos-"))
    url = (f"sqlite:///{tmp / 'jobs.db'}" if args.engine == "sqlite"
           else _scratch_postgres(create=True))  # fmt: skip
    os.environ["JOBTUI_DATABASE"] = url
    store.use_database(url)
    cluster = Cluster(url, tmp)
    print(f"chaos on {args.engine} for {args.seconds:g} s, seed {seed}, logs in {tmp}")
    try:
        soak(cluster, args.seconds, seed)
    finally:
        cluster.close()
        store.reset()
        if args.engine == "postgresql":
            _scratch_postgres(create=False)
    print("checker: every invariant held")
    return 0


if __name__ == "__main__":
    sys.exit(main())
