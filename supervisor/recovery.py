"""Finding work whose owner is gone, and jobs no supervisor can run.

Orphans (RELIABILITY.md, "Liveness"): running jobs owned by a supervisor on this host whose
(pid, start time) no longer runs are recovered at once — also right after a restart. Any
other running job not ours is recovered once its heartbeat has not moved for a lease:
by the database's clock on PostgreSQL, and everywhere by our own monotonic clock (a
heartbeat value that stays the same for ``lease`` seconds of our time), so a wall-clock
jump never expires a healthy lease.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Collection

import peewee

from jobtui.models.base import as_datetime
from jobtui.models.dialect import dialect_for
from jobtui.models.heartbeats import remove_supervisor, stale_running_jobs
from jobtui.models.outcomes import Outcome
from jobtui.models.ready_reads import distinct_names_sql
from jobtui.models.rollup import Tally, tally_ended
from jobtui.models.staging import NOT_STAGED
from jobtui.models.workflow import expire_jobs

from . import procinfo
from .config import SupervisorConfig

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from typing import Any

log = logging.getLogger(__name__)

_RUNNING = """SELECT id, attempt, heartbeat_at, supervisor_name, job_type FROM jobs
WHERE status = 'running'"""

_SUPERVISORS_HERE = """SELECT name, pid, process_started_at FROM supervisors
WHERE host = :host AND name <> :me"""

# The distinct task names by a loose index scan on (job_type, id): one probe per name, not
# one per row. Then, for names nobody registered, whether a due job of that name exists.
# Staged jobs are not in the task index (models/staging.py): the sweep runs in the turn
# whose claim promotes them, so it sees them a turn later, after their promotion.
_TASK_NAMES = distinct_names_sql((NOT_STAGED,), "job_type")
_HAS_DUE = f"""SELECT 1 FROM jobs WHERE job_type = :task AND {NOT_STAGED}
    AND status IN ('pending', 'retrying')
    AND run_at <= :now AND (next_retry_at IS NULL OR next_retry_at <= :now) LIMIT 1"""

_LIVE_TASKS = "SELECT name, tasks, heartbeat_at FROM supervisors WHERE name <> :me"

_FAIL_UNKNOWN = f"""UPDATE jobs SET status = 'failed', error_message = :error,
    error_type = 'TaskNotFound', error_permanent = :yes, failed_at = :now, updated_at = :now
WHERE job_type = :task AND {NOT_STAGED} AND status IN ('pending', 'retrying') AND run_at <= :now
    AND (next_retry_at IS NULL OR next_retry_at <= :now)
