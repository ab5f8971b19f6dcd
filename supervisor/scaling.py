"""Live scaling of the worker pool: ``jobtui scale`` requests and ``--autoscale``.

The ``Scaler`` owns how many workers each group should have (``targets``, by group label)
and the autoscale state; the loop calls ``tick`` once a turn. Workers are added at once
(forked like any replacement); a worker scaled away is *retired*: handed nothing more,
stopped once it has run what it holds, and not replaced — never killed mid-job.

Requests arrive through the supervisor's row (models/scaling.py): read at once when a
``scale`` wake-up arrives, and at every heartbeat interval in any case. A supervisor with
no request and no ``--autoscale`` spends one primary-key read per heartbeat interval here.

Autoscale (Horizon's balancing, per queue): while every worker of an autoscaled queue is
busy and the queue's next due job has waited ``--autoscale-wait`` seconds, one worker more
per ``AUTOSCALE_STEP_S``, up to its MAX and never above ``--workers`` in all; a worker of
that queue idle for ``--autoscale-idle`` seconds is retired, down to its MIN.
"""

from __future__ import annotations

import logging
import os
import time

import peewee

from jobtui.models.clock import sql_timestamp, utcnow
from jobtui.models.dialect import dialect_for
from jobtui.models.outcomes import Outcome
from jobtui.models.ready_reads import READY_PARTS
from jobtui.models.scaling import SHARED, read_scale_request, serves, write_scaled

from .config import WorkerGroup

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from .loop import Supervisor
    from .pool import WorkerHandle

log = logging.getLogger(__name__)

#: Autoscaled queues are looked at this often; each look adds or retires one worker.
AUTOSCALE_STEP_S = 1.0

# The wait of the queue's next job in claim order (the oldest due one when priorities are
# equal): one probe of the claim index, not a scan of the backlog. A paused queue waits by
# design: it never grows.
_NEXT_DUE = """SELECT run_at, next_retry_at, priority, id FROM jobs
WHERE queue_name = :queue AND {half} AND run_at <= :now
    AND (next_retry_at IS NULL OR next_retry_at <= :now)
    AND NOT EXISTS (SELECT 1 FROM queues q WHERE q.name = jobs.queue_name AND q.paused)
ORDER BY priority DESC, run_at, id LIMIT 1"""


