"""View behaviour on fixed data: sorting, drill-downs, palette entries, launch errors."""

from __future__ import annotations

from dataclasses import replace

import pytest
from rich.console import Console
from tui_fakes import DELAYED, FIXED_NOW, GROUPS, JOBS, QUEUES, SCHEDULES, StaticSource
from tui_helpers import burst, press, run_pilot, settle, static_app

from jobtui.tui import run_console
from jobtui.tui.keymap import keymap_rows
from jobtui.tui.screens.detail import JobDetailScreen
from jobtui.tui.screens.jobs import JobsScreen
from jobtui.tui.screens.modals import help_table
from jobtui.tui.screens.queues import QueuesScreen
from jobtui.tui.screens.scheduled import schedule_cells
from jobtui.tui.widgets.keyed_table import KeyedTable


def test_s_cycles_the_sort_column_of_a_table():
    async def scenario(pilot):
        await press(pilot, "2")
        table = pilot.app.screen.query_one("#queues-table", KeyedTable)
        assert table.keys == [q.name for q in QUEUES]
        await press(pilot, "s", "s")  # queue name, then reversed
        assert table.keys == sorted((q.name for q in QUEUES), reverse=True)
        await press(pilot, "s")  # the next column (paused), ascending: the paused queue last
        assert table.keys[-1] == "orders"
        for _ in range(2 * 15 + 1 - 3):  # a full cycle is 31 presses: none, each column twice
            await pilot.press("s")
        await press(pilot)
        assert table.sort_column is None and table.keys == [q.name for q in QUEUES]

    run_pilot(static_app(), scenario)


def test_slash_filters_the_other_views_by_text_and_esc_clears_it():
    """TUI.md: ``/`` filters every table. Outside the Jobs view (which has its grammar) it
    keeps the rows holding every word typed, across polls, until esc."""

    async def scenario(pilot):
        await press(pilot, "2", "slash", *"ORD", "enter")
        screen = pilot.app.screen
        table = screen.query_one("#queues-table", KeyedTable)
        assert table.keys == ["orders"] and screen.focused is table
        assert screen.query_one("#table-filter").display  # shown while it filters
        await press(pilot, "ctrl+r")  # a fresh poll keeps the filter
        assert table.keys == ["orders"]
        await press(pilot, "escape")  # clears the filter, stays on the view
        assert table.keys == [q.name for q in QUEUES] and pilot.app.screen is screen
        assert not screen.query_one("#table-filter").display

        await press(pilot, "3", "slash", *"busy host-1", "enter")  # every word must match
        workers = pilot.app.screen.query_one("#workers-table", KeyedTable)
        assert workers.keys == ["host-1-w1", "host-1-w2"]
        await press(pilot, "slash", "escape")  # esc inside the box clears it too
        assert len(workers.keys) == 5

    run_pilot(static_app(), scenario)


def test_failure_group_and_scheduled_drill_downs():
    async def scenario(pilot):
        await press(pilot, "4", "down", "enter")
        screen = pilot.app.screen
        assert isinstance(screen, JobsScreen) and screen.pinned == GROUPS[1].job_ids
        assert "ValueError" in screen.crumb()
        await press(pilot, "escape", "5", "enter")  # the first schedule's last job
        assert isinstance(pilot.app.screen, JobDetailScreen)

    run_pilot(static_app(), scenario)


def test_every_view_offers_its_actions_in_the_palette():
    async def scenario(pilot):
        app = pilot.app
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Job: cancel", "Job: kill", "Jobs: mark all matching", "Queue: pause / resume",
                "View: Metrics", "Freeze / unfreeze"} <= titles  # fmt: skip
        await press(pilot, "3")
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert "Worker: current job" in titles and "Job: cancel" not in titles

    run_pilot(static_app(), scenario)


def test_marks_show_in_the_table():
    async def scenario(pilot):
        table = pilot.app.screen.query_one("#jobs-table", KeyedTable)
        await press(pilot, "space")
        assert table.get_row(JOBS[0].id)[0].plain.startswith("●")
        assert not table.get_row(JOBS[1].id)[0].plain.startswith("●")
        await press(pilot, "asterisk")
        assert all(table.get_row(j.id)[0].plain.startswith("●") for j in JOBS)
        await press(pilot, "escape")  # esc clears the marks before it would quit
        assert pilot.app.is_running and not pilot.app.screen.all_matching

    run_pilot(static_app(StaticSource()), scenario)


