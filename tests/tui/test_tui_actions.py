"""Every console action, driven by keys, asserted on what the database holds afterwards.

Runs on SQLite and PostgreSQL (the ``db`` fixture). Each test can fail: it checks the row
before and after, and the confirmations that must (or must not) appear.
"""

from __future__ import annotations

import pytest
from tui_dbjobs import db_app, make_job, make_jobs, make_worker, status_of
from tui_helpers import press, run_pilot, settle

from jobtui.models import Job, Queue
from jobtui.tui.screens.detail import JobDetailScreen
from jobtui.tui.screens.jobs import JobsScreen
from jobtui.tui.screens.modals import (
    ConfirmScreen,
    EnqueueScreen,
    HelpScreen,
    TypedConfirmScreen,
)
from jobtui.tui.screens.queues import QueuesScreen
from jobtui.tui.screens.workers import WorkerDetailScreen
from jobtui.tui.widgets.keyed_table import KeyedTable


def table_keys(app) -> list[str]:
    return app.screen.query_one("#jobs-table", KeyedTable).keys


def toasts(app) -> list[str]:
    return [n.message for n in app._notifications]


def test_cancel_asks_with_the_summary_and_focus_on_no(db):
    job = make_job(task="tests.mail")

    async def scenario(pilot):
        await press(pilot, "c")
        assert isinstance(pilot.app.screen, ConfirmScreen)
        assert "tests.mail" in pilot.app.screen.body_text
        assert pilot.app.focused.id == "no"
        await press(pilot, "enter")  # enter on the focused No: nothing happens
        assert status_of(job) == "pending"
        await press(pilot, "c", "y")
        assert status_of(job) == "cancelled"

    run_pilot(db_app(db), scenario)


def test_retry_needs_no_confirmation(db):
    job = make_job(status="failed", retry_count=3)

    async def scenario(pilot):
        await press(pilot, "R")
        assert not isinstance(pilot.app.screen, ConfirmScreen)
        row = Job.get_by_id(job)
        assert (row.status, row.retry_count) == ("pending", 0)
        assert any("retrying 1 job" in t for t in toasts(pilot.app))

    run_pilot(db_app(db), scenario)


def test_kill_asks_the_supervisor_to_kill_the_running_job_now(db):
    job = make_job(status="running", worker_name="sup-1-w1")

    async def scenario(pilot):
        await press(pilot, "K")
        assert isinstance(pilot.app.screen, ConfirmScreen)
        await press(pilot, "y")
        row = Job.get_by_id(job)
        assert row.status == "running" and row.cancel_requested  # the supervisor kills it
        assert row.kill_requested and row.cancel_reason == "killed by operator"

    run_pilot(db_app(db), scenario)


def test_cancel_asks_the_running_job_to_stop_first(db):
    job = make_job(status="running", worker_name="sup-1-w1")

    async def scenario(pilot):
        await press(pilot, "c", "y")
        row = Job.get_by_id(job)
        assert row.status == "running" and row.cancel_requested and not row.kill_requested

    run_pilot(db_app(db), scenario)


def test_kill_leaves_jobs_that_are_not_running(db):
    job = make_job()

    async def scenario(pilot):
        await press(pilot, "K", "y")
        assert status_of(job) == "pending"
        assert any("nothing to kill" in t for t in toasts(pilot.app))

    run_pilot(db_app(db), scenario)


def test_delete_after_yes(db):
    job = make_job(status="failed")

    async def scenario(pilot):
        await press(pilot, "D")
        assert isinstance(pilot.app.screen, ConfirmScreen)
        await press(pilot, "n")
        assert status_of(job) == "failed"
        await press(pilot, "D", "y")
        assert status_of(job) is None
        assert job not in table_keys(pilot.app)

    run_pilot(db_app(db), scenario)


def test_priority_up_and_down(db):
    job = make_job()

    async def scenario(pilot):
        await press(pilot, "plus", "plus", "plus", "minus")
        assert Job.get_by_id(job).priority == 2

    run_pilot(db_app(db), scenario)


