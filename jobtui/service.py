"""Seed 001's ``JobService``, awaitable, over the supervisor's own fenced transitions.

    from jobtui.service import JobService

    service = JobService(session)
    job = await service.create(job_type="file_ingestion", reference_id=7,
                               reference_type="file_upload", payload={"path": "/a.pdf"})
    job = await service.mark_processing(job.id)       # a claim: attempt + 1, a lease
    await service.mark_completed(job.id, result={"pages": 3})

An application that processes jobs itself (the seed's example) uses the same claim and the
same fenced writes as a supervisor, so it can never corrupt a run a supervisor holds:
``mark_processing`` of a job that is running elsewhere raises ``InvalidTransition`` and
changes nothing; ``mark_completed``/``mark_failed`` of a run this process does not hold (or
whose lease it lost) raise ``NotHeld`` and change nothing. While the application holds a
run, a thread renews its lease (``service_leases``), so supervisors leave it alone.

``session`` is the application's own (the seed's SQLAlchemy session): jobtui commits its
own writes and never touches it; pass a jobtui database URL or Peewee database there, or
as ``database=``, to pick the job database. Each call runs on ``jobtui.aio``'s threads.
"""

from __future__ import annotations

import enum
import weakref
from datetime import timedelta

import peewee

from jobtui import aio, service_leases
from jobtui.aio_runner import run
from jobtui.models import claims
from jobtui.models.base import dumps
from jobtui.models.errors import InvalidJob, InvalidTransition
from jobtui.models.job import Job
from jobtui.models.retention import prune_jobs
from jobtui.models.store import get_database

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from jobtui.api import Database


class NotHeld(InvalidTransition):
    """This application does not hold the job's run (never claimed here, or its lease was
    lost to recovery or a cancel): nothing was written."""


def _name(job_type: Any) -> str:
    """A task name from the seed's ``JobType`` enum members or a plain string."""
    return str(job_type.value) if isinstance(job_type, enum.Enum) else str(job_type)


_recovered: weakref.WeakSet[peewee.Database] = weakref.WeakSet()


def _recover(database: Database) -> list[str]:
    return service_leases.recover_dead_owners(get_database(database))


def _pending(database: Database, job_type: str | None, limit: int) -> list[Job]:
    db = get_database(database)
    if db not in _recovered:  # the seed's restart rule, once per process and database
        service_leases.recover_dead_owners(db)
        _recovered.add(db)
    return list(Job.get_pending_jobs(limit=limit, job_type=job_type))


def _claim(database: Database, job_id: str) -> Job:
    db = get_database(database)
    owner = service_leases.owner_name()
    try:
        job = claims.start_job(str(job_id), worker_name=owner, supervisor_name=owner, db=db)
    except InvalidTransition as exc:
        held = Job.get_or_none(Job.id == str(job_id))
        if held is not None and held.status == "running":
            raise InvalidTransition(
                f"job {job_id} is running under {held.supervisor_name or 'another owner'}: "
                "not this application's to process (nothing was changed)"
            ) from exc
        raise
    service_leases.leases.hold(service_leases.HeldRun(job.id, job.attempt, job.lease_token, db))
    return job


def _finish(job_id: str, write: Any) -> Job:
    run_ = service_leases.leases.get(str(job_id))
    if run_ is None:
        raise NotHeld(f"job {job_id} is not held by this application: nothing was written")
    written = write(run_)  # raising (a result that is not JSON): still held, mark_failed may follow
    service_leases.leases.release(run_.job_id)
    if written is None or written is False:
        raise NotHeld(f"job {job_id}: this application lost its lease; nothing was written")
    return Job.get_by_id(run_.job_id)


def _complete(job_id: str, result: Any) -> Job:
    try:
        result_json = dumps(result)
    except (TypeError, ValueError) as exc:
        raise InvalidJob(f"job {job_id}: the result is not JSON ({exc}); the run is still "
                         "held: mark it completed or failed") from exc  # fmt: skip
    return _finish(job_id, lambda r: claims.complete_job(
        r.job_id, r.attempt, r.lease_token, result_json=result_json, db=r.db))  # fmt: skip


