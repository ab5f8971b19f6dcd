"""Transactions stay whole on both engines; on PostgreSQL the BEGIN rides with the first
statement (models/db.py, PostgresDatabase), so these check it is never lost or left over:
a statement inside is rolled back with the block, a cursor used directly (executemany)
is inside too, an empty block leaves no transaction open, and a BEGIN noted before a
reconnect does not wrap the next connection's statements."""

from __future__ import annotations

import pytest

from jobtui.models.db import open_database
from jobtui.models.dialect import dialect_for

INSERT = "INSERT INTO queues (name, paused, updated_at) VALUES ({p}, {p}, '2026-01-01')"
COUNT = "SELECT COUNT(*) FROM queues WHERE substr(name, 1, 3) = 'tx-'"


def _p(db) -> str:
    return "?" if dialect_for(db).name == "sqlite" else "%s"


def _count_elsewhere(db_url: str) -> int:
    """What another connection sees: only committed rows."""
    other = open_database(db_url)
    try:
        return other.execute_sql(COUNT).fetchone()[0]
    finally:
        other.close()


class Boom(Exception):
    pass


def test_a_statement_inside_a_failed_block_is_rolled_back(db, db_url):
    with pytest.raises(Boom), dialect_for(db).write_transaction(db):
        db.execute_sql(INSERT.format(p=_p(db)), ("tx-a", False))
        raise Boom
    assert _count_elsewhere(db_url) == 0
    with dialect_for(db).write_transaction(db):
        db.execute_sql(INSERT.format(p=_p(db)), ("tx-b", False))
    assert _count_elsewhere(db_url) == 1


def test_a_cursor_used_directly_is_inside_the_block(db, db_url):
    with pytest.raises(Boom), dialect_for(db).write_transaction(db):
        db.cursor().executemany(INSERT.format(p=_p(db)), [("tx-c", False), ("tx-d", True)])
        raise Boom
    assert _count_elsewhere(db_url) == 0


def test_an_empty_block_leaves_no_transaction_open(db, db_url):
    with dialect_for(db).write_transaction(db):
        pass
    db.execute_sql(INSERT.format(p=_p(db)), ("tx-e", False))  # autocommit: seen at once
    assert _count_elsewhere(db_url) == 1
    assert not db.in_transaction()


def test_a_begin_noted_before_a_reconnect_is_void(db, db_url):
    if dialect_for(db).name != "postgresql":
        pytest.skip("the deferred BEGIN is PostgreSQL's")
    db.begin()  # noted, not sent
    db.close()
    db.connect()
    db.execute_sql(INSERT.format(p=_p(db)), ("tx-f", False))  # not inside a stale BEGIN
    assert _count_elsewhere(db_url) == 1


def _cut(db, db_url) -> None:
    """End ``db``'s server session and wait until it is gone (what a restart does)."""
    import time

    mine = db.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
    other = open_database(db_url)
    try:
        other.execute_sql("SELECT pg_terminate_backend(%s)", (mine,))
        give_up = time.monotonic() + 10
        while other.execute_sql(
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s", (mine,)
        ).fetchone():
            assert time.monotonic() < give_up, "the session did not end"
            time.sleep(0.01)
    finally:
        other.close()


def test_a_connection_cut_while_idle_is_replaced_and_one_cut_in_a_transaction_fails(db, db_url):
    """What a PostgreSQL restart does. Between statements: the dead connection is replaced
    before the next one (before, every later statement failed: "connection already
    closed"). Inside a transaction: its work is gone with the connection, so it fails as
    Peewee's error, which every caller handles (not the driver's), and nothing is left."""
    import peewee

    if dialect_for(db).name != "postgresql":
        pytest.skip("a server to cut the connection (SQLite has none)")
    _cut(db, db_url)
    assert db.execute_sql("SELECT 1").fetchone() == (1,)
    _cut(db, db_url)
    with dialect_for(db).write_transaction(db):  # BEGIN finds the connection dead: replaced
        db.execute_sql(INSERT.format(p=_p(db)), ("tx-g", False))
    assert _count_elsewhere(db_url) == 1
    with pytest.raises(peewee.PeeweeException), dialect_for(db).write_transaction(db):
        db.execute_sql(INSERT.format(p=_p(db)), ("tx-h", False))
        _cut(db, db_url)
        db.execute_sql(INSERT.format(p=_p(db)), ("tx-i", False))
    assert _count_elsewhere(db_url) == 1  # neither tx-h nor tx-i
    assert not db.in_transaction()
    assert db.execute_sql("SELECT 1").fetchone() == (1,)  # and the next statement reconnects
