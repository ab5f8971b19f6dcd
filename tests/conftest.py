"""Shared fixtures: the database under test, on SQLite and on PostgreSQL.

``db_url`` is parametrised over both engines, so every test that takes it (or ``db``)
runs twice — the contract suite (STYLE.md, the saq pattern). PostgreSQL tests use a
database of their own per test session (``jobtui_test_<pid>``) so that concurrent runs
on one server never meet; they skip, with the reason shown, where no server answers.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from jobtui.models import store
from jobtui.models.migrations import SCHEMA_VERSION

PG_ADMIN_DSN = os.environ.get("JOBTUI_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
TABLES = ("job_rollup", "job_attempts", "job_dependencies", "schedule_fires", "workers",
          "supervisors", "schedules", "batches", "queues", "jobs", "task_catalog", "audit_log",
          "alerts", "rates", "key_limits",
          "fair_keys")  # fmt: skip


def _pg_connect(dsn: str):
    import psycopg2

    return psycopg2.connect(dsn, connect_timeout=3)


@pytest.fixture(scope="session")
def pg_base_url() -> Iterator[str]:
    """A PostgreSQL database created for this test session, dropped at its end."""
    try:
        admin = _pg_connect(PG_ADMIN_DSN)
    except Exception as exc:  # noqa: BLE001 - any failure means: no server to test against
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_DSN}: {str(exc).strip()}")
    admin.autocommit = True
    name = f"jobtui_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        store.reset()
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _truncate_pg(url: str) -> None:
    conn = _pg_connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('jobs') IS NOT NULL")
        if cur.fetchone()[0]:
            cur.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
            cur.execute("UPDATE jobtui_schema SET version = %s", (SCHEMA_VERSION,))
    conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A URL of an empty jobtui database, on each engine in turn."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.db'}"
    url = request.getfixturevalue("pg_base_url")
    _truncate_pg(url)
    return url


@pytest.fixture
def db(db_url: str, monkeypatch: pytest.MonkeyPatch):
    """The current jobtui database, opened and migrated, on each engine in turn."""
    store.reset()
    monkeypatch.setenv("JOBTUI_DATABASE", db_url)
    database = store.use_database(db_url)
    yield database
    store.reset()


@pytest.fixture
def sqlite_db(tmp_path, monkeypatch: pytest.MonkeyPatch):
    """A SQLite-only database, for tests of SQLite behaviour."""
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    store.reset()
    monkeypatch.setenv("JOBTUI_DATABASE", url)
    database = store.use_database(url)
    yield database
    store.reset()