def _fail(job_id: str, error: str, retry: bool) -> Job:
    return _finish(job_id, lambda r: claims.fail_job(
        r.job_id, r.attempt, r.lease_token, str(error), permanent=not retry,
        error_type="ApplicationError", db=r.db))  # fmt: skip


def _by_reference(reference_type: str, reference_id: Any) -> Job | None:
    found = Job.get_by_reference(reference_type, reference_id)
    return found[0] if found else None


class JobService:
    """The seed's job service: create, find, process and clean up jobs, awaitably."""

    def __init__(self, session: Any = None, *, database: Database = None) -> None:
        if database is None and isinstance(session, str | peewee.Database):
            database, session = session, None
        self.session = session  # the application's; jobtui never commits or closes it
        self.database = database

    async def create(
        self,
        job_type: Any,
        reference_id: Any = None,
        reference_type: str | None = None,
        payload: dict[str, Any] | None = None,
        max_retries: int = 3,
        **options: Any,
    ) -> Job:
        """Enqueue a job of task ``job_type`` with ``payload`` as its keyword arguments
        (``job.payload``); further options as ``jobtui.enqueue``."""
        if reference_id is not None:
            options["reference_id"] = str(reference_id)
        if reference_type is not None:
            options["reference_type"] = reference_type
        job = await aio.enqueue(_name(job_type), kwargs=payload or {}, max_retries=max_retries,
                                database=self.database, **options)  # fmt: skip
        assert job is not None  # by name: no should_enqueue to decline
        return job

    async def get_pending(self, job_type: Any = None, limit: int = 100) -> list[Job]:
        """Jobs ready to run now, in claim order (of one task with ``job_type``). The first
        call also puts back the runs of this host's application processes that are gone."""
        name = None if job_type is None else _name(job_type)
        return await run(self.database, _pending, self.database, name, limit)

    async def mark_processing(self, job_id: str) -> Job:
        """Claim the job now as a supervisor would (attempt + 1, a fresh lease); the
        returned Job is running. InvalidTransition if it is not pending or retrying."""
        return await run(self.database, _claim, self.database, job_id)

    async def mark_completed(self, job_id: str, result: Any = None) -> Job:
        """Record success of the run this application holds (fenced by its lease)."""
        return await run(self.database, _complete, job_id, result)

    async def mark_failed(self, job_id: str, error: str, retry: bool = True) -> Job:
        """Record a failure of the run this application holds: retried later while
        retries remain (``retry=False``: failed for good)."""
        return await run(self.database, _fail, job_id, error, retry)

    async def get_by_reference(self, reference_type: str, reference_id: Any) -> Job | None:
        """The newest job linked to this entity, or None."""
        return await run(self.database, _by_reference, reference_type, reference_id, read=True)

    async def get(self, job_id: str) -> Job:
        """The job's current state; JobNotFound if there is none."""
        return await aio.poll(str(job_id), database=self.database)

    async def cleanup_completed(self, days: float = 7) -> int:
        """Delete completed (and cancelled) jobs older than ``days``; returns how many."""
        return await run(self.database, _cleanup, self.database, days)

    async def recover(self) -> list[str]:
        """Put back (to be retried now) the runs of this host's application processes that
        are gone; returns their ids. A supervisor's runs, or a live process's, are never
        touched. ``get_pending`` does this once by itself."""
        return await run(self.database, _recover, self.database)


def _cleanup(database: Database, days: float) -> int:
    from jobtui.models import audit

    db = get_database(database)
    deleted = prune_jobs(older_than=timedelta(days=days), db=db)
    if deleted:  # batches of their own transactions: recorded once they are done
        audit.record("purge", "completed and cancelled jobs", deleted,
                     arguments={"older_than_days": days}, db=db)  # fmt: skip
    return deleted


__all__ = ["JobService", "NotHeld"]
