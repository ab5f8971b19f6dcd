"""Issue 12: job text with escape sequences (a window title, a screen clear, C1, bidi) is
shown with its control characters visible in every view of the console, never emitted.

Each check renders the whole screen as the terminal would get it (the compositor's full
update) and looks at the text of every segment: no ESC, BEL, C1 or bidi override may be in
it, and the escaped form (``␛[31mRED``) must be, so the text is still there to read.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from hostile import HOSTILE, PWNED, acting_chars
from textual.widgets import Input
from tui_dbjobs import db_app, make_job, make_worker
from tui_fakes import StaticSource
from tui_helpers import press, run_pilot, static_app

from jobtui.models import Job, JobAttempt
from jobtui.models.clock import utcnow
from jobtui.tui import formatting as fmt
from jobtui.tui.screens.detail import JobDetailScreen
from jobtui.tui.screens.modals import ConfirmScreen
from jobtui.tui.screens.workers import WorkerDetailScreen

SHOWN = "␛[31mRED␛[0m [red]x[/red] ␛]0;PWNED␇ ␛[2J clear"
#: Every case in one string (PostgreSQL text cannot hold NUL: that one is left out here).
EVERY_CASE = " | ".join(v for k, v in sorted(HOSTILE.items()) if k != "very_long").replace(
    "\x00", ""
)


def screen_text(app) -> str:
    """What the terminal would be sent for the current screen, without the styling."""
    update = app.screen._compositor.render_full_update()
    return "\n".join(
        "".join(seg.text for strip in line for seg in strip if not seg.control)
        for line in update.strips
    )


def assert_safe(app, *expected: str) -> str:
    text = screen_text(app)
    leaked = acting_chars(text.replace("\n", ""))
    assert leaked == "", f"{type(app.screen).__name__} emits {leaked!r}"
    for piece in expected:
        assert piece in text, f"{piece!r} not on {type(app.screen).__name__}"
    return text


def hostile_jobs() -> tuple[str, str]:
    """A failed job whose every text field is hostile, and a running one whose progress
    message and worker are."""
    running = make_job(task="tests.render", status="running", progress_percentage=40.0,
                       progress_message=PWNED, worker_name="w\x1b]0;PWNED\x07-1")  # fmt: skip
    make_worker(name="w\x1b]0;PWNED\x07-1", job_id=running)
    failed = make_job(task="tests.\x1b[2Jboom", status="failed", error_message=PWNED,
                      error_type="Runtime\x9bError", title=PWNED, description=EVERY_CASE,
                      error_traceback="Traceback (most recent call last):\n  " + EVERY_CASE,
                      user_id="u\u202eser")  # fmt: skip
    Job.update(parameters={"args": [PWNED, HOSTILE["c1_csi"]], "kwargs": {"k": EVERY_CASE}},
               result={"r": PWNED, "bidi": HOSTILE["bidi_override"]}).where(
        Job.id == failed).execute()  # fmt: skip
    now = utcnow()
    JobAttempt.create(job=failed, attempt=1, worker_name="w\x1b[31m", host="h\x07",
                      pid=7, outcome="failed", error_type="RuntimeError",
                      error_message=PWNED, error_traceback="tb\n" + PWNED,
                      started_at=now - timedelta(seconds=3), ended_at=now)  # fmt: skip
    return failed, running


def test_every_view_shows_hostile_job_text_without_emitting_it(db):
    failed, running = hostile_jobs()

    async def scenario(pilot):
        app = pilot.app
        assert_safe(app, "␛[31mRED", "tests.␛[2Jboom")  # jobs table, progress, workers pane
        table = app.screen.query_one("#jobs-table")
        table.move_cursor(row=table.get_row_index(failed))
        await press(pilot, "enter")
        assert isinstance(app.screen, JobDetailScreen)
        assert_safe(app, "title      " + SHOWN, "Runtime\\x9bError", "u\\u202eser")
        await press(pilot, "right_square_bracket")  # parameters
        assert_safe(app, "\\u009b31mC1-CSI", "\\u001b[31mRED")
        await press(pilot, "right_square_bracket")  # result
        assert_safe(app, "\\u202egnp.exe")
        await press(pilot, "t")
        assert_safe(app, "Traceback (most recent call last):", "␛]0;PWNED␇")
        await press(pilot, "a", "enter")
        assert_safe(app, "attempt 1: failed", "h␇ pid 7", SHOWN)
        await press(pilot, "D")  # delete asks first, quoting the job's task
        assert isinstance(app.screen, ConfirmScreen)
        assert_safe(app, "tests.␛[2Jboom")
        await press(pilot, "escape")
        app.notify("toast " + PWNED, title="t\x1b]0;x\x07", markup=True)
        await pilot.pause()
        toast = list(app._notifications)[-1]  # run_test renders no toasts: check the message
        assert (toast.message, toast.title, toast.markup) == ("toast " + SHOWN, "t␛]0;x␇", False)
        app.clear_notifications()
        await press(pilot, "escape", "4")  # failures, grouped by type and message
        assert_safe(app, "Runtime\\x9bE", "␛[<n>mRED")  # numbers blanked; the column cuts
        await press(pilot, "enter")  # that group's jobs, the group in the breadcrumb
        assert_safe(app, "Runtime\\x9bError: ␛[<n>mRED")
        await press(pilot, "escape", "3")  # workers
        assert_safe(app, "w␛]0;PWNED␇-1")
        await press(pilot, "down", "enter")  # the worker under its supervisor
        assert isinstance(app.screen, WorkerDetailScreen)
        assert_safe(app, "w␛]0;PWNED␇-1", SHOWN)

    run_pilot(db_app(db), scenario)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_every_cell_builder_shows_controls(name):
    """The builders every view uses for job text (formatting.py)."""
    value = HOSTILE[name]
    for cell in (fmt.text(value), fmt.text(fmt.clip(value, 40)), fmt.error_text("E\x1b", value),
                 fmt.block(value)):  # fmt: skip
        assert acting_chars(cell.plain.replace("\n", "")) == ""
    assert "\n" not in fmt.text(value).plain and "\n" not in fmt.clip(value, 40)


def test_the_enqueue_form_suggests_no_task_name_holding_controls():
    class Names(StaticSource):
        def task_names(self) -> list[str]:
            return ["jobs.good", "jobs.\x1b]0;PWNED\x07bad", "jobs.\u202ebidi"]

    async def scenario(pilot):
        await press(pilot, "e")
        suggester = pilot.app.screen.query_one("#task", Input).suggester
        assert suggester._suggestions == ["jobs.good"]

    run_pilot(static_app(Names()), scenario)


def test_progress_details_show_their_controls(db):
    """The task's progress details (seed 002) are job text too: keys and values."""
    make_job(task="tests.render", status="running", progress_percentage=40.0,
             progress_message="m", progress_details={"k\x1b[2J": PWNED, "all": EVERY_CASE})  # fmt: skip

    async def scenario(pilot):
        await press(pilot, "enter", "ctrl+r")
        assert isinstance(pilot.app.screen, JobDetailScreen)
        assert_safe(pilot.app, "k␛[2J", "␛[31mRED")

    run_pilot(db_app(db), scenario)
