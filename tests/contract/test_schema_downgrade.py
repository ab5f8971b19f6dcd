"""Schema downgrades (models/downgrade.py), on SQLite and PostgreSQL: every forward step
has a reverse, a walk down to version 1 and back up passes through the same schemas, and
a live supervisor of a newer schema refuses the downgrade."""

from __future__ import annotations

from datetime import timedelta

import peewee
import pytest

import jobtui
from jobtui.cli_db import SupervisorsAlive, _refuse_newer_supervisors
from jobtui.models import Job, store
from jobtui.models.clock import sql_timestamp, utcnow
from jobtui.models.dialect import dialect_for
from jobtui.models.downgrade import DOWN_STEPS, DowngradeRefused, downgrade_schema
from jobtui.models.heartbeats import register_supervisor
from jobtui.models.migrations import (
    SCHEMA_VERSION,
    STEPS,
    ensure_schema,
    read_schema_version,
)
from jobtui.models.schema_status import live_supervisors, schema_status


def schema_of(db: peewee.Database) -> dict[str, object]:
    """Tables with their columns (name, type, nullability) and indexes (name, columns,
    the predicate of a partial one): what two databases of one schema version share,
    whatever path they took there."""
    out: dict[str, object] = {}
    for table in sorted(db.get_tables()):
        columns = sorted((c.name, c.data_type.lower(), c.null) for c in db.get_columns(table))
        indexes = sorted((i.name, tuple(i.columns), _predicate(i.sql))
                         for i in db.get_indexes(table))  # fmt: skip
        out[table] = (columns, indexes)
    return out


def _predicate(sql: str | None) -> str:
    """A partial index's WHERE, spelled alike whoever wrote it (SQLite keeps the text it
    was given; PostgreSQL prints its own): no quotes, brackets, casts, case or spaces."""
    _, found, where = (sql or "").upper().partition(" WHERE ")
    if not found:
        return ""
    for noise in ('"', "(", ")", " ", "::TEXT[]", "::TEXT", "ARRAY[", "]"):
        where = where.replace(noise, "")
    return where.replace("=ANY", "IN").replace("<>", "!=")


def _upgrade_one(db: peewee.Database, version: int) -> None:
    from playhouse.migrate import SchemaMigrator

    with db.atomic():
        STEPS[version](SchemaMigrator.from_database(db), db)
        db.execute_sql(f"UPDATE jobtui_schema SET version = {version}")


def test_every_forward_step_has_its_reverse():
    assert sorted(DOWN_STEPS) == sorted(STEPS) == list(range(2, SCHEMA_VERSION + 1))


def test_walking_down_to_version_1_and_back_up_passes_the_same_schemas(db, db_url):
    job = jobtui.enqueue("t", args=[1])
    fresh = schema_of(db)
    down = {SCHEMA_VERSION: fresh}
    try:
        for version in range(SCHEMA_VERSION, 1, -1):
            downgrade_schema(db, version - 1)
            assert read_schema_version(db) == version - 1
            down[version - 1] = schema_of(db)
            assert down[version - 1] != down[version], f"step {version}'s reverse did nothing"
        jobs = down[1]["jobs"][0]
        assert not {"cancel_reason", "progress_details", "unset_options"} & {c[0] for c in jobs}
        assert "task_catalog" not in down[1]
        assert "job_attempts_job_id" in {i[0] for i in down[1]["job_attempts"][1]}
        assert db.execute_sql("SELECT COUNT(*) FROM jobs").fetchone()[0] == 1  # rows kept
        for version in range(2, SCHEMA_VERSION + 1):
            _upgrade_one(db, version)
            assert schema_of(db) == down[version], f"schema {version} differs on the way up"
    finally:
        ensure_schema(db)  # leave the shared PostgreSQL database whole for the next test
    store.reset()
    store.use_database(db_url)
    assert Job.get_by_id(job.id).args == [1]


def test_downgrade_then_the_automatic_upgrade_on_open(db, db_url):
    downgrade_schema(db, 3)
    assert "progress_details" not in {c.name for c in db.get_columns("jobs")}
    store.reset()
    store.use_database(db_url)
    assert read_schema_version(db) == SCHEMA_VERSION
    assert "progress_details" in {c.name for c in db.get_columns("jobs")}


def _supervisor(db, name: str, schema: int | None, beat_age_s: float = 0) -> None:
    register_supervisor(db, {"name": name, "host": "h1", "pid": 4242, "state": "running",
                             "process_started_at": None, "version": "9.9",
                             "heartbeat_interval_s": 1.0, "schema_version": schema})  # fmt: skip
    if beat_age_s:
        old = utcnow() - timedelta(seconds=beat_age_s)
        statement = "UPDATE supervisors SET heartbeat_at = :at WHERE name = :name"
        db.execute_sql(dialect_for(db).sql(statement), {"at": sql_timestamp(old), "name": name})


def test_a_live_supervisor_of_a_newer_schema_refuses_the_downgrade(db):
    _supervisor(db, "new-one", SCHEMA_VERSION)
    _supervisor(db, "gone", SCHEMA_VERSION, beat_age_s=60)  # 3 intervals stale: not counted
    live = live_supervisors(db, SCHEMA_VERSION)
    assert [s["name"] for s in live] == ["new-one"]
    assert live[0]["jobtui_version"] == "9.9" and live[0]["schema_version"] == SCHEMA_VERSION
    with pytest.raises(SupervisorsAlive, match=r"new-one \(pid 4242 on h1, schema"):
        downgrade_schema(db, SCHEMA_VERSION - 1, _refuse_newer_supervisors(SCHEMA_VERSION - 1))
    assert read_schema_version(db) == SCHEMA_VERSION  # nothing changed
    assert "schema_version" in {c.name for c in db.get_columns("supervisors")}


def test_supervisors_at_or_below_the_target_do_not_block_it(db):
    _supervisor(db, "old-one", 4)
    _supervisor(db, "unrecorded", None)  # a jobtui before schema 7: at most 6
    downgrade_schema(db, 6, _refuse_newer_supervisors(6))
    assert read_schema_version(db) == 6
    with pytest.raises(SupervisorsAlive, match="old-one.*unrecorded"):
        downgrade_schema(db, 3, _refuse_newer_supervisors(3))
    assert read_schema_version(db) == 6
    ensure_schema(db)


def test_downgrade_refuses_what_it_cannot_do(db):
    with pytest.raises(DowngradeRefused, match="versions start at 1"):
        downgrade_schema(db, 0)
    with pytest.raises(DowngradeRefused, match="upgrade"):
        downgrade_schema(db, SCHEMA_VERSION + 1)
    db.execute_sql("UPDATE jobtui_schema SET version = 999")
    try:
        with pytest.raises(DowngradeRefused, match="newer than this jobtui"):
            downgrade_schema(db, 1)
        assert read_schema_version(db) == 999
        status = schema_status(db)
        assert status["newer_than_this_jobtui"] and not status["upgrade_pending"]
    finally:
        db.execute_sql(f"UPDATE jobtui_schema SET version = {SCHEMA_VERSION}")


def test_status_reports_a_pending_upgrade(db):
    downgrade_schema(db, 4)
    status = schema_status(db)
    assert status["schema_version"] == 4 and status["upgrade_pending"]
    assert status["jobtui_schema_version"] == SCHEMA_VERSION
    ensure_schema(db)
