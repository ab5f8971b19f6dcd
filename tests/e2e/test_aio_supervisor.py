"""jobtui.aio and JobService against a real supervisor, on both engines: ``wait`` gets the
result a worker produced (or JobFailed), ``watch`` sees a live job's progress, and an
application's JobService can neither take nor finish a run a supervisor holds."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from supervisor_harness import TASKS, wait_until
from supervisor_history import job

from jobtui import aio
from jobtui.aio_runner import stop_runner
from jobtui.models.errors import InvalidTransition, JobFailed
from jobtui.models.job import Job
from jobtui.service import JobService, NotHeld

pytestmark = pytest.mark.timeout(90)

_LEASE = timedelta(seconds=1)


@pytest.fixture(autouse=True)
def _stop_threads():
    yield
    stop_runner()


def test_wait_returns_a_supervisor_result_and_raises_job_failed(cluster):
    cluster.start()

    async def main():
        ok = await aio.enqueue(f"{TASKS}.add", args=[2, 40])
        bad = await aio.enqueue(f"{TASKS}.refuse")
        result = await aio.wait(ok.id, timeout=30)
        with pytest.raises(JobFailed) as failed:
            await aio.wait(bad.id, timeout=30)
        return result, failed.value

    result, failed = asyncio.run(main())
    assert result["value"] == 42 and result["attempt"] == 1
    assert failed.status == "failed" and "refused for good" in failed.error
    cluster.check()


def test_watch_yields_the_progress_of_a_running_job(cluster):
    cluster.start()

    async def main():
        job_ = await aio.enqueue(f"{TASKS}.details_then_gate", args=["watched"])
        seen = []
        async for snapshot in aio.watch(job_.id, timeout=30):
            seen.append((snapshot.status, snapshot.progress_percentage,
                         snapshot.progress_message))  # fmt: skip
            if snapshot.progress_percentage == 60:
                cluster.open_gate("watched")  # let it run on once we saw it mid-way
        return seen, await aio.wait(job_.id, timeout=5)

    seen, result = asyncio.run(main())
    assert ("running", 60.0, "loaded") in seen
    assert seen[-1][0] == "completed" and seen[-1][1] == 100.0
    assert [s for s in seen if s[0] == "running"] == sorted(
        [s for s in seen if s[0] == "running"], key=lambda s: s[1]
    )  # progress only moves forward
    assert result["value"] is not None
    cluster.check()


def test_job_service_cannot_take_or_finish_a_run_a_supervisor_holds(cluster):
    cluster.start()
    service = JobService()

    async def enqueue():
        return await aio.enqueue(f"{TASKS}.gated", args=["held"])

    held = asyncio.run(enqueue())
    running = wait_until(lambda: (r := job(held.id)).status == "running" and r, 15,
                         "the supervisor runs the job")  # fmt: skip
    before = (running.status, running.attempt, running.lease_token, running.supervisor_name)

    async def meddle():
        with pytest.raises(InvalidTransition, match="running under"):
            await service.mark_processing(held.id)
        with pytest.raises(NotHeld):
            await service.mark_completed(held.id, result={"forged": True})
        with pytest.raises(NotHeld):
            await service.mark_failed(held.id, "forged", retry=False)

    asyncio.run(meddle())
    after = job(held.id)
    assert (after.status, after.attempt, after.lease_token, after.supervisor_name) == before
    assert after.result is None
    cluster.open_gate("held")
    done = cluster.wait_status([held.id])[held.id]
    assert done.status == "completed" and done.attempt == 1
    cluster.check()


def test_a_supervisor_leaves_a_job_service_run_alone(cluster):
    """The service renews its lease: a supervisor's reaper (lease 1.5 s here) never takes
    the run, and the supervisor never claims it; the service's result stands."""
    import jobtui.service_leases as leases_module

    cluster.start()
    service = JobService()

    async def main():
        # due in an hour: the supervisor would not claim it before the service does
        created = await service.create(
            job_type=f"{TASKS}.add", payload={"a": 1, "b": 2}, delay=3600
        )
        return await service.mark_processing(created.id)

    old_renew = leases_module.LEASE_RENEW_S
    leases_module.LEASE_RENEW_S = 0.2
    leases_module.leases._wake.set()
    try:
        mine = asyncio.run(main())
        beats = [mine.heartbeat_at]
        for _ in range(3):  # past two leases of the cluster's reaper (1.5 s)
            wait_until(lambda: Job.get_by_id(mine.id).heartbeat_at > beats[-1] + _LEASE, 10,
                       "the service keeps renewing its lease")  # fmt: skip
            row = Job.get_by_id(mine.id)
            beats.append(row.heartbeat_at)
            assert (row.status, row.attempt, row.lease_token) == ("running", 1, mine.lease_token)
        completed = asyncio.run(service.mark_completed(mine.id, result={"sum": 3}))
    finally:
        leases_module.LEASE_RENEW_S = old_renew
    assert completed.status == "completed" and completed.result == {"sum": 3}
    assert completed.attempt == 1
