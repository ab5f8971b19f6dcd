"""supervisor/quiet_poll.py: on SQLite the safety poll is skipped while no other connection
has committed since the last full poll (``PRAGMA data_version``), never for longer than
``FULL_POLL_MAX_S``; on PostgreSQL every poll runs."""

from __future__ import annotations

import sqlite3

from jobtui.models.db import is_sqlite
from jobtui.supervisor.quiet_poll import FULL_POLL_MAX_S, ChangeWatch


def _commit_elsewhere(db_url: str) -> None:
    other = sqlite3.connect(db_url.removeprefix("sqlite:///"))
    other.execute("CREATE TABLE IF NOT EXISTS probe (x)")
    other.execute("INSERT INTO probe VALUES (1)")
    other.commit()
    other.close()


def test_a_poll_is_skipped_only_while_nothing_was_committed_elsewhere(db, db_url):
    watch = ChangeWatch(db)
    if not is_sqlite(db):  # no counter to read: every poll is full
        assert [watch.quiet(t) for t in (0.0, 0.1, 0.2)] == [False, False, False]
        return
    assert watch.quiet(0.0) is False  # the first poll is full
    assert watch.quiet(0.2) is True
    with db.atomic():  # our own commits change nothing we must look at
        db.execute_sql("CREATE TABLE ours (x)")
        db.execute_sql("INSERT INTO ours VALUES (1)")
    assert watch.quiet(0.4) is True
    _commit_elsewhere(db_url)  # a job, a schedule, a cancel request from another process
    assert watch.quiet(0.6) is False
    assert watch.quiet(0.8) is True
    assert watch.quiet(0.6 + FULL_POLL_MAX_S) is False  # a full poll at least this often
    assert watch.quiet(0.7 + FULL_POLL_MAX_S) is True
    watch.forget()  # the full poll's transaction was refused: the next poll runs
    assert watch.quiet(1.0 + FULL_POLL_MAX_S) is False
    db.close()  # a new connection: its counter starts afresh, so the poll is full
    db.connect()
    assert watch.quiet(1.2 + FULL_POLL_MAX_S) is False
    assert watch.quiet(1.4 + FULL_POLL_MAX_S) is True
