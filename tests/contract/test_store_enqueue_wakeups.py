"""Enqueue's wake-up and its cost in round trips (issue 13, item 11).

The wake-up reaches a listening supervisor on both engines (SQLite: a datagram after the
commit; PostgreSQL: a NOTIFY inside the INSERT itself), and only once the jobs are
committed. On PostgreSQL an ``enqueue`` is one round trip (it was two: the INSERT, then
``SELECT pg_notify``) and ``enqueue_many`` a few per chunk of 1,000 (it was one per row).
"""

from __future__ import annotations

import select

import pytest

import jobtui
from jobtui.models import Job
from jobtui.supervisor.wakeup import WakeListener

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def listener(db):
    wake = WakeListener(db, "wake-test")
    assert wake.fileno() is not None
    yield wake
    wake.close()


def _woken(wake: WakeListener, timeout: float) -> bool:
    readable = select.select([wake.fileno()], [], [], timeout)[0]
    assert wake.drain()
    return bool(readable)


def test_every_enqueue_wakes_the_supervisors_once_committed(db, listener):
    jobtui.enqueue("wk.a")
    assert _woken(listener, 5)
    jobtui.enqueue_many("wk.a", [{"args": [n]} for n in range(1500)])
    assert _woken(listener, 5)
    assert Job.select().count() == 1501
    later = jobtui.enqueue("wk.a", delay=60)
    assert _woken(listener, 5)
    assert listener.take_due() == [later.run_at.isoformat(sep=" ", timespec="microseconds")]
    with db.atomic():  # the application's transaction: no wake-up before its commit
        jobtui.enqueue("wk.a", database=db)
        assert not _woken(listener, 0.3)
    assert _woken(listener, 5)


class _Counting:
    """A cursor that counts what it sends: each execute is one round trip, executemany
    one per row."""

    def __init__(self, cursor, sent: list[str]) -> None:
        self._cursor, self._sent = cursor, sent

    def execute(self, sql, params=None):
        self._sent.append(sql.split(None, 1)[0])
        return self._cursor.execute(sql, params)

    def executemany(self, sql, rows):
        rows = list(rows)
        self._sent.extend(["executemany"] * len(rows))
        return self._cursor.executemany(sql, rows)

    def __getattr__(self, name):
        return getattr(self._cursor, name)


def test_postgresql_enqueue_costs_one_round_trip_and_a_few_per_thousand(db, monkeypatch):
    if db.__class__.__name__ != "PostgresDatabase":
        pytest.skip("round trips to a server (SQLite runs in-process)")
    jobtui.enqueue("wk.b")  # the first by this name looks up the task's defaults once
    sent: list[str] = []
    real_cursor = type(db).cursor
    monkeypatch.setattr(type(db), "cursor", lambda self, *a: _Counting(real_cursor(self, *a), sent))
    jobtui.enqueue("wk.b")
    assert sent == ["WITH"], sent  # the INSERT, its NOTIFY inside
    sent.clear()
    jobtui.enqueue_many("wk.b", [{"args": [n]} for n in range(2500)])
    assert len(sent) <= 4, sent  # three INSERTs (the BEGIN rides on the first), COMMIT
    assert Job.select().count() == 2502
