"""Transactional enqueue through the application's session, with a real supervisor whose
safety poll is a minute: a committed job runs within seconds, so the wake-up came, and
came after the commit (one sent before it would have found nothing to claim, leaving the
job for the next poll); a rolled-back job never exists and never runs. SQLAlchemy
(Session, AsyncSession) and Django, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Session
from supervisor_harness import never

import jobtui
from jobtui.integrations.sqlalchemy import aenqueue
from jobtui.models.job import Job

CONTRACT = Path(__file__).parent.parent / "contract"
sys.path.insert(0, str(CONTRACT))  # the shared helpers of the integration tests
from app_sessions import sqlalchemy_url  # noqa: E402

pytestmark = pytest.mark.timeout(90)

#: Longer than any wait below: only a wake-up can make a job run in time.
SLOW_POLL = ("--poll-interval", "60")
ADD = "supervisor_tasks.add"


def _exists(job_id: str) -> bool:
    return Job.select().where(Job.id == job_id).exists()


def test_sqlalchemy_session_commit_runs_the_job_rollback_leaves_none(cluster, db_url):
    cluster.start(*SLOW_POLL, workers=1)
    driver = "pysqlite" if cluster.is_sqlite else "psycopg2"
    engine = create_engine(sqlalchemy_url(db_url, driver))
    try:
        with Session(engine) as session:
            dropped = jobtui.enqueue(ADD, args=[1, 1], session=session)
            session.rollback()
        with Session(engine) as session:
            job = jobtui.enqueue(ADD, args=[2, 3], session=session)
            never(lambda: _exists(job.id), 0.5, "the job seen before the commit")
            session.commit()
    finally:
        engine.dispose()
    rows = cluster.wait_status([job.id], ["completed"], timeout=15)
    assert rows[job.id].result["value"] == 5  # supervisor_tasks wraps results
    assert not _exists(dropped.id) and cluster.execlog.started(dropped.id, 1) is None


def test_async_session_commit_runs_the_job_rollback_leaves_none(cluster, db_url):
    cluster.start(*SLOW_POLL, workers=1)
    url = sqlalchemy_url(db_url, "aiosqlite" if cluster.is_sqlite else "psycopg")

    async def enqueue_both() -> tuple[str, str]:
        engine = create_async_engine(url)
        try:
            async with AsyncSession(engine) as session:
                dropped = await aenqueue(session, ADD, args=[1, 1])
                await session.rollback()
            async with AsyncSession(engine) as session:
                job = await aenqueue(session, ADD, args=[4, 5])
                await session.commit()
            return job.id, dropped.id
        finally:
            await engine.dispose()

    job_id, dropped_id = asyncio.run(enqueue_both())
    assert cluster.wait_status([job_id], ["completed"], timeout=15)[job_id].result["value"] == 9
    assert not _exists(dropped_id)


def test_django_atomic_commit_runs_the_job(cluster, db_url):
    cluster.start(*SLOW_POLL, workers=1)
    env = dict(os.environ, PYTHONPATH=str(CONTRACT), JOBTUI_DATABASE=db_url,
               JOBTUI_TEST_TASK=ADD, JOBTUI_TEST_ARGS="[6, 7]")  # fmt: skip
    done = subprocess.run([sys.executable, str(CONTRACT / "django_app.py"), db_url, "commit"],
                          env=env, capture_output=True, text=True, timeout=45)  # fmt: skip
    assert done.returncode == 0, done.stderr
    job_id = json.loads(done.stdout.strip().splitlines()[-1])["job"]
    row = cluster.wait_status([job_id], ["completed"], timeout=15)[job_id]
    assert row.result["value"] == 13
