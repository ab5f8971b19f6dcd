"""``enqueue(..., session=...)`` with SQLAlchemy, on SQLite and PostgreSQL: the job rows
are written in the session's transaction (commit: there, rollback: gone, with the
application's own rows), through sync ``Session`` (sqlite3, psycopg2, psycopg 3) and
``AsyncSession`` (aiosqlite, psycopg 3 async), with the task catalog's defaults; the
supervisors' wake-up is sent only after the commit."""

from __future__ import annotations

import asyncio

import pytest
from app_sessions import WakeWatch, publish, sqlalchemy_url
from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Session

import jobtui
from jobtui import aio
from jobtui.integrations.sqlalchemy import aenqueue
from jobtui.models.errors import ConfigurationError
from jobtui.models.job import Job

pytestmark = pytest.mark.timeout(60)

ORDERS = "CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, item TEXT)"


def _sync_driver(db_url: str, which: int = 0) -> str:
    return "pysqlite" if db_url.startswith("sqlite") else ("psycopg2", "psycopg")[which]


@pytest.fixture
def engine(db, db_url):
    engine = create_engine(sqlalchemy_url(db_url, _sync_driver(db_url)))
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS orders"))  # PostgreSQL keeps it
        connection.execute(text(ORDERS))
    yield engine
    engine.dispose()


def _jobs() -> list[Job]:
    return list(Job.select().order_by(Job.created_at))  # jobtui's own connection


