"""Seed 001's JobService examples, as written there apart from the import, on both engines;
and its restart rule (runs of a dead application process go back to pending) mapped onto
jobtui's recovery: only runs whose owner is gone."""

from __future__ import annotations

import asyncio
import enum
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from jobtui.aio import JobService, NotHeld
from jobtui.aio_runner import stop_runner
from jobtui.models import claims
from jobtui.models.clock import utcnow
from jobtui.models.errors import InvalidJob, InvalidTransition
from jobtui.models.job import Job

ROOT = Path(__file__).resolve().parents[2]


class JobType(enum.Enum):  # the seed's enum
    FILE_INGESTION = "file_ingestion"
    EMBEDDING_GENERATION = "embedding_generation"


class Session:
    """The application's own session, which the seed commits after a failure."""

    def __init__(self) -> None:
        self.commits = 0

    async def commit(self) -> None:
        self.commits += 1


async def process_file(payload: dict) -> dict:
    if payload["file_path"].endswith(".bad"):
        raise ValueError(f"cannot read {payload['file_path']}")
    await asyncio.sleep(0)
    return {"pages": len(payload["file_path"])}


@pytest.fixture(autouse=True)
def _stop_threads():
    yield
    stop_runner()


def test_the_seed_examples_run_as_written(db):
    session = Session()

    async def main():
        file_id = 7
        # ### Create a Job
        service = JobService(session)
        job = await service.create(
            job_type=JobType.FILE_INGESTION,
            reference_id=file_id,
            reference_type="file_upload",
            payload={"file_path": "/path/to/file.pdf"},
            max_retries=3,
        )
        bad = await service.create(job_type=JobType.FILE_INGESTION, reference_id=8,
                                   reference_type="file_upload",
                                   payload={"file_path": "/path/to/file.bad"})  # fmt: skip
        other = await service.create(job_type=JobType.EMBEDDING_GENERATION, payload={})

        # ### Get Pending Jobs
        pending_jobs = await service.get_pending()
        pending_file_jobs = await service.get_pending(job_type=JobType.FILE_INGESTION)
        assert {j.id for j in pending_jobs} == {job.id, bad.id, other.id}
        assert [j.id for j in pending_file_jobs] == [job.id, bad.id]

        # ### Process a Job (for each of the two file jobs)
        for job_id in (job.id, bad.id):
            try:
                job_ = await service.mark_processing(job_id)
                result = await process_file(job_.payload)
                await service.mark_completed(job_id, result=result)
            except Exception as e:
                await service.mark_failed(job_id, str(e), retry=True)
                await session.commit()

        # ### Get Job by Reference
        found = await service.get_by_reference("file_upload", file_id)
        assert found.id == job.id and found.status == "completed"
        assert found.result == {"pages": len("/path/to/file.pdf")}
        failed = await service.get_by_reference("file_upload", 8)
        assert failed.status == "retrying" and failed.retry_count == 1
        assert "cannot read" in failed.error_message
        assert await service.get_by_reference("file_upload", 99) is None

        # ### Cleanup Old Completed Jobs
        assert await service.cleanup_completed(days=7) == 0  # nothing that old yet
        return job.id

    done_id = asyncio.run(main())
    assert session.commits == 1
    Job.update(updated_at=utcnow() - timedelta(days=8)).where(Job.id == done_id).execute()
    assert asyncio.run(JobService(session).cleanup_completed(days=7)) == 1
    assert Job.get_or_none(Job.id == done_id) is None


def test_mark_processing_is_a_claim_and_later_writes_are_fenced(db):
    service = JobService()

    async def main():
        job = await service.create(job_type="seed.work", payload={"n": 1})
        claimed = await service.mark_processing(job.id)
        assert (claimed.status, claimed.attempt) == ("running", 1) and claimed.lease_token
        with pytest.raises(InvalidTransition):
            await service.mark_processing(job.id)  # a second claim of the same run
        return claimed

    claimed = asyncio.run(main())
    # a supervisor's reaper recovers the run (as if the lease had lapsed) and it is claimed
    # again, by a supervisor this time: the application's late result must not land
    claims.fail_job(claimed.id, claimed.attempt, None, "lease expired", error_type="WorkerLost")
    Job.update(run_at=utcnow(), next_retry_at=None).where(Job.id == claimed.id).execute()
    [again] = claims.claim_jobs(1, supervisor_name="sup-1")
    assert again.attempt == 2
    from jobtui import service_leases

    assert service_leases.leases.renew() == [claimed.id]  # the renewal sees the loss
    assert service_leases.leases.get(claimed.id) is None

    async def late():
        with pytest.raises(NotHeld):
            await service.mark_completed(claimed.id, result="stale")

    asyncio.run(late())
    row = Job.get_by_id(claimed.id)
    assert (row.status, row.attempt, row.lease_token, row.result) == (
        "running", 2, again.lease_token, None)  # fmt: skip


