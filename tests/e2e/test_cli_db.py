"""``jobtui db upgrade | downgrade | status`` through the real console script, beside a
real ``jobtui-supervisor``, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys

import pytest

from jobtui.models import store
from jobtui.models.migrations import SCHEMA_VERSION, ensure_schema, read_schema_version


def jobtui_cli(url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jobtui", "--database", url, *args],
                          input=stdin, capture_output=True, text=True, timeout=60,
                          env=dict(os.environ))  # fmt: skip


def _status(url: str) -> dict:
    done = jobtui_cli(url, "db", "status", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.timeout(90)
def test_downgrade_waits_for_the_newer_supervisors_then_upgrade_restores(cluster, db, db_url):
    sup = cluster.start(workers=1)
    status = _status(db_url)
    assert status["schema_version"] == SCHEMA_VERSION and not status["upgrade_pending"]
    assert [(s["name"], s["schema_version"]) for s in status["supervisors"]] == [
        (sup.name, SCHEMA_VERSION)
    ]
    assert status["supervisors"][0]["jobtui_version"] == status["jobtui_version"]
    assert sup.name in jobtui_cli(db_url, "db", "status").stdout

    refused = jobtui_cli(db_url, "db", "downgrade", "-1", "--yes")
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert f"live supervisor(s) run a newer schema: {sup.name} (pid {sup.pid}" in refused.stderr
    assert read_schema_version(db) == SCHEMA_VERSION

    sup.signal(signal.SIGTERM)
    assert sup.wait_exit() == 0
    try:
        declined = jobtui_cli(db_url, "db", "downgrade", str(SCHEMA_VERSION - 1), stdin="n\n")
        assert declined.returncode == 1 and "nothing was changed" in declined.stderr
        assert f"{SCHEMA_VERSION} -> {SCHEMA_VERSION - 1}: drops" in declined.stdout
        assert read_schema_version(db) == SCHEMA_VERSION

        done = jobtui_cli(db_url, "db", "downgrade", "-2", stdin="y\n")
        assert done.returncode == 0, done.stderr
        assert f"from version {SCHEMA_VERSION} to {SCHEMA_VERSION - 2}" in done.stdout
        assert read_schema_version(db) == SCHEMA_VERSION - 2
        status_index = next(i for i in db.get_indexes("jobs") if i.name == "jobs_status_id")
        assert "WHERE" not in status_index.sql.upper()  # step 15's undone: every job in it
        status = _status(db_url)
        assert status["upgrade_pending"] and status["schema_version"] == SCHEMA_VERSION - 2
        assert read_schema_version(db) == SCHEMA_VERSION - 2  # status read, never migrated

        up = jobtui_cli(db_url, "db", "upgrade")
        assert up.returncode == 0, up.stderr
        assert f"from version {SCHEMA_VERSION - 2} to {SCHEMA_VERSION}" in up.stdout
        assert "nothing to do" in jobtui_cli(db_url, "db", "upgrade").stdout
    finally:
        ensure_schema(db)  # the next test on the shared PostgreSQL database needs it whole
    cluster.start(workers=1)  # a supervisor of this schema runs on the upgraded database


def test_status_never_creates_and_upgrade_creates(tmp_path):
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    done = jobtui_cli(url, "db", "status")
    assert done.returncode == 1 and "nothing was created" in done.stderr
    assert not (tmp_path / "jobs.db").exists()
    assert jobtui_cli(url, "db", "downgrade", "1", "--yes").returncode == 1
    assert not (tmp_path / "jobs.db").exists()
    done = jobtui_cli(url, "db", "upgrade")
    assert done.returncode == 0 and f"version {SCHEMA_VERSION}" in done.stdout
    assert "none alive" in jobtui_cli(url, "db", "status").stdout
    store.reset()


def test_a_newer_database_is_shown_but_never_downgraded_by_an_older_jobtui(tmp_path):
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    assert jobtui_cli(url, "enqueue", "t.x").returncode == 0
    conn = sqlite3.connect(tmp_path / "jobs.db")
    conn.execute("UPDATE jobtui_schema SET version = 999")
    conn.commit()
    status = jobtui_cli(url, "db", "status")
    assert status.returncode == 0 and "written by a newer jobtui" in status.stdout
    done = jobtui_cli(url, "db", "downgrade", "1", "--yes")
    assert done.returncode == 1 and "newer than this jobtui" in done.stderr
    assert jobtui_cli(url, "db", "upgrade").returncode == 1
    assert conn.execute("SELECT version FROM jobtui_schema").fetchone() == (999,)
    assert conn.execute("SELECT COUNT(*) FROM jobs").fetchone() == (1,)
    conn.close()
    store.reset()