def test_pause_and_resume_a_queue(db):
    make_job(queue="emails")

    async def scenario(pilot):
        await press(pilot, "2")
        await press(pilot, "p")
        assert Queue.get_by_id("emails").paused is True
        await press(pilot, "p")
        assert Queue.get_by_id("emails").paused is False

    run_pilot(db_app(db), scenario)


def test_pause_resume_and_run_a_schedule_now(db):
    import jobtui
    from jobtui.models import Schedule

    jobtui.schedule("nightly", "0 3 * * *", "tests.report", args=[1])

    async def scenario(pilot):
        await press(pilot, "5")
        await press(pilot, "p")
        assert Schedule.get(Schedule.name == "nightly").enabled is False
        await press(pilot, "p")
        assert Schedule.get(Schedule.name == "nightly").enabled is True
        await press(pilot, "n")
        (job,) = Job.select().where(Job.job_type == "tests.report")
        assert job.args == [1] and job.status == "pending"
        assert any("enqueued now" in text for text in toasts(pilot.app))

    run_pilot(db_app(db), scenario)


def test_enqueue_form_writes_the_job(db):
    async def scenario(pilot):
        await press(pilot, "e")
        assert isinstance(pilot.app.screen, EnqueueScreen)
        form = pilot.app.screen
        form.query_one("#task").value = "tests.report"
        form.query_one("#arguments").value = '{"name": "daily [x]"}'
        form.query_one("#queue").value = "reports"
        form.query_one("#delay").value = "60"
        form.query_one("#priority").focus()
        await press(pilot, *"high")  # typed, as a person would: a level's name is let in
        await press(pilot, "enter")
        assert not isinstance(pilot.app.screen, EnqueueScreen)
        job = Job.get(Job.job_type == "tests.report")
        assert (job.queue_name, job.priority, job.kwargs) == ("reports", 10, {"name": "daily [x]"})
        assert (job.run_at - job.created_at).total_seconds() >= 59
        assert job.id in table_keys(pilot.app)

    run_pilot(db_app(db), scenario)


def test_enqueue_form_refuses_bad_json(db):
    async def scenario(pilot):
        await press(pilot, "e")
        form = pilot.app.screen
        form.query_one("#task").value = "tests.report"
        form.query_one("#arguments").value = "[1, 2"
        await press(pilot, "enter")
        assert isinstance(pilot.app.screen, EnqueueScreen)
        assert "not valid JSON" in str(form.query_one("#form-error").render())
        assert Job.select().count() == 0
        await press(pilot, "escape")
        assert isinstance(pilot.app.screen, JobsScreen)

    run_pilot(db_app(db), scenario)


def test_marked_jobs_confirm_with_counts(db):
    jobs = make_jobs(3)
    other = make_job(queue="other")  # newest: first row, left unmarked

    async def scenario(pilot):
        await press(pilot, "down", "space", "space", "space")
        assert set(pilot.app.screen.marked) == set(jobs)
        await press(pilot, "c")
        assert isinstance(pilot.app.screen, ConfirmScreen)
        assert pilot.app.screen.title_text == "Cancel 3 jobs?"
        assert "3 pending" in pilot.app.screen.body_text
        await press(pilot, "y")
        assert {status_of(j) for j in jobs} == {"cancelled"}
        assert status_of(other) == "pending"
        assert not pilot.app.screen.marked

    run_pilot(db_app(db), scenario)


def test_all_matching_needs_the_count_typed(db):
    failed = [make_job(status="failed") for _ in range(4)]
    pending = make_job()

    async def scenario(pilot):
        await press(pilot, "slash")
        for char in "state:failed":
            await pilot.press(char)
        await press(pilot, "enter", "asterisk", "R")
        assert isinstance(pilot.app.screen, TypedConfirmScreen)
        await press(pilot, "3", "enter")  # the wrong count: nothing happens
        assert {status_of(j) for j in failed} == {"failed"}
        await press(pilot, "R", "4", "enter")
        assert {status_of(j) for j in failed} == {"pending"}
        assert status_of(pending) == "pending"

    run_pilot(db_app(db), scenario)


