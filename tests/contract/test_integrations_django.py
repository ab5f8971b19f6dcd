"""``enqueue(..., session=connection)`` with Django, on SQLite and PostgreSQL: inside
``transaction.atomic()`` the job commits or rolls back with the application's rows, a
rolled-back savepoint drops its job alone, outside a block the enqueue commits at once,
and the supervisors' wake-up arrives only after the commit. Django's settings are
process-wide, so each scenario runs in a subprocess (django_app.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobtui.models.job import Job

HERE = Path(__file__).parent
pytestmark = pytest.mark.timeout(60)


def _run(db_url: str, scenario: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(HERE), JOBTUI_DATABASE=db_url)
    done = subprocess.run([sys.executable, str(HERE / "django_app.py"), db_url, scenario],
                          env=env, capture_output=True, text=True, timeout=45)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _job_ids() -> list[str]:
    return [job.id for job in Job.select()]


def test_commit_writes_the_job_with_the_applications_rows(db, db_url):
    out = _run(db_url, "commit")
    assert _job_ids() == [out["job"]] and out["orders"] == 1


def test_rollback_leaves_no_job(db, db_url):
    out = _run(db_url, "rollback")
    assert out["job"] and _job_ids() == [] and out["orders"] == 0


def test_outside_atomic_the_enqueue_commits_at_once(db, db_url):
    out = _run(db_url, "autocommit")
    assert _job_ids() == [out["job"]]


def test_enqueue_using_an_alias(db, db_url):
    out = _run(db_url, "using")
    assert _job_ids() == [out["job"]]


def test_a_rolled_back_savepoint_drops_only_its_job(db, db_url):
    out = _run(db_url, "nested")
    assert out["dropped"] and _job_ids() == [out["job"]]


def test_the_wake_up_is_sent_after_the_commit_only(db, db_url):
    out = _run(db_url, "wake")
    assert out["inside"] == [] and out["after"] == ["!"] and out["after_rollback"] == []
