"""jobtui.aio on both engines: the sync API's calls, awaitable, on jobtui's own threads."""

from __future__ import annotations

import asyncio
import gc
import threading

import pytest

from jobtui import aio
from jobtui.aio_runner import stop_runner
from jobtui.models import claims
from jobtui.models.errors import InvalidJob, JobFailed, JobNotFound, JobtuiError
from jobtui.models.job import Job
from jobtui.registry import task


@task(name="aio.add", queue="aio")
def add(a: int, b: int) -> int:
    return a + b


@task(name="aio.done")
def done(batch_id: str, outcome: str) -> None:
    pass


@pytest.fixture(autouse=True)
def _stop_threads():
    yield
    stop_runner()  # close the threads' connections before the database goes


def run(coro):
    return asyncio.run(coro)


def finish(job_id: str, *, result=None, error: str | None = None, progress=()) -> None:
    """What a worker does: claim the job, report progress, record the outcome."""
    job = claims.start_job(job_id, worker_name="test")
    for pct, msg in progress:
        assert claims.record_progress(job.id, job.attempt, job.lease_token, pct, msg)
    if error is None:
        assert claims.complete_job(job.id, job.attempt, job.lease_token, result)
    else:
        claims.fail_job(job.id, job.attempt, job.lease_token, error, permanent=True)


def test_enqueue_poll_and_task_aenqueue(db):
    async def main():
        job = await aio.enqueue(add, args=[1, 2], priority=5)
        assert job.status == "pending" and job.priority == 5 and job.queue_name == "aio"
        again = await add.aenqueue(3, 4)
        assert again.args == [3, 4] and again.job_type == "aio.add"
        polled = await aio.poll(job.id)
        assert polled.id == job.id and polled.status == "pending"
        with pytest.raises(JobNotFound):
            await aio.poll("no-such-job")
        with pytest.raises(InvalidJob):
            await aio.enqueue(add, args=[1], priority="high")
        return job

    job = run(main())
    assert Job.get_by_id(job.id).parameters == {"args": [1, 2], "kwargs": {}}


def test_enqueue_many_keeps_item_order_and_unique_keys(db):
    async def main():
        jobs = await aio.enqueue_many(add, ({"args": [i, i]} for i in range(20)))
        assert [j.args for j in jobs] == [[i, i] for i in range(20)]
        first = await aio.enqueue(add, args=[0, 0], unique_key="k")
        second = await aio.enqueue(add, args=[9, 9], unique_key="k")
        assert second.id == first.id

    run(main())
    assert Job.select().count() == 21


def test_wait_returns_the_result_and_reports_progress(db):
    async def main():
        job = await aio.enqueue(add, args=[2, 3])
        seen: list[tuple[float, str | None]] = []
        moved = asyncio.Event()

        async def on_progress(pct: float, msg: str | None) -> None:
            seen.append((pct, msg))
            moved.set()

        waiter = asyncio.create_task(aio.wait(job.id, timeout=10, on_progress=on_progress))
        run_ = await asyncio.to_thread(claims.start_job, job.id)
        fence = (run_.id, run_.attempt, run_.lease_token)
        assert await asyncio.to_thread(claims.record_progress, *fence, 50, "half")
        await asyncio.wait_for(moved.wait(), 10)
        assert await asyncio.to_thread(claims.complete_job, *fence, 5)
        assert await waiter == 5
        assert seen[0] == (50.0, "half") and seen[-1][0] == 100.0

    run(main())


def test_wait_takes_a_plain_function_as_on_progress(db):
    async def main():
        job = await aio.enqueue(add, args=[1, 2])
        seen: list[tuple[float, str | None]] = []
        run_ = await asyncio.to_thread(claims.start_job, job.id)
        fence = (run_.id, run_.attempt, run_.lease_token)
        assert await asyncio.to_thread(claims.record_progress, *fence, 25, "a quarter")
        moved = asyncio.Event()

        def on_progress(pct: float, msg: str | None) -> None:  # a plain function
            seen.append((pct, msg))
            moved.set()

        waiter = asyncio.create_task(aio.wait(job.id, timeout=10, on_progress=on_progress))
        await asyncio.wait_for(moved.wait(), 10)
        assert await asyncio.to_thread(claims.complete_job, *fence, 3)
        assert await waiter == 3
        assert seen[0] == (25.0, "a quarter")

    run(main())