def test_a_bad_database_is_one_line_and_exit_1(tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/missing/folder/jobs.db"
    assert run_console(url, demo=False, read_only=False) == 1
    err = capsys.readouterr().err
    assert err.startswith("jobtui: ") and err.count("\n") == 1 and "does not exist" in err


def test_esc_clears_then_goes_back_and_never_quits():
    """k9s and htop: esc clears the marks or the filter, else goes back to the view the
    drill-down came from; at the root it does nothing. q leaves: back, or quit at the root."""

    async def scenario(pilot):
        app = pilot.app
        await press(pilot, "2", "down", "enter")  # Queues -> enter -> the emails queue's jobs
        drill = app.screen
        assert isinstance(drill, JobsScreen) and app.current_mode == "queues"
        assert drill.query_state.filter.queues == ("emails",)
        assert drill.VIEW == "Queues"  # the header names the view the drill-down is in
        await press(pilot, "space", "escape")  # a mark, cleared by esc
        assert app.screen is drill and not drill.marked
        await press(pilot, "slash", *"state:failed", "enter", "escape")  # the operator's
        assert app.screen is drill and drill.query_state.filter.queues == ("emails",)
        assert not drill.query_state.filter.states  # filter cleared, the queue's kept
        await press(pilot, "escape")
        assert isinstance(app.screen, QueuesScreen)
        await press(pilot, "escape")  # the root: nothing happens
        assert isinstance(app.screen, QueuesScreen) and app.return_code is None
        await press(pilot, "1", "slash", *"state:failed", "enter")
        jobs = app.screen
        assert jobs.query_state.filter.states == ("failed",) and app.focused.id == "jobs-table"
        await press(pilot, "escape", "escape")  # the filter, then nothing
        assert app.screen is jobs and not jobs.query_state.filter.states
        assert app.return_code is None and app.is_running
        await press(pilot, "slash", *"state:failed", "enter", "q")  # q leaves, filter or not
        assert app.return_code == 0

    run_pilot(static_app(), scenario)


def test_keys_typed_fast_after_slash_reach_the_filter_in_order():
    """A terminal delivers a fast "/a/b/c" in one burst: every key after the first "/"
    goes to the filter, in order (it was "//abc": the "/"s jumped the queued letters)."""

    async def scenario(pilot):
        burst(pilot.app, "/a/b/c")
        await settle(pilot)
        assert pilot.app.screen.query_one("#filter-input").value == "a/b/c"
        await press(pilot, "escape", "2")
        burst(pilot.app, "/a/b/c")
        await settle(pilot)
        assert pilot.app.screen.query_one("#table-filter").value == "a/b/c"

    run_pilot(static_app(), scenario)


def test_detail_keys_work_from_the_attempts_tab():
    async def scenario(pilot):
        app = pilot.app
        await press(pilot, *["down"] * 5, "enter", "a")  # the failed job's attempts
        tabs = app.screen.query_one("#tabs")
        assert tabs.active == "attempts" and app.focused.id == "attempts-table"
        steps = (("right_square_bracket", "overview"), ("a", "attempts"),
                 ("left_square_bracket", "stack"), ("a", "attempts"), ("t", "traceback"),
                 ("a", "attempts"), ("l", "logs"), ("a", "attempts"))  # fmt: skip
        for key, tab in steps:
            await press(pilot, key)
            assert tabs.active == tab, key
        await press(pilot, "R")  # the job actions too
        assert app.operations.calls == [("retry", (JOBS[5].id,))]

    run_pilot(static_app(), scenario)


def test_scheduled_keys_act_on_the_focused_tables_highlighted_row():
    async def scenario(pilot):
        app = pilot.app
        await press(pilot, "5")
        assert app.focused.id == "schedules-table"  # focus starts on the schedules
        await press(pilot, "down", "p", "n")
        assert app.operations.calls == [("schedule_enabled", "nightly-report", False),
                                        ("run_schedule_now", "nightly-report")]  # fmt: skip
        await press(pilot, "tab")
        assert app.focused.id == "delayed-table"
        await press(pilot, "p", "n")  # no schedule is highlighted there: nothing runs
        assert len(app.operations.calls) == 2
        await press(pilot, "down", "enter")
        assert isinstance(app.screen, JobDetailScreen) and app.screen.job_id == DELAYED[1].id

    run_pilot(static_app(), scenario)


def test_a_paused_schedule_shows_no_next_runs():
    paused = replace(SCHEDULES[0], enabled=False)
    assert schedule_cells(paused, FIXED_NOW)[3].plain == "paused"
    assert "15s" in schedule_cells(SCHEDULES[0], FIXED_NOW)[3].plain


@pytest.mark.parametrize("width", [68, 94], ids=["80 columns", "120 columns"])
def test_the_help_keeps_every_column_readable(width):
    """The help's text width at 80 and 120 columns: a long key list once squeezed the
    "what" column to one letter."""
    console = Console(width=width, record=True, color_system=None)
    console.print(help_table())
    text = console.export_text()
    for _, _, what in keymap_rows():
        assert what.split()[0] in text, what