def test_read_only_hides_and_refuses_every_write(db):
    job = make_job(status="failed")

    async def scenario(pilot):
        app = pilot.app
        shown = {b.binding.action for b in app.screen.active_bindings.values()}
        assert not shown & {"cancel", "retry", "kill", "delete", "enqueue"}
        await press(pilot, "c", "R", "D", "plus", "e")
        assert isinstance(app.screen, JobsScreen)
        assert (status_of(job), Job.get_by_id(job).priority) == ("failed", 0)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Job: retry" not in titles and "View: Failures" in titles
        await press(pilot, "2", "p")
        assert Queue.select().count() == 0

    run_pilot(db_app(db, read_only=True), scenario)


def test_palette_runs_the_same_actions(db):
    job = make_job(status="failed")

    async def scenario(pilot):
        app = pilot.app
        command = next(c for c in app.get_system_commands(app.screen) if c.title == "Job: retry")
        app.call_later(command.callback)  # as the palette runs it
        await settle(pilot)
        assert status_of(job) == "pending"
        await press(pilot, "ctrl+p")
        for char in "Job: delete":
            await pilot.press(char)
        await settle(pilot)
        await press(pilot, "enter")
        assert isinstance(app.screen, ConfirmScreen)
        await press(pilot, "y")
        assert status_of(job) is None

    run_pilot(db_app(db), scenario)


def test_filter_applies_on_enter_and_esc_clears_it(db):
    failed = make_job(status="failed")
    pending = make_job(queue="emails")

    async def scenario(pilot):
        await press(pilot, "slash")
        assert pilot.app.focused.id == "filter-input"
        for char in "state:failed":
            await pilot.press(char)
        await press(pilot, "enter")
        assert table_keys(pilot.app) == [failed]
        assert pilot.app.focused.id == "jobs-table"
        await press(pilot, "slash", "escape")
        assert table_keys(pilot.app) == [pending, failed]
        assert pilot.app.focused.id == "jobs-table"

    run_pilot(db_app(db), scenario)


def test_a_bad_filter_is_reported_and_kept(db):
    make_job()

    async def scenario(pilot):
        await press(pilot, "slash")
        for char in "colour:red":
            await pilot.press(char)
        await press(pilot, "enter")
        assert pilot.app.focused.id == "filter-input"
        assert any("unknown key" in t for t in toasts(pilot.app))
        assert len(table_keys(pilot.app)) == 1

    run_pilot(db_app(db), scenario)


def test_queue_enter_opens_its_jobs(db):
    make_job(queue="emails")
    other = make_job(queue="orders")

    async def scenario(pilot):
        await press(pilot, "2", "down", "enter")
        assert pilot.app.current_mode == "queues"  # a drill-down of the Queues view
        assert table_keys(pilot.app) == [other]
        assert pilot.app.screen.query_state.filter.queues == ("orders",)
        await press(pilot, "escape")
        assert isinstance(pilot.app.screen, QueuesScreen)

    run_pilot(db_app(db), scenario)


def test_failure_group_retry_all(db):
    group = [make_job(status="failed", error_message=f"user {n} not found") for n in range(3)]
    lone = make_job(status="failed", error_type="KeyError", error_message="'sku'")

    async def scenario(pilot):
        await press(pilot, "4", "enter")
        assert isinstance(pilot.app.screen, JobsScreen) and pilot.app.screen.pinned
        assert set(table_keys(pilot.app)) == set(group)
        await press(pilot, "asterisk", "R", "3", "enter")
        assert {status_of(j) for j in group} == {"pending"}
        assert status_of(lone) == "failed"

    run_pilot(db_app(db), scenario)


def test_go_to_worker_and_back_to_its_job(db):
    job = make_job(status="running", worker_name="sup-1-w1")
    make_worker("sup-1-w1", job_id=job)

    async def scenario(pilot):
        await press(pilot, "w")
        assert isinstance(pilot.app.screen, WorkerDetailScreen)
        assert "sup-1-w1" in str(pilot.app.screen.query_one("#worker-text").render())
        await press(pilot, "o")
        assert isinstance(pilot.app.screen, JobDetailScreen)
        assert pilot.app.screen.job_id == job
        await press(pilot, "escape", "escape")
        assert isinstance(pilot.app.screen, JobsScreen)

    run_pilot(db_app(db), scenario)