def _orders(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT COUNT(*) FROM orders")).scalar_one()


def test_commit_writes_the_job_with_the_applications_rows(engine):
    with Session(engine) as session:
        session.execute(text("INSERT INTO orders (id, item) VALUES (1, 'book')"))
        job = jobtui.enqueue("shop.ship", args=[1], session=session, priority=4)
        assert job is not None and job.status == "pending"
        assert _jobs() == []  # not visible to anyone else before the commit
        session.commit()
    [row] = _jobs()
    assert (row.id, row.job_type, row.parameters["args"], row.priority) == (
        job.id,
        "shop.ship",
        [1],
        4,
    )
    assert _orders(engine) == 1


def test_rollback_leaves_no_job(engine):
    with Session(engine) as session:
        session.execute(text("INSERT INTO orders (id, item) VALUES (2, 'pen')"))
        jobtui.enqueue("shop.ship", args=[2], session=session)
        jobtui.enqueue("shop.ship", args=[3], session=session, unique_key="ship:3")
        session.rollback()
    assert _jobs() == [] and _orders(engine) == 0


def test_an_exception_in_the_block_leaves_no_job(engine):
    class Refused(Exception):
        pass

    with pytest.raises(Refused), Session(engine) as session, session.begin():
        jobtui.enqueue("shop.ship", args=[4], session=session)
        raise Refused
    assert _jobs() == []


def test_unique_keys_and_dependencies_inside_the_transaction(engine):
    with Session(engine) as session:
        first = jobtui.enqueue("shop.ship", args=[5], session=session, unique_key="ship:5")
        again = jobtui.enqueue("shop.ship", args=[5], session=session, unique_key="ship:5")
        after = jobtui.enqueue("shop.mail", session=session, depends_on=[first.id])
        assert again.id == first.id and after.status == "waiting"
        session.commit()
    assert sorted(j.job_type for j in _jobs()) == ["shop.mail", "shop.ship"]


def test_psycopg3_sessions_too(db, db_url):
    if db_url.startswith("sqlite"):
        pytest.skip("psycopg 3 is PostgreSQL's")
    engine = create_engine(sqlalchemy_url(db_url, "psycopg"))
    try:
        with Session(engine) as session:
            jobtui.enqueue("shop.ship", args=[6], session=session)
            session.rollback()
        with Session(engine) as session:
            job = jobtui.enqueue("shop.ship", args=[7], session=session)
            session.commit()
    finally:
        engine.dispose()
    assert [j.id for j in _jobs()] == [job.id]


def test_the_task_catalogs_defaults_apply(db, engine):
    publish(db, "shop.ship", queue="shipping", max_retries=7, priority=3)
    with Session(engine) as session:
        jobtui.enqueue("shop.ship", args=[8], session=session, priority=9)
        session.commit()
    [row] = _jobs()
    assert (row.queue_name, row.max_retries, row.priority) == ("shipping", 7, 9)


def test_the_wake_up_is_sent_after_the_commit_only(engine, db_url):
    watch = WakeWatch(db_url)
    try:
        with Session(engine) as session:
            jobtui.enqueue("shop.ship", args=[9], session=session)
            assert watch.received(timeout=0.3) == []  # not while the job is invisible
            session.commit()
            assert watch.received(timeout=5) == ["!"]
        with Session(engine) as session:
            jobtui.enqueue("shop.ship", args=[10], session=session)
            session.rollback()
        assert watch.received(timeout=0.3) == []  # a rollback wakes no one
        session = Session(engine)
        jobtui.enqueue("shop.ship", args=[10], session=session)
        session.close()  # rolls back, with no after_rollback event
        session.execute(text("INSERT INTO orders (id, item) VALUES (5, 'cup')"))
        session.commit()  # a later transaction of the same session, with no job
        session.close()
        assert watch.received(timeout=0.3) == []
        with Session(engine) as session:  # the next transaction of a session wakes again
            jobtui.enqueue("shop.ship", args=[11], session=session, delay=60)
            session.commit()
            [due] = watch.received(timeout=5)
            assert due != "!"  # the job's due time, for the supervisors' timer
    finally:
        watch.close()


def test_a_database_without_jobtuis_tables_is_refused(tmp_path):
    from jobtui.integrations import sqlalchemy as integration

    engine = create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    try:
        with (
            Session(engine) as session,
            pytest.raises(ConfigurationError, match="no jobtui tables"),
        ):
            jobtui.enqueue("shop.ship", session=session)
    finally:
        engine.dispose()
        integration._checked_urls.clear()


@pytest.mark.parametrize("outcome", ["commit", "rollback"])
@pytest.mark.parametrize("pg_driver", ["psycopg", "asyncpg"])
def test_async_sessions(db, db_url, outcome, pg_driver):
    if db_url.startswith("sqlite") and pg_driver == "asyncpg":
        pytest.skip("one async SQLite driver: aiosqlite")
    url = sqlalchemy_url(db_url, "aiosqlite" if db_url.startswith("sqlite") else pg_driver)

    async def run() -> str:
        engine = create_async_engine(url)
        try:
            async with AsyncSession(engine) as session:
                job = await aenqueue(session, "shop.ship", args=[12], priority=2)
                many = await aio.enqueue_many("shop.ship", [{"args": [13]}], session=session)
                await getattr(session, outcome)()
            async with AsyncSession(engine) as session:
                other = await aio.enqueue("shop.ship", args=[14], session=session)
                await getattr(session, outcome)()
            return [job.id, many[0].id, other.id]
        finally:
            await engine.dispose()

    ids = asyncio.run(run())
    assert sorted(j.id for j in _jobs()) == (sorted(ids) if outcome == "commit" else [])


def test_an_async_session_is_refused_from_sync_code(db, db_url):
    engine = create_async_engine(
        sqlalchemy_url(db_url, "aiosqlite" if db_url.startswith("sqlite") else "psycopg")
    )
    with pytest.raises(ConfigurationError, match="aio.enqueue"):
        jobtui.enqueue("shop.ship", session=AsyncSession(engine))
    asyncio.run(engine.dispose())


@pytest.mark.parametrize("which", [0, 1], ids=["psycopg2", "psycopg"])
def test_enqueue_many_in_the_session(db, db_url, which):
    if db_url.startswith("sqlite") and which:
        pytest.skip("psycopg 3 is PostgreSQL's")
    engine = create_engine(sqlalchemy_url(db_url, _sync_driver(db_url, which)))
    try:
        with Session(engine) as session:
            jobtui.enqueue_many("shop.ship", [{"args": [1]}, {"args": [2]}], session=session)
            session.rollback()
        assert _jobs() == []
        with Session(engine) as session:
            jobs = jobtui.enqueue_many(
                "shop.ship", [{"args": [n]} for n in range(300)], session=session, priority=1
            )
            session.commit()
    finally:
        engine.dispose()
    assert [j.parameters["args"] for j in jobs[:2]] == [[0], [1]]
    assert sorted(j.id for j in _jobs()) == sorted(j.id for j in jobs)


def test_a_refused_enqueue_leaves_the_applications_transaction_usable(engine):
    """A job refused by the database step (an unknown dependency) is undone to its own
    savepoint: on PostgreSQL the application's transaction is not left aborted."""
    from jobtui.models.errors import InvalidJob

    with Session(engine) as session:
        session.execute(text("INSERT INTO orders (id, item) VALUES (3, 'ink')"))
        with pytest.raises(InvalidJob, match="unknown job"):
            jobtui.enqueue("shop.ship", session=session, depends_on=["no-such-job"])
        session.execute(text("INSERT INTO orders (id, item) VALUES (4, 'pad')"))
        jobtui.enqueue("shop.ship", args=[13], session=session)
        session.commit()
    assert _orders(engine) == 2 and len(_jobs()) == 1


def test_eager_mode_runs_the_job_when_the_session_commits(engine):
    @jobtui.task(name="shop.double")
    def double(x: int) -> int:
        return 2 * x

    with jobtui.eager(), Session(engine) as session:
        job = jobtui.enqueue(double, args=[21], session=session)
        assert job.status == "pending" and _jobs() == []
        session.commit()
    [row] = _jobs()
    assert (row.status, row.result) == ("completed", 42)
    with jobtui.eager(), Session(engine) as session:
        jobtui.enqueue(double, args=[1], session=session)
        session.rollback()
    assert len(_jobs()) == 1


def test_asyncpg_takes_jobtuis_sql(db, db_url):
    """asyncpg: ``$1`` placeholders and values of the parameter's type (timestamps as
    datetimes), through unique keys, dependencies, delays, the catalog and a bulk insert."""
    if db_url.startswith("sqlite"):
        pytest.skip("asyncpg is PostgreSQL's")
    publish(db, "shop.ship", queue="shipping")

    async def run() -> list[str]:
        engine = create_async_engine(sqlalchemy_url(db_url, "asyncpg"))
        try:
            async with AsyncSession(engine) as session:
                first = await aio.enqueue("shop.ship", args=[1], session=session,
                                          unique_key="u1", delay=60, tags=["a"])  # fmt: skip
                again = await aio.enqueue("shop.ship", args=[1], session=session, unique_key="u1")
                after = await aio.enqueue("shop.mail", session=session, depends_on=[first.id])
                many = await aio.enqueue_many("shop.mail", [{"args": [n]} for n in range(3)],
                                              session=session)  # fmt: skip
                assert again.id == first.id and after.status == "waiting"
                await session.commit()
            return [first.id, after.id, *(j.id for j in many)]
        finally:
            await engine.dispose()

    ids = asyncio.run(run())
    jobs = {j.id: j for j in _jobs()}
    assert sorted(jobs) == sorted(ids)
    assert jobs[ids[0]].queue_name == "shipping" and jobs[ids[0]].scheduled_for is not None


@pytest.mark.parametrize("driver", ["psycopg", "asyncpg"])
def test_async_sessions_wake_after_the_commit_only(db, db_url, driver):
    if db_url.startswith("sqlite") and driver == "asyncpg":
        pytest.skip("one async SQLite driver: aiosqlite")
    url = sqlalchemy_url(db_url, "aiosqlite" if db_url.startswith("sqlite") else driver)
    watch = WakeWatch(db_url)

    async def run() -> tuple[list[str], list[str], list[str]]:
        engine = create_async_engine(url)
        try:
            async with AsyncSession(engine) as session:
                await aio.enqueue("shop.ship", session=session)
                inside = watch.received(timeout=0.3)
                await session.commit()
            after = watch.received(timeout=5)
            async with AsyncSession(engine) as session:
                await aio.enqueue("shop.ship", session=session)
                await session.rollback()
            return inside, after, watch.received(timeout=0.3)
        finally:
            await engine.dispose()

    try:
        assert asyncio.run(run()) == ([], ["!"], [])
    finally:
        watch.close()


def test_a_failed_notify_never_aborts_the_applications_transaction(engine, db_url, monkeypatch):
    """The poke swallows its errors; on the application's PostgreSQL connection one would
    leave the transaction aborted, to fail or vanish at commit. Its savepoint makes the
    enqueue raise instead, and the transaction goes on."""
    from jobtui.models import wakeup

    if db_url.startswith("sqlite"):
        pytest.skip("the NOTIFY is PostgreSQL's")
    monkeypatch.setattr(wakeup, "CHANNEL", "")  # pg_notify refuses an empty channel
    with Session(engine) as session:
        with pytest.raises(jobtui.JobtuiError, match="channel name"):  # jobtui's own error
            jobtui.enqueue("shop.ship", session=session)
        session.execute(text("INSERT INTO orders (id, item) VALUES (6, 'mug')"))
        session.commit()
    assert _orders(engine) == 1


def test_a_session_enqueue_inside_a_batch_is_refused(engine):
    """A batch writes its jobs in its own transaction: a job cannot also be in the
    application's, so it is refused rather than silently written outside the session."""
    from jobtui.models.errors import InvalidJob

    with Session(engine) as session, pytest.raises(InvalidJob, match="batch"):
        with jobtui.batch():
            jobtui.enqueue("shop.ship", session=session)
    assert _jobs() == []
