"""The FastAPI example (examples/fastapi_reports) through FastAPI's test client and a real
supervisor, on SQLite and PostgreSQL: a report and its job are written in the request's
transaction, the job runs, and its progress streams back as server-sent events; a dry run
rolls back both."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parents[2] / "examples" / "fastapi_reports"
sys.path.insert(0, str(EXAMPLE))

pytestmark = pytest.mark.timeout(90)


def _events(response) -> list[tuple[str, dict]]:
    """The (event, data) pairs of a server-sent-events stream, read to its end."""
    out, name = [], None
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            out.append((name, json.loads(line[len("data: ") :])))
    return out


@pytest.fixture
def client(cluster, db_url, monkeypatch):
    from fastapi.testclient import TestClient

    from jobtui.models.store import get_database

    get_database().execute_sql("DROP TABLE IF EXISTS reports")  # PostgreSQL keeps it
    cluster.env["PYTHONPATH"] += os.pathsep + str(EXAMPLE)
    cluster.env["JOBTUI_EXAMPLE_PAGE_S"] = "0.05"
    cluster.start("--poll-interval", "60", imports=["tasks"], workers=1)
    import app as example

    with TestClient(example.app) as test_client:
        yield test_client


def test_a_report_job_runs_and_its_progress_streams(client):
    made = client.post("/reports", json={"title": "Monthly", "pages": 4}).json()
    assert made["queued"]
    with client.stream("GET", f"/reports/jobs/{made['job']}/events") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _events(response)
    percents = [data["percent"] for name, data in events if name == "progress"]
    assert percents == sorted(percents) and percents[-1] == 100
    assert any(data["message"] == "page 4 of 4" for _, data in events)
    name, done = events[-1]
    assert name == "done" and done["status"] == "completed"
    assert done["result"] == {"report": made["report"], "pages": 4}


def test_a_dry_run_leaves_neither_report_nor_job(client):
    from jobtui.models.job import Job
    from jobtui.models.store import get_database

    made = client.post("/reports", json={"title": "Preview", "dry_run": True}).json()
    assert not made["queued"]
    assert not Job.select().where(Job.id == made["job"]).exists()
    client.post("/reports", json={"title": "Real", "pages": 1})
    titles = get_database().execute_sql("SELECT title FROM reports").fetchall()
    assert [title for (title,) in titles] == ["Real"]  # the application's row went too