def test_wait_raises_job_failed_and_timeout(db):
    async def main():
        job = await aio.enqueue(add, args=[1, 1])
        with pytest.raises(TimeoutError):
            await aio.wait(job.id, timeout=0.05)
        await asyncio.to_thread(finish, job.id, error="boom")
        with pytest.raises(JobFailed) as raised:
            await aio.wait(job.id, timeout=10)
        assert raised.value.status == "failed" and "boom" in raised.value.error
        assert isinstance(raised.value, JobtuiError)

    run(main())


def test_watch_yields_each_change_and_ends_at_a_final_state(db):
    async def main():
        job = await aio.enqueue(add, args=[1, 1])
        claimed = await asyncio.to_thread(claims.start_job, job.id)
        seen: list[tuple[str, float, str | None]] = []
        async for snapshot in aio.watch(job.id, timeout=10):
            seen.append((snapshot.status, snapshot.progress_percentage,
                         snapshot.progress_message))  # fmt: skip
            fence = (claimed.id, claimed.attempt, claimed.lease_token)
            if len(seen) == 1:
                await asyncio.to_thread(claims.record_progress, *fence, 40, "reading")
            elif len(seen) == 2:
                await asyncio.to_thread(claims.complete_job, *fence, "ok")
        return seen

    seen = run(main())
    assert seen == [("running", 0.0, None), ("running", 40.0, "reading"),
                    ("completed", 100.0, "reading")]  # fmt: skip


def test_cancel_retry_queue_stats_and_schedule(db):
    async def main():
        job = await aio.enqueue(add, args=[1, 1])
        cancelled = await aio.cancel(job.id, reason="not needed")
        assert cancelled.status == "cancelled" and cancelled.error_message == "not needed"
        again = await aio.retry(job.id)
        assert again.status == "pending"
        stats = await aio.queue_stats()
        assert stats["aio"]["counts"]["pending"] == 1
        fire = await aio.schedule("nightly", "0 3 * * *", add, args=[1, 2])
        assert fire.hour == 3

    run(main())


def test_async_batch_is_one_transaction(db):
    async def main():
        async with aio.batch(on_complete=done) as b:
            first = await aio.enqueue(add, args=[1, 1])
            more = await asyncio.gather(*(add.aenqueue(i, i) for i in range(5)))
            many = await aio.enqueue_many(add, [{"args": [7, 7]}])
            assert first.batch_id == b.id and all(j.batch_id == b.id for j in more + many)
            outside = await asyncio.to_thread(
                lambda: Job.select().where(Job.batch_id == b.id).count()
            )
            assert outside == 0  # not visible before the block commits
        assert (await aio.poll(first.id)).batch_id == b.id
        with pytest.raises(RuntimeError):
            async with aio.batch() as failed:
                await aio.enqueue(add, args=[2, 2])
                raise RuntimeError("no")
        return b.id, failed.id

    ok_id, failed_id = run(main())
    from jobtui.batching import batch_status

    assert batch_status(ok_id)["total"] == 7
    assert Job.select().where(Job.batch_id == ok_id).count() == 7
    assert Job.select().where(Job.batch_id == failed_id).count() == 0
    with pytest.raises(JobNotFound):
        batch_status(failed_id)


def test_database_errors_leave_as_jobtui_errors(tmp_path):
    async def main():
        with pytest.raises(JobtuiError):
            await aio.poll("x", database=f"sqlite:///{tmp_path}/missing/dir/jobs.db")

    run(main())


@pytest.mark.serial
def test_the_loop_stays_responsive_while_5000_jobs_are_enqueued(db):
    """A 1 ms ticker on the loop while 10 coroutines enqueue 5,000 jobs: its worst lag,
    less the time threads waited for a CPU on this shared machine (bench/ticker.py),
    stays under 20 ms. Both figures are printed (pytest -s, or -rP)."""
    from bench.ticker import LagTicker

    async def share(k: int) -> None:
        for n in range(k, 5000, 10):
            await aio.enqueue(add, args=[n, n])

    async def main() -> LagTicker:
        # The first call starts the jobtui threads, opens their connections and imports what
        # they use, holding the GIL for up to ~100 ms here: an application pays it once, at
        # its first call (or at start-up, with one call then); this measures what follows.
        await aio.poll((await aio.enqueue(add, args=[0, 0])).id)
        async with LagTicker() as ticker:
            await asyncio.gather(*(share(k) for k in range(10)))
        return ticker

    # A full collection of pytest's own heap (one ran within the first 5,000 enqueues,
    # ~90 ms on whichever thread triggered it) is the interpreter's pause, not jobtui's
    # blocking: the objects alive before the test are frozen out of the collections.
    gc.collect()
    gc.freeze()
    try:
        ticker = run(main())
    finally:
        gc.unfreeze()
    print(f"ticks {ticker.ticks}: worst lag {ticker.worst_ms:.1f} ms raw, "
          f"{ticker.worst_loop_ms:.1f} ms without waits for a CPU")  # fmt: skip
    assert Job.select().count() == 5001
    assert ticker.ticks > 100
    assert ticker.worst_loop_ms < 20


