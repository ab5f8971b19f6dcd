"""``wait`` and ``jobtui.aio.wait`` wake up when a job ends, instead of at their next poll
(issue 18, item 1: "wake-ups where the engine has them"). On PostgreSQL every transaction
that ends jobs sends NOTIFY jobtui_ended with its rollup write (models/ended.py). The
polling interval is made far longer than the test's limit, so a waiter that was not woken
fails it. SQLite has no notifications: its waiters poll, as the other tests show."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import jobtui
from jobtui import aio, api
from jobtui.models import claim_jobs, complete_job
from jobtui.models.ended import listener_for

pytestmark = pytest.mark.timeout(60)

POLL_S = 20.0  # what a waiter that is never woken would wait before looking again
WOKEN_WITHIN_S = 5.0


@pytest.fixture
def pg_db(db, db_url):
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite has no notifications: waiters poll")
    return db


def _wait_until(condition, what: str, timeout_s: float = 10.0) -> None:
    give_up = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < give_up, f"timed out waiting for {what}"
        time.sleep(0.01)


def _claimed_job():
    job = jobtui.enqueue("t.slow")
    (run,) = claim_jobs(1)
    return job, run


def test_a_sync_wait_is_woken_by_the_jobs_end(pg_db, monkeypatch):
    monkeypatch.setattr(api, "WAIT_POLL_MIN_S", POLL_S)
    monkeypatch.setattr(api, "WAIT_POLL_MAX_S", POLL_S)
    polled = threading.Event()
    real_poll = api.poll

    def spy(*args, **kwargs):
        try:
            return real_poll(*args, **kwargs)
        finally:
            polled.set()

    monkeypatch.setattr(api, "poll", spy)
    job, run = _claimed_job()
    out: dict = {}

    def waiter():
        out["result"] = api.wait(job.id, timeout=POLL_S * 2)

    thread = threading.Thread(target=waiter)
    thread.start()
    assert polled.wait(10), "the waiter never read its job"
    listener = listener_for(None)
    _wait_until(lambda: listener is not None and listener.listening, "the LISTEN connection")
    ended = time.monotonic()
    assert complete_job(run.id, run.attempt, run.lease_token, {"n": 1})
    thread.join(POLL_S)
    assert out.get("result") == {"n": 1}
    assert time.monotonic() - ended < WOKEN_WITHIN_S


def test_an_aio_wait_is_woken_by_the_jobs_end(pg_db, monkeypatch):
    monkeypatch.setattr(aio, "WAIT_POLL_MIN_S", POLL_S)
    monkeypatch.setattr(aio, "WAIT_POLL_MAX_S", POLL_S)
    job, run = _claimed_job()
    real_poll = aio.poll

    async def main():
        polled = asyncio.Event()

        async def spy(*args, **kwargs):
            try:
                return await real_poll(*args, **kwargs)
            finally:
                polled.set()

        monkeypatch.setattr(aio, "poll", spy)
        waiting = asyncio.create_task(aio.wait(job.id, timeout=POLL_S * 2))
        await asyncio.wait_for(polled.wait(), 10)  # its first read is done: it waits POLL_S
        listener = listener_for(None)
        give_up = time.monotonic() + 10
        while not (listener and listener.listening and listener.subscribers):
            assert time.monotonic() < give_up, "the waiter never subscribed"
            await asyncio.sleep(0.01)
        ended = time.monotonic()
        await asyncio.to_thread(complete_job, run.id, run.attempt, run.lease_token, {"n": 2})
        result = await asyncio.wait_for(waiting, POLL_S)
        await aio.close()
        return result, time.monotonic() - ended

    result, took = asyncio.run(main())
    assert result == {"n": 2} and took < WOKEN_WITHIN_S
