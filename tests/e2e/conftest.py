"""Fixtures of the supervisor fault tests (``test_supervisor_*.py``): a ``cluster`` of real
supervisors on the ``db`` under test, stopped and checked for leftover processes at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from supervisor_harness import Cluster

from jobtui.models import store


def _closing(group: Cluster) -> Iterator[Cluster]:
    try:
        yield group
    finally:
        try:
            group.close()
        finally:
            print(group.logs()[-20000:])  # shown only when the test failed
            store.reset()


@pytest.fixture
def cluster(db, db_url, tmp_path) -> Iterator[Cluster]:
    """Supervisors on the test's database (SQLite and PostgreSQL in turn)."""
    yield from _closing(Cluster(db_url, tmp_path))


@pytest.fixture
def sqlite_cluster(sqlite_db, tmp_path) -> Iterator[Cluster]:
    """Supervisors on a SQLite file (tests of SQLite's write lock)."""
    yield from _closing(Cluster(f"sqlite:///{tmp_path / 'jobs.db'}", tmp_path))