class Scaler:
    """Each worker group's wanted size, scale requests and autoscaling."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.pool = supervisor
        config = supervisor.config
        self.groups: dict[str, WorkerGroup] = {g.label: g for g in config.groups}
        self.targets: dict[str, int] = {g.label: g.size for g in config.groups}
        self.bounds: dict[str, tuple[int, int]] = {q: (lo, hi) for q, lo, hi in config.autoscale}
        self.max_workers = config.max_workers
        self.wanted = False  # a scale wake-up arrived: read the request this turn
        now = time.monotonic()
        self.next_request_check = now + config.heartbeat_interval_s
        self.next_autoscale = now + AUTOSCALE_STEP_S if self.bounds else float("inf")
        self.next_write = float("inf")  # our counts changed and are not written yet
        self.done: dict[str, int] = {}  # requests handled, not yet taken out of the row

    # ---------------------------------------------------------------- the loop's calls

    def due(self) -> float:
        """When ``tick`` has something to do (for the loop's select timeout)."""
        return min(self.next_request_check, self.next_autoscale, self.next_write)

    def tick(self, now: float) -> None:
        pool = self.pool
        if pool.stopping:
            return
        if self.wanted or now >= self.next_request_check:
            self.wanted = False
            self.next_request_check = now + pool.config.heartbeat_interval_s
            self._apply_requests()
        if now >= self.next_autoscale:
            self.next_autoscale = now + AUTOSCALE_STEP_S
            self._autoscale(now)
        if now >= self.next_write:
            self._write(now)

    def members(self, label: str) -> list[WorkerHandle]:
        """The group's workers that stay, or are replaced when they exit: all but the
        ones scaled away."""
        return [w for w in self.pool.workers.values()
                if w.group.label == label and not w.scaled_down]  # fmt: skip

    def size(self, label: str) -> int:
        """The group's workers now: running ones, and dead ones awaiting their respawn."""
        waiting = sum(1 for group, _, _ in self.pool.respawn.values() if group.label == label)
        return len(self.members(label)) + waiting

    def total(self) -> int:
        return sum(self.targets.values())

    # ---------------------------------------------------------------- requests

    def _apply_requests(self) -> None:
        pool = self.pool
        try:
            request = read_scale_request(pool.db, pool.config.name)
        except peewee.PeeweeException as exc:
            log.debug("scale request not read: %s", exc)
            self.wanted = True  # again next turn
            return
        for label, count in request.items():
            if label in self.done and self.done[label] == count:
                continue  # handled; its removal from the row is on its way
            if label not in self.groups and label != SHARED and serves(self.targets, label):
                # served by the shared workers only: it gets workers of its own
                self.groups[label] = WorkerGroup(queues=(label,), size=0)
                self.targets[label] = 0
            if label in self.groups:
                log.info("scale request: queue %s from %d to %d worker(s)", label,
                         self.targets[label], count)  # fmt: skip
                self.set_target(label, count)
            else:
                log.warning("scale request for queue %s refused: this supervisor does not "
                            "serve it", label)  # fmt: skip
            self.done[label] = count
            self.next_write = time.monotonic()

    def set_target(self, label: str, count: int) -> None:
        """Make group ``label`` ``count`` workers: fork the missing ones now, retire the
        extra ones (idle first, the newest first; busy ones stop after their job)."""
        pool = self.pool
        group = self.groups[label]
        self.targets[label] = count
        self.next_write = time.monotonic()
        have = self.size(label)
        if count > have:
            pool.spawn([(slot, group) for slot in self._free_slots(count - have)])
            return
        extra = have - count
        for slot in sorted((s for s, plan in pool.respawn.items() if plan[0].label == label),
                           reverse=True):  # fmt: skip
            if extra == 0:
                break
            del pool.respawn[slot]  # dead already: simply not replaced
            extra -= 1
        members = sorted(self.members(label),
                         key=lambda w: (w.kill is None, bool(w.jobs), -w.slot))  # fmt: skip
        for worker in members[:extra]:
            self.retire(worker)
        if count == 0:  # jobs claimed for this group wait for no worker: back in line
            self._release_ready(group)

    def retire(self, worker: WorkerHandle) -> None:
        worker.retiring = worker.scaled_down = True
        log.info("worker %s (pid %d) scaled away: %s", worker.name, worker.pid,
                 "stops after its current job" if worker.jobs else "stops now")  # fmt: skip
        self.pool._maybe_recycle(worker)  # stopped now if idle, else after its job

    def _release_ready(self, group: WorkerGroup) -> None:
        """Jobs claimed for ``group`` that no worker of it will take (scaled to 0): back
        in line, in their places, no retry spent."""
        pool = self.pool
        while (held := pool.ready.take(group.queues)) is not None:
            pool.commit.add_outcome(Outcome(held.id, held.claimed.attempt,
                                            held.claimed.lease_token, "interrupted",
                                            error="its queue's workers were scaled to 0"))  # fmt: skip

    def _free_slots(self, count: int) -> list[int]:
        used = {w.slot for w in self.pool.workers.values()} | set(self.pool.respawn)
        slots, slot = [], 1
        while len(slots) < count:
            if slot not in used:
                slots.append(slot)
            slot += 1
        return slots

    def _write(self, now: float) -> None:
        pool = self.pool
        try:
            write_scaled(pool.db, pool.config.name, os.getpid(), self.targets, self.done)
        except peewee.PeeweeException as exc:
            log.debug("worker counts not written yet: %s", exc)
            self.next_write = now + 0.5
            return
        self.done.clear()
        self.next_write = float("inf")

    # ---------------------------------------------------------------- autoscale

    def _autoscale(self, now: float) -> None:
        pool = self.pool
        if pool.quiet:
            return
        for label, (low, high) in self.bounds.items():
            target = self.targets.get(label, 0)
            members = self.members(label)
            if target < high and (not self.max_workers or self.total() < self.max_workers):
                busy = all(w.jobs for w in members)  # (none at all: MIN 0)
                if busy and self.size(label) == target and self._waits(label):
                    log.info("autoscale: queue %s waits over %g s with all %d worker(s) busy: "
                             "one more", label, pool.config.autoscale_wait_s, target)  # fmt: skip
                    self.set_target(label, target + 1)
                    continue
            if target > low:
                idle = [w for w in members if not w.jobs
                        and now - w.idle_since >= pool.config.autoscale_idle_s]  # fmt: skip
                if idle:
                    log.info("autoscale: queue %s has had a worker idle for %g s: one fewer",
                             label, pool.config.autoscale_idle_s)  # fmt: skip
                    self.targets[label] = target - 1
                    self.next_write = time.monotonic()
                    self.retire(max(idle, key=lambda w: w.slot))

    def _waits(self, label: str) -> bool:
        """Whether the queue's next due job has waited ``--autoscale-wait`` already: the
        first in claim order of the heads of its two claim indexes (jobs without a fair key,
        and with one: models/ready_reads.py)."""
        from jobtui.models.base import as_datetime

        pool = self.pool
        now = utcnow()
        params = {"queue": label, "now": sql_timestamp(now)}
        heads = []
        for half in READY_PARTS:
            try:
                sql = dialect_for(pool.db).sql(_NEXT_DUE.format(half=half))
                row = pool.db.execute_sql(sql, params).fetchone()
            except peewee.PeeweeException as exc:
                log.debug("autoscale look-up failed: %s", exc)
                return False
            if row is not None:
                heads.append(row)
        if not heads:
            return False
        run_at, retry_at, _, _ = min(heads, key=lambda r: (-r[2], as_datetime(r[0]), r[3]))
        due = max(d for d in (as_datetime(run_at), as_datetime(retry_at)) if d is not None)
        return (now - due).total_seconds() >= pool.config.autoscale_wait_s
