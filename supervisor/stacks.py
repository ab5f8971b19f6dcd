"""The supervisor's side of live stacks (models/stacks.py): read requests, ask workers,
write answers, and say so when a worker cannot answer.

``StackRequests`` owns its state and is called from the loop: ``poll`` when a wake-up
said "stack" (and at each safety poll while jobs run), ``on_answer`` when a worker's
answer arrives, ``tick`` to answer for a worker that stayed silent. Answers go into the
group commit like any other write.
"""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import timedelta

import peewee

from jobtui.models.clock import sql_timestamp, utcnow
from jobtui.models.dialect import dialect_for
from jobtui.models.stacks import FORGET, PENDING

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from collections.abc import Iterable

    from .commit import GroupCommit
    from .pool import WorkerHandle

log = logging.getLogger(__name__)

#: How long a worker has to answer: its watch thread answers at once unless the job's
#: thread holds the GIL (a long C call), and then no Python thread of it can run.
ANSWER_TIMEOUT_S = 2.0
FORGET_AFTER_S = 3600.0


class StackRequests:
    def __init__(self, commit: GroupCommit, name: str) -> None:
        self.commit = commit
        self.name = name
        self.wanted = False  # a wake-up said a request is waiting
        #: request id -> (worker pid, when the worker was asked, monotonic)
        self.asked: dict[int, tuple[int, float]] = {}
        self.next_forget = 0.0

    def poll(self, db: peewee.Database, workers: Iterable[WorkerHandle]) -> None:
        """Read the requests addressed to us and send each to the worker running its job."""
        self.wanted = False
        try:
            rows = db.execute_sql(dialect_for(db).sql(PENDING), {"me": self.name}).fetchall()
        except peewee.PeeweeException as exc:
            log.debug("stack request poll failed: %s", exc)
            return
        self._forget_old(db)
        if not rows:
            return
        running = {}
        for worker in workers:
            job = worker.current
            if job is not None and job.started_mono is not None and not worker.exited:
                running[job.id] = worker
        now = time.monotonic()
        for request_id, job_id in rows:
            if request_id in self.asked or request_id in self.commit.stack_answers:
                continue
            worker = running.get(job_id)
            if worker is None:
                self._answer(request_id, {"error": f"job {job_id} is not running here now"})
                continue
            try:
                os.write(worker.control_fd, f"{request_id}\n".encode())
            except OSError as exc:
                self._answer(request_id, {"error": f"cannot ask its worker: {exc}"})
                continue
            self.asked[request_id] = (worker.pid, now)

    def on_answer(self, worker: WorkerHandle, request_id: int, stack_json: str) -> None:
        if self.asked.pop(request_id, None) is not None:
            self.commit.add_stack_answer(request_id, stack_json)

    def deadline(self) -> float | None:
        """When the oldest unanswered request gives up on its worker (monotonic)."""
        if not self.asked:
            return None
        return min(at for _, at in self.asked.values()) + ANSWER_TIMEOUT_S

    def tick(self, now: float, workers: dict[int, WorkerHandle]) -> None:
        """Answer for workers that stayed silent: stuck in C (or gone)."""
        for request_id, (pid, at) in list(self.asked.items()):
            if now - at < ANSWER_TIMEOUT_S:
                continue
            del self.asked[request_id]
            worker = workers.get(pid)
            if worker is None:
                self._answer(request_id, {"error": "its worker exited before answering"})
                continue
            self._answer(request_id, {
                "stuck": True, "pid": pid, "waited_s": ANSWER_TIMEOUT_S,
                "last_heard_s": round(now - worker.last_message_mono, 1),
                "job_id": worker.current.id if worker.current else None,
            })  # fmt: skip
            log.info("worker %s (pid %d) did not answer a stack request within %g s: stuck "
                     "in C code holding the GIL?", worker.name, pid, ANSWER_TIMEOUT_S)  # fmt: skip

    def _answer(self, request_id: int, answer: dict) -> None:
        self.commit.add_stack_answer(request_id, json.dumps(answer))

    def _forget_old(self, db: peewee.Database) -> None:
        """Requests whose asker never came back for the answer go after an hour."""
        now = time.monotonic()
        if now < self.next_forget:
            return
        self.next_forget = now + FORGET_AFTER_S / 10
        before = sql_timestamp(utcnow() - timedelta(seconds=FORGET_AFTER_S))
        try:
            with dialect_for(db).write_transaction(db):
                db.execute_sql(dialect_for(db).sql(FORGET), {"before": before})
        except peewee.PeeweeException as exc:
            log.debug("forgetting old stack requests postponed: %s", exc)
