"""The console's edit-and-retry form and Audit view, driven by keys on a real database
(SQLite and PostgreSQL), asserted on what the database holds afterwards."""

from __future__ import annotations

from hostile import HOSTILE, acting_chars
from textual.widgets import Input, Static
from tui_dbjobs import db_app, make_job
from tui_helpers import press, run_pilot, settle

import jobtui
from jobtui.models import Job, JobAttempt
from jobtui.models.audit import AuditEntry
from jobtui.tui.screens.audit import AuditScreen
from jobtui.tui.screens.detail import JobDetailScreen
from jobtui.tui.screens.modals import RetryScreen
from jobtui.tui.widgets.keyed_table import KeyedTable


def failed_with(args, kwargs=None, **fields) -> str:
    job_id = make_job(status="failed", **fields)
    Job.update(parameters={"args": args, "kwargs": kwargs or {}}).where(Job.id == job_id).execute()
    JobAttempt.insert(job=job_id, attempt=1, outcome="failed", error_message="boom").execute()
    return job_id


async def open_detail(pilot, job_id: str) -> None:
    pilot.app.push_screen(JobDetailScreen(job_id))
    await settle(pilot)


def form_error(app) -> str:
    return str(app.screen.query_one("#form-error", Static).render())


async def set_field(pilot, name: str, value: str) -> None:
    pilot.app.screen.query_one(f"#retry-{name}", Input).value = value
    await settle(pilot)


def test_bad_json_keeps_the_form_open_and_good_json_retries(db):
    job_id = failed_with([1, "a"], {"k": True})

    async def scenario(pilot):
        await open_detail(pilot, job_id)
        await press(pilot, "E")
        form = pilot.app.screen
        assert isinstance(form, RetryScreen)
        assert form.query_one("#retry-args", Input).value == '[1, "a"]'
        assert form.query_one("#retry-kwargs", Input).value == '{"k": true}'
        await set_field(pilot, "args", "[2,")
        await press(pilot, "enter")
        assert pilot.app.screen is form  # still open, the error shown
        assert "args: not valid JSON" in form_error(pilot.app)
        await set_field(pilot, "args", '{"not": "an array"}')
        await press(pilot, "enter")
        assert pilot.app.screen is form and "args: a JSON array" in form_error(pilot.app)
        assert Job.get_by_id(job_id).status == "failed" and not AuditEntry.select().exists()
        await set_field(pilot, "args", "[2, 3]")
        await set_field(pilot, "priority", "7")
        await set_field(pilot, "queue", "fixes")
        await press(pilot, "enter")
        assert not isinstance(pilot.app.screen, RetryScreen)
        job = Job.get_by_id(job_id)
        assert job.status == "pending" and job.parameters == {"args": [2, 3], "kwargs": {"k": True}}
        assert (job.priority, job.queue_name) == (7, "fixes")
        [row] = AuditEntry.select()
        assert (row.action, row.where, row.count) == ("edit", "console", 1)
        # the Parameters tab keeps what the first attempt ran with
        Job.update(status="failed").where(Job.id == job_id).execute()
        await press(pilot, "ctrl+r")
        text = str(pilot.app.screen.query_one("#parameters-text", Static).render())
        assert "attempt 1 ran with" in text and '"a"' in text

    run_pilot(db_app(db), scenario)


def test_escape_closes_the_form_without_a_retry(db):
    job_id = failed_with([1])

    async def scenario(pilot):
        await open_detail(pilot, job_id)
        await press(pilot, "E", "escape")
        assert isinstance(pilot.app.screen, JobDetailScreen)
        assert Job.get_by_id(job_id).status == "failed" and not AuditEntry.select().exists()

    run_pilot(db_app(db), scenario)


def test_a_live_job_opens_no_form(db):
    job_id = make_job()

    async def scenario(pilot):
        await open_detail(pilot, job_id)
        await press(pilot, "E")
        assert isinstance(pilot.app.screen, JobDetailScreen)
        assert any("only a failed or cancelled job" in n.message for n in pilot.app._notifications)

    run_pilot(db_app(db), scenario)


def test_the_failures_view_edits_the_groups_newest_job(db):
    job_id = failed_with([1])

    async def scenario(pilot):
        await press(pilot, "4", "E")
        assert isinstance(pilot.app.screen, RetryScreen) and pilot.app.screen.job_id == job_id
        await set_field(pilot, "kwargs", '{"fixed": 1}')
        await press(pilot, "enter")
        assert Job.get_by_id(job_id).parameters == {"args": [1], "kwargs": {"fixed": 1}}

    run_pilot(db_app(db), scenario)


def test_hostile_parameters_are_shown_visibly_and_kept_exactly(db):
    text = "".join(HOSTILE[name] for name in sorted(HOSTILE))  # every case, in one string
    job_id = failed_with([text], {"note": text})

    async def scenario(pilot):
        await open_detail(pilot, job_id)
        await press(pilot, "E")
        form = pilot.app.screen
        assert isinstance(form, RetryScreen)
        for field in ("args", "kwargs", "queue"):
            assert acting_chars(form.query_one(f"#retry-{field}", Input).value) == ""
        await set_field(pilot, "priority", "3")  # the arguments left as shown
        await press(pilot, "enter")
        job = Job.get_by_id(job_id)
        assert job.parameters == {"args": [text], "kwargs": {"note": text}}  # exact, not the shown
        assert job.priority == 3 and job.status == "pending"

    run_pilot(db_app(db), scenario)


def test_the_audit_view_lists_actions_in_a_read_only_console_too(db):
    job_id = make_job()
    every = "".join(t for t in HOSTILE.values() if "\x00" not in t)
    jobtui.cancel(job_id, reason=every, actor=every)
    jobtui.schedule("nightly", "0 2 * * *", "t.task", actor="deploy-bot")

    async def scenario(pilot):
        await press(pilot, "7")
        assert isinstance(pilot.app.screen, AuditScreen)
        table = pilot.app.screen.query_one("#audit-table", KeyedTable)
        assert len(table.keys) == 2
        cells = [str(table.get_cell_at((row, col))) for row in range(2) for col in range(7)]
        assert "schedule add" in cells and "cancel" in cells and "api" in cells
        assert all(acting_chars(cell) == "" for cell in cells)

    run_pilot(db_app(db, read_only=True), scenario)


def test_console_actions_show_up_in_the_audit_view(db):
    job_id = make_job()

    async def scenario(pilot):
        await press(pilot, "c", "y")
        assert Job.get_by_id(job_id).status == "cancelled"
        await press(pilot, "7")
        table = pilot.app.screen.query_one("#audit-table", KeyedTable)
        assert [str(table.get_cell_at((0, col))) for col in (2, 3, 4, 5)] == [
            "console", "cancel", job_id, "1"]  # fmt: skip

    run_pilot(db_app(db), scenario)
