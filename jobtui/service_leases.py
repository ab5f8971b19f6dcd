"""The runs an application holds through ``JobService``, kept alive like a supervisor's.

``mark_processing`` claims a job exactly as a supervisor does (attempt + 1, a fresh lease
token, the claim's own transaction kind), so its later writes are fenced like a worker's.
The fences live here, process-wide, so any ``JobService`` of the process (the seed makes one
per request) can finish a run another claimed. A thread renews their leases every
``LEASE_RENEW_S`` — a supervisor's reaper recovers a run whose heartbeat stood still for a
lease (30 s by default) — and forgets a run whose lease was lost (recovered, cancelled).

The owner name, ``app:HOST:PID:START``, lets ``recover_dead_owners`` find the runs of an
application process on this host that is gone (the seed's "PROCESSING jobs are reset to
PENDING" at start-up): only those, never a supervisor's and never a live process's.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass

import peewee

from jobtui.models.claims import write_fenced
from jobtui.models.dialect import dialect_for
from jobtui.models.outcomes import Outcome, write_outcomes
from jobtui.registry import registry
from jobtui.supervisor import procinfo

log = logging.getLogger(__name__)

LEASE_RENEW_S = 5.0
OWNER_PREFIX = "app:"


#: Stamped with the clock supervisors' reapers judge leases by (the database's on
#: PostgreSQL), as a supervisor's own lease renewal is: the application's host clock may
#: differ from the database's.
_RENEW = """UPDATE jobs SET heartbeat_at = {now}
WHERE id = :id AND attempt = :attempt AND lease_token = :token AND status = 'running'"""


def renew_leases(db: peewee.Database, fences: list[tuple[str, int, str]]) -> list[str]:
    """Extend these runs' leases in one transaction; returns the ids whose lease was lost."""
    return write_fenced(db, dialect_for(db).with_db_now(_RENEW), fences)


@dataclass(frozen=True)
class HeldRun:
    job_id: str
    attempt: int
    lease_token: str
    db: peewee.Database


def owner_name() -> str:
    """This process as the owner of the runs it claims: host, pid and start time."""
    pid = os.getpid()
    started = procinfo.start_time(pid)
    return f"{OWNER_PREFIX}{socket.gethostname()}:{pid}:{started or 0:.2f}"


class Leases:
    """The runs this process holds, and the thread that renews their leases."""

    def __init__(self) -> None:
        self._runs: dict[str, HeldRun] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, run: HeldRun) -> None:
        with self._lock:
            self._runs[run.job_id] = run
            if self._thread is None:
                self._thread = threading.Thread(target=self._renew_forever,
                                                name="jobtui-leases", daemon=True)  # fmt: skip
                self._thread.start()

    def get(self, job_id: str) -> HeldRun | None:
        with self._lock:
            return self._runs.get(job_id)

    def release(self, job_id: str) -> None:
        with self._lock:
            self._runs.pop(job_id, None)

    def renew(self) -> list[str]:
        """Renew every held lease now; returns (and forgets) the runs whose lease was lost."""
        with self._lock:
            runs = list(self._runs.values())
        lost: list[str] = []
        for db in {run.db for run in runs}:
            fences = [(r.job_id, r.attempt, r.lease_token) for r in runs if r.db is db]
            try:
                lost += renew_leases(db, fences)
            except Exception:  # noqa: BLE001 - a missed renewal is retried next round
                log.warning("could not renew the leases of %d job(s)", len(fences), exc_info=True)
        for job_id in lost:
            log.warning("lost the lease of job %s: it is no longer this application's", job_id)
            self.release(job_id)
        return lost

    def _renew_forever(self) -> None:
        while True:
            self._wake.wait(LEASE_RENEW_S)
            self._wake.clear()
            if self._runs:
                self.renew()


leases = Leases()

_RUNNING_APP = """SELECT id, attempt, supervisor_name, job_type FROM jobs
WHERE status = 'running' AND supervisor_name LIKE :owners"""


def _owner_gone(owner: str, host: str) -> str | None:
    """Why the application process named ``owner`` is gone (None: it runs, or is elsewhere)."""
    try:
        _, owner_host, pid, started = owner.split(":", 3)
        pid_n, started_s = int(pid), float(started)
    except ValueError:
        return None
    if owner_host != host:
        return None  # another host's: a supervisor's reaper judges it by its lease
    if procinfo.is_running(pid_n, started_s or None):
        return None
    return f"application process {pid_n} on {host} is gone"


def recover_dead_owners(db: peewee.Database) -> list[str]:
    """Put back the runs of application processes on this host that are gone (retried at
    once while retries remain, by the task's orphan policy); returns their job ids."""
    host = socket.gethostname()
    owners = {"owners": OWNER_PREFIX + "%"}
    rows = db.execute_sql(dialect_for(db).sql(_RUNNING_APP), owners).fetchall()
    outcomes = []
    for job_id, attempt, owner, job_type in rows:
        reason = _owner_gone(owner, host)
        if reason is None:
            continue
        task = registry.get(job_type)
        outcomes.append(Outcome(
            job_id=job_id, attempt=int(attempt), lease_token=None, kind="failed", error=reason,
            error_type="WorkerLost", attempt_outcome="crashed", retry_delay_s=0,
            permanent=task is not None and task.orphan_policy == "fail",
            worker={"supervisor_name": owner},
        ))  # fmt: skip
    if not outcomes:
        return []
    written = write_outcomes(outcomes, db=db)
    return [o.job_id for o, status in zip(outcomes, written, strict=True) if status is not None]


def _after_fork_in_child() -> None:
    global leases
    leases = Leases()  # the parent's runs are not the child's to renew


os.register_at_fork(after_in_child=_after_fork_in_child)

__all__ = ["HeldRun", "Leases", "leases", "owner_name", "recover_dead_owners"]
