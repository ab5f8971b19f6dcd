"""The group commit: everything a loop turn has to write, in one transaction.

Outcomes, coalesced progress, heartbeats, recovered orphans and the next claims share one
``BEGIN IMMEDIATE`` (SQLite) or one transaction (PostgreSQL): per-job transactions are
what caps every SQLite queue (DESIGN.md). Statements are prepared text; nothing is
compiled while the lock is held. When the database refuses (locked, gone, disk full),
nothing was written, the turn's writes stay queued, and the loop tries again after a
backoff — a claim that rolled back is simply never dispatched.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import peewee

from jobtui.models.claims import ClaimedJob, claim_in_transaction
from jobtui.models.clock import sql_timestamp, utcnow
from jobtui.models.dialect import dialect_for
from jobtui.models.fairness import any_fair
from jobtui.models.flow import any_flow
from jobtui.models.heartbeats import write_heartbeat
from jobtui.models.joblog import INSERT_CHUNK
from jobtui.models.limits import any_limits
from jobtui.models.outcomes import Outcome, apply_outcome, apply_outcomes, statements_for
from jobtui.models.rollup import Tally
from jobtui.models.scheduling import fire_due_schedules
from jobtui.models.stacks import ANSWER as STACK_ANSWER
from jobtui.models.workflow import finish_batches

from .parallel_claim import ParallelClaim

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from typing import Any

log = logging.getLogger(__name__)

_STARTED = """UPDATE jobs SET worker_name = :worker, started_at = :began, updated_at = :now
WHERE id = :id AND attempt = :attempt AND lease_token = :token AND status = 'running'"""

_PROGRESS = """UPDATE jobs SET progress_percentage = :pct, progress_message = :msg,
    progress_details = :details, updated_at = :now
