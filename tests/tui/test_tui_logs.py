"""Issue 16 in the console: the job detail's Logs tab (tailed live) and the live stack
key, on fixed data and on a real database; hostile log text stays data."""

from __future__ import annotations

import json

from hostile import HOSTILE, acting_chars
from tui_dbjobs import db_app, make_job
from tui_fakes import JOBS, STACK_ANSWER, StaticSource
from tui_helpers import press, run_pilot, settle, static_app

from jobtui.models.clock import utcnow
from jobtui.models.dialect import dialect_for
from jobtui.models.joblog import INSERT_CHUNK, LogLine
from jobtui.tui.screens.detail import JobDetailScreen


def plain(app, selector: str) -> str:
    return str(app.screen.query_one(selector).visual)


def test_l_opens_the_logs_tab_with_the_jobs_lines():
    async def scenario(pilot):
        await press(pilot, "enter", "l")  # the running job's detail
        screen = pilot.app.screen
        assert isinstance(screen, JobDetailScreen)
        assert screen.query_one("#tabs").active == "logs"
        text = plain(pilot.app, "#logs-text")
        assert "out connecting to smtp.example.com:587" in text
        assert "log INFO emails: sending the March newsletter" in text
        assert "err warning: a@example.org bounced" in text
        assert "(running: new lines appear as the job writes them)" in text

    run_pilot(static_app(), scenario)


def test_shift_s_shows_the_live_stack_of_the_job():
    source = StaticSource()

    async def scenario(pilot):
        await press(pilot, "enter", "S")
        await settle(pilot)
        assert source.stack_asks == [JOBS[0].id]
        screen = pilot.app.screen
        assert screen.query_one("#tabs").active == "stack"
        text = plain(pilot.app, "#stack-text")
        assert "Thread main (runs the job), innermost frame last:" in text
        assert text.index("send_newsletter") < text.index("in wait_ok")  # innermost last
        assert "(10 frames of the worker above the task left out)" in text

    run_pilot(static_app(source), scenario)
    assert STACK_ANSWER["threads"][0]["frames"][-1]["function"] == "wait_ok"


def test_hostile_log_lines_are_shown_not_acted_on():
    source = StaticSource()
    source.log_lines = tuple(LogLine(1, 1.0e9 + n, "out", text)
                             for n, text in enumerate(HOSTILE.values()))  # fmt: skip

    async def scenario(pilot):
        await press(pilot, "enter", "l")
        text = plain(pilot.app, "#logs-text")
        assert acting_chars(text.replace("\n", "")) == ""
        assert len([line for line in text.splitlines() if line[:2].isdigit()]) == len(HOSTILE)

    run_pilot(static_app(source), scenario)


def _chunk(db, job_id: str, seq: int, lines: list[str]) -> None:
    rows = [[1.7e9 + seq + n / 10, "out", text] for n, text in enumerate(lines)]
    with dialect_for(db).write_transaction(db):
        db.execute_sql(dialect_for(db).sql(INSERT_CHUNK), {
            "id": job_id, "attempt": 1, "seq": seq, "at": utcnow(), "lines": json.dumps(rows),
            "dropped": 0, "dropped_lines": 0})  # fmt: skip


def test_the_logs_tab_tails_a_running_job_from_the_database(db):
    job = make_job(status="running", started_at=utcnow())
    _chunk(db, job, 0, ["first line", "second line"])

    async def scenario(pilot):
        await press(pilot, "enter", "l")
        text = plain(pilot.app, "#logs-text")
        assert "out first line" in text and "out second line" in text
        _chunk(db, job, 1, ["third line"])
        await press(pilot, "ctrl+r")  # the next poll
        text = plain(pilot.app, "#logs-text")
        assert text.index("second line") < text.index("third line")
        assert text.count("first line") == 1  # appended, not read again

    run_pilot(db_app(db), scenario)


def test_stack_of_a_job_that_is_not_running_says_why(db):
    make_job(status="completed")

    async def scenario(pilot):
        await press(pilot, "enter", "S")
        await settle(pilot)
        text = plain(pilot.app, "#stack-text")
        assert "is not running (it is completed)" in text

    run_pilot(db_app(db), scenario)