def test_the_worker_detail_shows_its_job_as_it_is_now(db):
    """The worker row is written once per heartbeat: after its job completed it still
    said busy with that job until the next beat. The jobs table is newer."""
    job = make_job(status="running", worker_name="sup-1-w1")
    make_worker("sup-1-w1", job_id=job)

    async def scenario(pilot):
        await press(pilot, "3", "down", "enter")
        screen = pilot.app.screen
        assert isinstance(screen, WorkerDetailScreen)
        text = str(screen.query_one("#worker-text").render())
        assert "busy" in text and job in text
        Job.update(status="completed").where(Job.id == job).execute()  # the beat lags
        await press(pilot, "ctrl+r")
        text = str(screen.query_one("#worker-text").render())
        assert "busy" not in text and job not in text and "idle" in text
        later = make_job(status="running", worker_name="sup-1-w1")  # begun since the beat
        await press(pilot, "ctrl+r")
        text = str(screen.query_one("#worker-text").render())
        assert "busy" in text and later in text

    run_pilot(db_app(db), scenario)


def test_workers_view_opens_the_current_job(db):
    job = make_job(status="running", worker_name="sup-1-w1")
    make_worker("sup-1-w1", job_id=job)

    async def scenario(pilot):
        await press(pilot, "3")
        table = pilot.app.screen.query_one("#workers-table", KeyedTable)
        assert table.keys == ["sup-1", "sup-1-w1"]
        await press(pilot, "down", "o")
        assert isinstance(pilot.app.screen, JobDetailScreen) and pilot.app.screen.job_id == job

    run_pilot(db_app(db), scenario)


def test_detail_actions_and_tabs(db):
    job = make_job(status="failed")

    async def scenario(pilot):
        await press(pilot, "enter")
        screen = pilot.app.screen
        assert isinstance(screen, JobDetailScreen)
        await press(pilot, "right_square_bracket")
        assert screen.query_one("#tabs").active == "parameters"
        await press(pilot, "t")
        assert screen.query_one("#tabs").active == "traceback"
        await press(pilot, "left_square_bracket", "left_square_bracket")
        assert screen.query_one("#tabs").active == "parameters"
        await press(pilot, "R")
        assert status_of(job) == "pending"

    run_pilot(db_app(db), scenario)


def test_refresh_freeze_and_help(db):
    first = make_job()

    async def scenario(pilot):
        app = pilot.app
        second = make_job()
        assert table_keys(app) == [first]
        await press(pilot, "ctrl+r")
        assert table_keys(app) == [second, first]
        await press(pilot, "s")  # the jobs table: oldest first, and back
        assert table_keys(app) == [first, second]
        await press(pilot, "s")
        assert table_keys(app) == [second, first]
        await press(pilot, "Z")
        assert app.frozen and app._poll_timer is None
        assert "frozen" in str(app.screen.query_one("#status").render())
        await press(pilot, "Z")
        assert not app.frozen and app._poll_timer is not None
        await press(pilot, "question_mark")
        assert isinstance(app.screen, HelpScreen)
        await press(pilot, "escape")
        assert isinstance(app.screen, JobsScreen)

    run_pilot(db_app(db, refresh_interval=60.0), scenario)


@pytest.mark.parametrize("key", ["q", "escape"])
def test_q_quits_at_the_root_and_esc_never_does(db, key):
    make_job()

    async def scenario(pilot):
        await press(pilot, "enter")
        assert isinstance(pilot.app.screen, JobDetailScreen)
        await press(pilot, key)
        assert isinstance(pilot.app.screen, JobsScreen)
        await press(pilot, key)
        if key == "q":
            assert pilot.app.return_code == 0
        else:
            assert pilot.app.return_code is None and isinstance(pilot.app.screen, JobsScreen)
            assert any("q quits" in t for t in toasts(pilot.app))

    run_pilot(db_app(db), scenario)


def test_a_slash_inside_the_filter_is_text(db):
    job = make_job(task="tests.a/b")
    make_job(task="tests.other")

    async def scenario(pilot):
        await pilot.press("slash", *"a/b")  # no settling between the keys
        await press(pilot, "enter")
        assert pilot.app.screen.query_state.filter.text == ("a/b",)
        assert table_keys(pilot.app) == [job]

    run_pilot(db_app(db), scenario)