WHERE id = :id AND attempt = :attempt AND lease_token = :token AND status = 'running'"""

BACKOFF_FIRST_S = 0.05
BACKOFF_MAX_S = 5.0


@dataclass
class ClaimRequest:
    queues: Sequence[str] | None
    limit: int


@dataclass
class TurnResult:
    statuses: list[tuple[Outcome, str | None]] = field(default_factory=list)
    claimed: list[list[ClaimedJob]] = field(default_factory=list)
    lost_leases: list[str] = field(default_factory=list)
    recovered: list[tuple[Outcome, str | None]] = field(default_factory=list)
    unknown_failed: list[tuple[str, str]] = field(default_factory=list)
    fired: list[tuple[str, Any, str]] = field(default_factory=list)  # cron ticks enqueued
    retry_times: list[str] = field(default_factory=list)  # when the retries written are due
    held: list[Any] = field(default_factory=list)  # when jobs a rate or key held back are due


class GroupCommit:
    def __init__(
        self,
        db: peewee.Database,
        supervisor_name: str,
        tasks: Sequence[str],
        max_backoff_s: float = BACKOFF_MAX_S,
    ) -> None:
        self.db = db
        self.max_backoff_s = min(BACKOFF_MAX_S, max_backoff_s)
        self.supervisor_name = supervisor_name
        self.tasks = list(tasks)
        self.outcomes: list[Outcome] = []
        self.progress: dict[tuple[str, int], tuple[str, float, str | None, str | None]] = {}
        #: fence -> (token, worker, when it began: None while it waits for the worker)
        self.started: dict[tuple[str, int], tuple[str, str, Any]] = {}
        #: Chunks of job logs (joblog.py) and answers to stack requests (stacks.py) for
        #: the next turn: rows of their own, written before the turn's outcomes.
        self.logs: list[dict[str, Any]] = []
        self.stack_answers: dict[int, str] = {}
        #: Whether some queue has a concurrency limit: looked up at the first claim and once
        #: per poll (a limit set meanwhile holds back its queue at once: the claim leaves
        #: limited queues out; they are claimed within a poll interval).
        self.limits: bool | None = None
        #: Likewise whether some rate or key limit exists (flow.py): a rate set meanwhile
        #: holds from the next poll on.
        self.flow: bool | None = None
        self.fair: bool | None = None  # some fair-keyed job may be claimable (fairness.py)
        self.failures = 0
        self.retry_at = 0.0
        #: PostgreSQL: the plain claim on a second connection, beside the turn's writes
        self.parallel = (ParallelClaim(db, supervisor_name)
                         if dialect_for(db).name == "postgresql" else None)  # fmt: skip
        #: Jobs a parallel claim took in a turn whose writes then failed, by the queues
        #: claimed for: handed out with the next parallel claim for the same queues.
        self.stray_claims: dict[tuple[str, ...] | None, list[ClaimedJob]] = {}
        self.first_outcome_mono: float | None = None  # when the oldest unwritten one came
        self.progress_sql = dialect_for(db).sql(_PROGRESS)
        self.log_sql = dialect_for(db).sql(INSERT_CHUNK)
        self.stack_sql = dialect_for(db).sql(STACK_ANSWER)
        self.started_sql = dialect_for(db).sql(_STARTED)
        statements_for(dialect_for(db))  # build the statements now, not under the lock

    @property
    def healthy(self) -> bool:
        return self.failures == 0

    def can_try(self, now_mono: float) -> bool:
        return now_mono >= self.retry_at

    def add_outcome(self, outcome: Outcome) -> None:
        if not self.outcomes:
            self.first_outcome_mono = time.monotonic()
        self.outcomes.append(outcome)

    def add_progress(
        self, fence: tuple[str, int, str], pct: float, msg: str | None, details: str | None
    ) -> None:
        """Write this attempt's latest progress (details as JSON text) in the next turn,
        before the turn's outcomes, so a run's last report lands before it ends."""
        self.progress[(fence[0], fence[1])] = (fence[2], pct, msg, details)

    def add_started(self, fence: tuple[str, int, str], worker_name: str, began: Any) -> None:
        """Name the run's worker on its row, with when it began (None: not begun yet)."""
        self.started[(fence[0], fence[1])] = (fence[2], worker_name, began)

    def add_log(self, row: dict[str, Any]) -> None:
        """A chunk of a run's output (``joblog.INSERT_CHUNK``'s parameters)."""
        self.logs.append(row)

    def add_stack_answer(self, request_id: int, answer: str) -> None:
        self.stack_answers[request_id] = answer

    def has_writes(self) -> bool:
        return bool(self.outcomes or self.progress or self.started or self.logs
                    or self.stack_answers)  # fmt: skip

    def run(
        self,
        claims: Sequence[ClaimRequest] = (),
        heartbeat: tuple[dict[str, Any], list[dict[str, Any]], list[tuple[str, int, str]]]
        | None = None,
        sweep: Callable[[peewee.Database], list[Outcome]] | None = None,
        unknown_sweep: Callable[[peewee.Database, str, Tally], list[tuple[str, str]]] | None = None,
        cron: bool = False,
        look_for_limits: bool = False,
    ) -> TurnResult | None:
        """One transaction for the turn; None when the database refused (retried later).

        On PostgreSQL a plain claim (nothing anywhere that limits or orders claims
        otherwise) runs on a second connection while the transaction runs (parallel_claim.py)."""
        in_flight, stray_key = False, None
        if (self.parallel is not None and len(claims) == 1 and not look_for_limits
                and self.limits is False and self.flow is False and self.fair is False):  # fmt: skip
            in_flight = self.parallel.send(claims[0].limit, claims[0].queues, self.tasks)
            if in_flight:
                queues = claims[0].queues
                stray_key = None if queues is None else tuple(queues)
                claims = ()
        outcomes, progress, started = list(self.outcomes), dict(self.progress), dict(self.started)
        logs, answers = self.logs, self.stack_answers
        result = TurnResult()
        db = self.db
        now = utcnow()
        stamp = sql_timestamp(now)
        try:
            with dialect_for(db).write_transaction(db):
                for (job_id, attempt), (token, worker, began) in started.items():
                    db.execute_sql(self.started_sql, {"id": job_id, "attempt": attempt,
                                   "token": token, "worker": worker, "began": began,
                                   "now": stamp})  # fmt: skip
                for (job_id, attempt), (token, pct, msg, details) in progress.items():
                    db.execute_sql(self.progress_sql, {"id": job_id, "attempt": attempt,
                                   "token": token, "pct": pct, "msg": msg, "details": details,
                                   "now": stamp})  # fmt: skip
                if logs:  # one call for the turn's chunks (each fenced by its job's row)
                    for row in logs:
                        row["at"] = stamp
                    db.cursor().executemany(self.log_sql, logs)
                for request_id, answer in answers.items():
                    db.execute_sql(self.stack_sql, {"id": request_id, "answer": answer,
                                                    "now": stamp})  # fmt: skip
                batches: set[str] = set()  # finished in one (sorted) lock order
                tally = Tally(now)  # the turn's ends, one rollup statement (rollup.py)
                statuses = apply_outcomes(db, outcomes, now=now, batches_to_finish=batches,
                                          retry_times=result.retry_times, tally=tally)  # fmt: skip
                result.statuses = list(zip(outcomes, statuses, strict=True))
                if heartbeat is not None:
                    result.lost_leases = write_heartbeat(db, *heartbeat)
                if sweep is not None:
                    for outcome in sweep(db):
                        result.recovered.append((outcome, apply_outcome(
                            db, outcome, now=now, batches_to_finish=batches,
                            retry_times=result.retry_times, tally=tally)))  # fmt: skip
                finish_batches(db, batches)
                if unknown_sweep is not None:
                    result.unknown_failed = unknown_sweep(db, stamp, tally)
                # every end of the turn in one rollup statement, rows in key order: on
                # PostgreSQL two supervisors then lock them in one order (no deadlock)
                tally.write(db)
                if cron:
                    result.fired = fire_due_schedules(db, now)
                if claims and (look_for_limits or self.limits is None):
                    self.limits = any_limits(db)
                    self.flow = any_flow(db)
                    self.fair = any_fair(db)
                for request in claims:
                    got = claim_in_transaction(
                        db, request.limit, queues=request.queues, tasks=self.tasks,
                        supervisor_name=self.supervisor_name, now=now, limits=self.limits,
                        flow=self.flow, held=result.held, fair=self.fair,
                    )  # fmt: skip
                    if not self.fair and len(got) < request.limit and any_fair(db):
                        # fair-keyed jobs appeared since the last look (the ordinary
                        # claim never sees them): serve them now, not a poll later
                        self.fair = True
                        got += claim_in_transaction(
                            db, request.limit - len(got), queues=request.queues,
                            tasks=self.tasks, supervisor_name=self.supervisor_name, now=now,
                            limits=self.limits, flow=self.flow, held=result.held, fair=True,
                        )  # fmt: skip
                    result.claimed.append(got)
        except (peewee.PeeweeException, OSError) as exc:
            if in_flight:  # its jobs are claimed: run them, though the writes wait
                self.stray_claims.setdefault(stray_key, []).extend(self.parallel.collect())
            self._failed(exc)
            return None
        if in_flight:
            result.claimed.append(self.stray_claims.pop(stray_key, []) + self.parallel.collect())
        self.outcomes = self.outcomes[len(outcomes) :]
        self.logs, self.stack_answers = [], {}  # the loop adds nothing while it commits
        self.first_outcome_mono = time.monotonic() if self.outcomes else None
        for key, value in progress.items():
            if self.progress.get(key) == value:
                del self.progress[key]
        for key in started:
            self.started.pop(key, None)
        if self.failures:
            log.info("database writes succeed again after %d failed attempt(s)", self.failures)
        self.failures = 0
        self.retry_at = 0.0
        return result

    def beat(
        self, heartbeat: tuple[dict[str, Any], list[dict[str, Any]], list[tuple[str, int, str]]]
    ) -> list[str] | None:
        """The heartbeat alone, in its own transaction: while the turn's commit is refused
        for a row of ours another transaction holds, our leases must still be renewed.
        The lost leases, or None when this was refused too (the backoff is the turn's)."""
        try:
            with dialect_for(self.db).write_transaction(self.db):
                return write_heartbeat(self.db, *heartbeat)
        except (peewee.PeeweeException, OSError) as exc:
            log.debug("heartbeat refused too: %s", exc)
            return None

    def pending_fences(self) -> list[tuple[str, int, str]]:
        """Runs whose outcome waits to be written: their leases are still ours to renew."""
        return [(o.job_id, o.attempt, o.lease_token) for o in self.outcomes if o.lease_token]

    def _failed(self, exc: BaseException) -> None:
        from jobtui.models.store import classify_error

        self.failures += 1
        delay = min(self.max_backoff_s, BACKOFF_FIRST_S * (2 ** min(self.failures - 1, 10)))
        self.retry_at = time.monotonic() + delay
        if self.failures == 1 or self.failures % 20 == 0:
            log.warning("database trouble (%s); retrying in %.2f s (attempt %d)",
                        classify_error(exc), delay, self.failures)  # fmt: skip
        try:
            if not self.db.in_transaction():
                self.db.close()  # a broken PostgreSQL connection: reconnect next time
        except peewee.PeeweeException:
            self.db.dispose() if hasattr(self.db, "dispose") else None
