"""The console under trouble: database errors, rows that move or vanish, markup in data."""

from __future__ import annotations

from tui_dbjobs import db_app, make_job, make_jobs, make_worker
from tui_fakes import JOBS, StaticSource
from tui_helpers import press, run_pilot, static_app

from jobtui.models import Job, Worker
from jobtui.tui.screens.detail import JobDetailScreen
from jobtui.tui.screens.jobs import WINDOW
from jobtui.tui.screens.workers import WorkerDetailScreen
from jobtui.tui.widgets.keyed_table import KeyedTable
from jobtui.tui.widgets.status import Banner


def jobs_table(app) -> KeyedTable:
    return app.screen.query_one("#jobs-table", KeyedTable)


def banner_text(app) -> str | None:
    banner = app.screen.query_one(Banner)
    return str(banner.render()) if banner.display else None


def test_a_database_error_shows_a_banner_and_polling_goes_on():
    source = StaticSource(fail=ConnectionError("server closed the connection"))

    async def scenario(pilot):
        app = pilot.app
        assert "server closed the connection" in banner_text(app)
        assert jobs_table(app).row_count == 0 and app.is_running
        await press(pilot, "2")  # another view: the same banner, still alive
        assert "server closed" in banner_text(app)
        source.fail = None
        await press(pilot, "1")
        assert banner_text(app) is None
        assert jobs_table(app).row_count == len(JOBS)
        source.fail = OSError("disk I/O error")
        await press(pilot, "ctrl+r")
        assert "disk I/O error" in banner_text(app)
        assert jobs_table(app).row_count == len(JOBS)  # the last good rows stay

    run_pilot(static_app(source), scenario)


def test_polls_continue_after_an_error_with_a_timer(db):
    """A real database error (the table is gone for a moment), then recovery on the next
    scheduled poll: exit_on_error=False and the one-shot chain keep the app alive."""
    make_job()
    from jobtui.models import store

    async def scenario(pilot):
        app = pilot.app
        db.execute_sql("ALTER TABLE jobs RENAME TO jobs_away")
        await press(pilot, "ctrl+r")
        assert banner_text(app) is not None
        failed_polls = app.polls
        for _ in range(500):  # the timer chain goes on through the error (5 s at most)
            if app.polls >= failed_polls + 2:
                break
            await pilot.pause(0.01)
        assert app.polls >= failed_polls + 2 and banner_text(app) is not None
        db.execute_sql("ALTER TABLE jobs_away RENAME TO jobs")
        polls = app.polls
        for _ in range(500):  # the next scheduled poll (0.05 s) recovers; 5 s at most
            if app.polls > polls:
                break
            await pilot.pause(0.01)
        await press(pilot)
        assert banner_text(app) is None and jobs_table(app).row_count == 1

    assert store.current_url()
    run_pilot(db_app(db, refresh_interval=0.05), scenario)


def test_the_cursor_stays_on_its_job_while_rows_move(db):
    jobs = make_jobs(6)

    async def scenario(pilot):
        app = pilot.app
        table = jobs_table(app)
        await press(pilot, "down", "down")
        target = table.current_key()
        assert target == jobs[3]
        newer = make_jobs(3)
        await press(pilot, "ctrl+r")
        assert table.keys[:3] == list(reversed(newer))
        assert table.current_key() == target and table.cursor_row == 5
        Job.delete().where(Job.id.in_(newer + [jobs[5]])).execute()
        await press(pilot, "ctrl+r")
        assert table.current_key() == target and table.cursor_row == 1
        Job.update(status="failed").where(Job.id == target).execute()
        await press(pilot, "ctrl+r")
        assert table.current_key() == target
        assert "failed" in table.get_row(target)[3].plain

    run_pilot(db_app(db), scenario)