def test_a_result_that_is_not_json_is_refused_and_the_run_stays_held(db):
    service = JobService()

    async def main():
        job = await service.create(job_type="seed.work", payload={})
        await service.mark_processing(job.id)
        with pytest.raises(InvalidJob, match="not JSON"):
            await service.mark_completed(job.id, result={"when": object()})
        return await service.mark_failed(job.id, "could not encode", retry=False)

    failed = asyncio.run(main())
    assert (failed.status, failed.attempt, failed.error_message) == (
        "failed", 1, "could not encode")  # fmt: skip


def test_a_run_the_supervisor_claimed_is_refused_and_unchanged(db):
    service = JobService()
    job = asyncio.run(service.create(job_type="seed.work", payload={}))
    [held] = claims.claim_jobs(1, supervisor_name="sup-1")
    assert held.id == job.id

    async def meddle():
        with pytest.raises(InvalidTransition, match="running under sup-1"):
            await service.mark_processing(job.id)
        with pytest.raises(NotHeld):
            await service.mark_completed(job.id, result="forged")
        with pytest.raises(NotHeld):
            await service.mark_failed(job.id, "forged")

    asyncio.run(meddle())
    row = Job.get_by_id(job.id)
    assert (row.status, row.attempt, row.lease_token, row.supervisor_name, row.result) == (
        "running", 1, held.lease_token, "sup-1", None)  # fmt: skip
    assert claims.complete_job(held.id, held.attempt, held.lease_token, "real")


_DIES_HOLDING = """
import asyncio, os, sys
from jobtui.service import JobService
job = asyncio.run(JobService().mark_processing(sys.argv[1]))
print(job.supervisor_name, flush=True)
os._exit(0)  # gone without finishing: the seed's app restart
"""


def test_the_seed_recovery_handler_resumes_the_runs_of_a_dead_app(db, db_url):
    service = JobService()

    async def create():
        return [
            await service.create(
                job_type=JobType.FILE_INGESTION, payload={"file_path": f"/f{n}.pdf"}
            )
            for n in range(3)
        ]

    jobs = asyncio.run(create())
    env = dict(os.environ, JOBTUI_DATABASE=db_url, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", _DIES_HOLDING, jobs[0].id], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("app:")
    [supervised] = claims.claim_jobs(1, supervisor_name="sup-live")  # a live supervisor's run
    assert supervised.id == jobs[1].id
    processed: list[str] = []

    async def process_job(job):
        try:
            job_ = await service.mark_processing(job.id)
            result = await process_file(job_.payload)
            await service.mark_completed(job.id, result=result)
            processed.append(job.id)
        except Exception as e:
            await service.mark_failed(job.id, str(e), retry=True)

    # ## Recovery Handler Example (as written, with JobService from jobtui)
    session = Session()

    async def recover_pending_jobs():
        """Resume processing of pending jobs after app restart."""
        service = JobService(session)
        pending_jobs = await service.get_pending()

        for job in pending_jobs:
            # Resume processing
            await process_job(job)

    asyncio.run(recover_pending_jobs())
    assert sorted(processed) == sorted([jobs[0].id, jobs[2].id])
    dead_run = Job.get_by_id(jobs[0].id)
    assert (dead_run.status, dead_run.attempt, dead_run.retry_count) == ("completed", 2, 1)
    live = Job.get_by_id(jobs[1].id)  # the supervisor's run is never touched
    assert (live.status, live.attempt, live.lease_token) == (
        "running", 1, supervised.lease_token)  # fmt: skip