RETURNING id, queue_name"""


class Reaper:
    """Remembers what it saw of other owners' heartbeats between sweeps."""

    def __init__(
        self,
        config: SupervisorConfig,
        orphan_policy: Callable[[str], str],
        task_policy: Callable[[str], Any] | None = None,
    ) -> None:
        self.config = config
        self.orphan_policy = orphan_policy  # task name -> "retry" | "fail"
        #: task name -> its RetryPolicy as this supervisor resolves it (catalog.py), for
        #: the options a recovered job's enqueuer left unset
        self.task_policy = task_policy
        self._seen: dict[tuple[str, int], tuple[Any, float]] = {}
        self._supervisor_beats: dict[str, tuple[Any, float]] = {}
        self._last_look: float | None = None
        self._steady_since = float("-inf")  # watching the database without a gap since

    def _look(self, now_mono: float) -> bool:
        """Note that we can read the database now; True once we have watched it without a
        gap for a lease. After a gap (the database refused everyone's writes, or we were
        stopped) no owner could renew its lease either: each gets a full lease again
        before it is judged (RELIABILITY.md, "Database trouble")."""
        if self._last_look is not None and now_mono - self._last_look > max(
            1.0, self.config.lease_s / 2
        ):
            self._steady_since = now_mono
        self._last_look = now_mono
        return now_mono - self._steady_since >= self.config.lease_s

    def _outcome(
        self, job_id: str, attempt: int, job_type: str, reason: str, owner: str | None
    ) -> Outcome:
        """The attempt row names the supervisor that ran the attempt, not the reaper."""
        return Outcome(
            job_id=job_id, attempt=attempt, lease_token=None, kind="failed", error=reason,
            error_type="WorkerLost", attempt_outcome="crashed",
            permanent=self.orphan_policy(job_type) == "fail",
            worker={"supervisor_name": owner},
            task_policy=self.task_policy(job_type) if self.task_policy else None,
        )  # fmt: skip

    def sweep(
        self, db: peewee.Database, held: Collection[tuple[str, int]] = frozenset()
    ) -> list[Outcome]:
        """Outcomes for every orphaned run found now (the caller writes them, fenced).

        ``held``: the runs this supervisor holds (in a worker's hands, or ended with the
        outcome not yet written). A run the database says is ours but that we do not
        hold — a claim whose COMMIT went through while its acknowledgement was lost with
        the connection, so it was never handed to a worker — is an orphan of ours: its
        lease is never renewed, and once it has stood still for a lease it is recovered
        like anyone else's (no other supervisor takes a live owner's jobs)."""
        dialect = dialect_for(db)
        me, now_mono = self.config.name, time.monotonic()
        watching = self._look(now_mono)
        outcomes: dict[tuple[str, int], Outcome] = {}
        dead: dict[str, str] = {}
        for name, pid, started in db.execute_sql(
            dialect.sql(_SUPERVISORS_HERE), {"host": self.config.host, "me": me}
        ).fetchall():
            if not procinfo.is_running(int(pid), started):
                dead[name] = f"supervisor {name} died (pid {pid})"
        # A live owner renews its own leases and stops its own hung workers: a job lease it
        # could not renew (its row locked by another transaction) is not an orphan.
        live = self._live_supervisors(db, watching)
        stale = stale_running_jobs(db, self.config.lease_s, me) if watching else []
        for job_id, attempt, owner, job_type in stale:
            if owner in live and owner not in dead:
                continue
            reason = f"lease expired: no heartbeat from {owner or 'its owner'} for {self.config.lease_s:g} s"
            outcomes[(job_id, attempt)] = self._outcome(job_id, attempt, job_type, reason, owner)
        running = db.execute_sql(_RUNNING).fetchall()
        live_keys = set()
        for job_id, attempt, heartbeat_at, owner, job_type in running:
            key = (job_id, int(attempt))
            if owner == me and key in held:
                continue
            live_keys.add(key)
            if owner in dead:
                outcomes[key] = self._outcome(job_id, key[1], job_type, dead[owner], owner)
                continue
            seen = self._seen.get(key)
            if seen is None or seen[0] != heartbeat_at:
                self._seen[key] = (heartbeat_at, now_mono)
            elif (watching and now_mono - seen[1] >= self.config.lease_s and key not in outcomes
                  and owner not in live):  # fmt: skip
                reason = (f"lease expired: no heartbeat from {owner or 'its owner'} "
                          f"for {self.config.lease_s:g} s")  # fmt: skip
                if owner == me:
                    reason = f"claimed by {me} but never handed to a worker (lost claim)"
                outcomes[key] = self._outcome(job_id, key[1], job_type, reason, owner)
        for key in list(self._seen):
            if key not in live_keys:
                del self._seen[key]
        for name in dead:
            log.warning("supervisor %s is gone: recovering its jobs", name)
            remove_supervisor(db, name)
        free = dialect.unlocked_jobs(db, [job_id for job_id, _ in outcomes])
        return [outcome for (job_id, _), outcome in outcomes.items() if job_id in free]

    def _live_supervisors(self, db: peewee.Database, watching: bool) -> dict[str, str | None]:
        """Other supervisors alive now, with their tasks (JSON): liveness is a heartbeat
        that moved within a lease of our monotonic time, or one seen for less than a lease."""
        now_mono = time.monotonic()
        rows = db.execute_sql(dialect_for(db).sql(_LIVE_TASKS),
                              {"me": self.config.name}).fetchall()  # fmt: skip
        live: dict[str, str | None] = {}
        for name, tasks_json, heartbeat_at in rows:
            seen = self._supervisor_beats.get(name)
            if seen is None or seen[0] != heartbeat_at:
                self._supervisor_beats[name] = (heartbeat_at, now_mono)
            elif watching and now_mono - seen[1] >= self.config.lease_s:
                continue  # silent for a lease: not live
            live[name] = tasks_json
        present = {row[0] for row in rows}
        for name in list(self._supervisor_beats):
            if name not in present:
                del self._supervisor_beats[name]
        return live

    def live_supervisor_tasks(self, db: peewee.Database) -> set[str] | None:
        """Task names other live supervisors can run."""
        watching = self._look(time.monotonic())
        tasks: set[str] = set()
        for tasks_json in self._live_supervisors(db, watching).values():
            try:
                tasks.update(json.loads(tasks_json or "[]"))
            except ValueError:
                continue
        return tasks

    def fail_unknown_tasks(
        self, db: peewee.Database, known: set[str], now_stamp: str, tally: Tally | None = None
    ) -> list[tuple[str, str]]:
        """Fail due jobs whose task neither we nor any live supervisor registered:
        (job id, task) of each; also expire jobs past their deadline ((id, "expired")).
        The caller holds a write transaction; the ends are counted in its ``tally``."""
        dialect = dialect_for(db)
        expired = [(job_id, "expired") for job_id in expire_jobs(db, now_stamp, tally)]
        names = [row[0] for row in db.execute_sql(_TASK_NAMES)]
        has_due = dialect.sql(_HAS_DUE)
        unknown = [t for t in names if t not in known
                   and db.execute_sql(has_due, {"task": t, "now": now_stamp}).fetchone()]  # fmt: skip
        if not unknown:
            return expired
        others = self.live_supervisor_tasks(db) or set()
        failed: list[tuple[str, str]] = []
        from jobtui.models.workflow import jobs_ended

        for task in unknown:
            if task in others:
                continue
            rows = db.execute_sql(dialect.sql(_FAIL_UNKNOWN), {
                "task": task, "error": f"unknown task {task}", "yes": True, "now": now_stamp,
            }).fetchall()  # fmt: skip
            ids = [row[0] for row in rows]
            tally_ended(db, [(row[1], task) for row in rows], as_datetime(now_stamp), "failed",
                        tally)  # fmt: skip
            jobs_ended(db, ids, "failed", tally)
            failed += [(job_id, task) for job_id in ids]
        return expired + failed