def test_moving_past_the_window_pages_by_keyset(db):
    jobs = list(reversed(make_jobs(WINDOW + 60)))  # newest first

    async def scenario(pilot):
        app = pilot.app
        table = jobs_table(app)
        assert table.row_count == WINDOW and app.screen.data.page.more_below
        table.move_cursor(row=WINDOW - 1)
        await press(pilot, "down")  # past the last loaded row: the window slides
        assert table.current_key() == jobs[WINDOW - 1]
        await press(pilot, "down")
        assert table.current_key() == jobs[WINDOW]
        await press(pilot, "G")  # the last page
        assert table.current_key() == jobs[-1]
        assert table.keys == jobs[-WINDOW:]
        table.move_cursor(row=0)
        await press(pilot, "up")  # before the first loaded row: slides back up
        assert table.current_key() == jobs[-WINDOW]
        await press(pilot, "up")
        assert table.current_key() == jobs[-WINDOW - 1]
        await press(pilot, "g")  # back to the head, following new jobs
        assert table.current_key() == jobs[0] and app.screen.query_state.top is None

    run_pilot(db_app(db), scenario)


def test_a_deleted_job_never_crashes_its_detail_screen(db):
    job = make_job(status="failed", error_message="boom [/x]")

    async def scenario(pilot):
        app = pilot.app
        await press(pilot, "enter")
        assert isinstance(app.screen, JobDetailScreen)
        Job.delete().where(Job.id == job).execute()
        await press(pilot, "ctrl+r", "right_square_bracket", "a")
        assert "no longer exists" in str(app.screen.query_one("#overview-text").render())
        await press(pilot, "R", "D")  # nothing selected: no modal, no crash
        assert isinstance(app.screen, JobDetailScreen)
        await press(pilot, "escape")
        assert jobs_table(app).row_count == 0

    run_pilot(db_app(db), scenario)


def test_a_vanished_worker_never_crashes_its_screen(db):
    job = make_job(status="running", worker_name="s-w1")
    make_worker("s-w1", "s", job_id=job)

    async def scenario(pilot):
        app = pilot.app
        await press(pilot, "w")
        assert isinstance(app.screen, WorkerDetailScreen)
        Worker.delete().execute()
        await press(pilot, "ctrl+r", "o")
        assert "is gone" in str(app.screen.query_one("#worker-text").render())
        assert isinstance(app.screen, WorkerDetailScreen)

    run_pilot(db_app(db), scenario)


def test_markup_in_job_data_is_shown_as_text(db):
    job = make_job(status="failed", error_type="E[/x]", error_message="[bold]x[/y] [/]")
    Job.update(parameters={"args": ["[/red]"], "kwargs": {}}, title="[link=x]t[/link]").where(
        Job.id == job
    ).execute()

    async def scenario(pilot):
        app = pilot.app
        assert jobs_table(app).get_row(job)[-1].plain == "E[/x]: [bold]x[/y] [/]"
        await press(pilot, "enter", "right_square_bracket", "t", "a", "enter")
        assert isinstance(app.screen, JobDetailScreen)
        await press(pilot, "4")
        assert app.screen.query_one("#failures-table", KeyedTable).row_count == 1

    run_pilot(db_app(db), scenario)


def test_only_the_active_view_is_polled():
    source = StaticSource()

    async def scenario(pilot):
        assert [c for c in source.calls if c != "header"] == ["jobs_view"]
        source.calls.clear()
        await press(pilot, "4")
        assert [c for c in source.calls if c != "header"] == ["failures_view"]

    run_pilot(static_app(source), scenario)


def test_the_detail_shows_the_tasks_progress_details(db):
    """Seed 002's details dict: the Overview shows it under the progress message, as
    ``key value`` pairs, counts with separators; text values stay literal text."""
    make_job(status="running", progress_percentage=40, progress_message="importing",
             progress_details={"rows": 1200, "phase": "[b]load[/b]"})  # fmt: skip

    async def scenario(pilot):
        app = pilot.app
        await press(pilot, "enter", "ctrl+r")
        assert isinstance(app.screen, JobDetailScreen)
        shown = str(app.screen.query_one("#progress-message").render())
        assert "importing" in shown and "rows 1,200" in shown and "phase [b]load[/b]" in shown

    run_pilot(db_app(db), scenario)