def test_the_ticker_sees_a_blocked_loop(tmp_path):
    """The lag correction removes waits for a CPU, never the loop's own blocking."""
    import time

    from bench.ticker import LagTicker

    async def main() -> LagTicker:
        async with LagTicker() as ticker:
            await asyncio.sleep(0.01)
            time.sleep(0.04)  # the mistake jobtui.aio exists to avoid
            await asyncio.sleep(0.01)
        return ticker

    assert run(main()).worst_loop_ms >= 35


def _terminate_other_backends(db_url: str) -> int:
    import psycopg2

    conn = psycopg2.connect(db_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()")  # fmt: skip
        killed = cur.fetchone()[0]
    conn.close()
    return killed


def test_calls_reconnect_after_the_server_drops_the_connections(db, db_url, monkeypatch):
    """A PostgreSQL restart (every connection cut) between calls: the next read and the
    next write succeed; nothing but jobtui's errors could have escaped."""
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite has no server connection to lose")
    import jobtui.aio_runner as runner_module

    monkeypatch.setenv("JOBTUI_AIO_THREADS", "1")  # one thread, one connection to cut
    monkeypatch.setattr(runner_module, "IDLE_PING_S", 0.0)  # check before every write

    async def main():
        job = await aio.enqueue(add, args=[1, 1])
        assert await asyncio.to_thread(_terminate_other_backends, db_url) >= 1
        assert (await aio.poll(job.id)).id == job.id  # a read: retried on a new connection
        assert await asyncio.to_thread(_terminate_other_backends, db_url) >= 1
        second = await aio.enqueue(add, args=[2, 2])  # a write: the idle check reconnects
        assert await asyncio.to_thread(_terminate_other_backends, db_url) >= 1
        assert (await aio.queue_stats())["aio"]["counts"]["pending"] == 2
        return second

    run(main())  # (the test's own connection was cut too: no read here after it)


def test_a_cancelled_batch_block_writes_nothing_and_lets_go_of_the_lock(db):
    async def main():
        inside = asyncio.Event()

        async def block() -> None:
            async with aio.batch():
                await aio.enqueue(add, args=[1, 1])
                inside.set()
                await asyncio.sleep(3600)

        task_ = asyncio.create_task(block())
        await asyncio.wait_for(inside.wait(), 10)
        task_.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task_
        # the transaction is gone: a write elsewhere goes through at once
        return await asyncio.wait_for(aio.enqueue(add, args=[2, 2]), 5)

    after = run(main())
    assert [j.id for j in Job.select()] == [after.id]


def test_wait_waits_through_an_unreachable_database_until_its_timeout(db):
    """As the sync wait: an outage is waited out like a slow job, then TimeoutError."""
    down = "postgresql://postgres@127.0.0.1:1/nowhere"  # nothing listens on port 1

    async def main():
        with pytest.raises(TimeoutError, match="unknown after"):
            await aio.wait("01a2424b-0000-7000-8000-000000000000", timeout=0.3, database=down)
        with pytest.raises(JobtuiError):
            await aio.poll("x", database=down)  # a single read says what is wrong

    run(main())


def test_close_stops_the_threads_and_the_next_call_starts_them_again(db):
    import jobtui.aio_runner as runner_module

    async def main():
        await aio.enqueue(add, args=[1, 1])
        threads = [t for t in threading.enumerate() if t.name.startswith("jobtui-aio-")]
        assert threads
        await aio.close()
        assert not any(t.is_alive() for t in threads)  # joined, connections closed
        assert runner_module._runner is None
        return await aio.enqueue(add, args=[2, 2])

    assert run(main()).args == [2, 2]
