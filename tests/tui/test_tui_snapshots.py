"""Snapshots of every view and every job detail tab at 120×40 and 80×24, on fixed data,
a fixed clock and no timers (TUI.md, "Deterministic tests").

Regenerate after a deliberate change with ``pytest tests/tui --snapshot-update``.
"""

from __future__ import annotations

import pytest
from tui_fakes import StaticSource
from tui_helpers import before, static_app

SIZES = [pytest.param((120, 40), id="120x40"), pytest.param((80, 24), id="80x24")]
VIEWS = {
    "jobs": [],
    "queues": ["2"],
    "workers": ["3"],
    "failures": ["4"],
    "scheduled": ["5"],
    "metrics": ["6"],
    "audit": ["7"],
}
# the failed job (sixth row) holds markup in its error, traceback and parameters
TO_DETAIL = ["down"] * 5 + ["enter"]
TABS = {
    "overview": [],
    "parameters": ["right_square_bracket"],
    "result": ["right_square_bracket", "right_square_bracket"],
    "traceback": ["t"],
    "attempts": ["a", "enter"],
    "logs": ["l"],
    "stack": ["S"],
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("view", list(VIEWS))
def test_view(snap_compare, view, size):
    assert snap_compare(static_app(), terminal_size=size, run_before=before(VIEWS[view]))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("tab", list(TABS))
def test_detail_tab(snap_compare, tab, size):
    assert snap_compare(static_app(), terminal_size=size,
                        run_before=before(TO_DETAIL + TABS[tab]))  # fmt: skip


def test_running_job_detail(snap_compare):
    assert snap_compare(static_app(), terminal_size=(120, 40), run_before=before(["enter"]))


@pytest.mark.parametrize("size", [*SIZES, pytest.param((200, 60), id="200x60")])
def test_help(snap_compare, size):
    """Every column of ``?`` readable at each size (its "what" was cut to one letter)."""
    assert snap_compare(static_app(), terminal_size=size, run_before=before(["?"]))


def test_confirm_delete(snap_compare):
    keys = ["down"] * 5 + ["D"]
    assert snap_compare(static_app(), terminal_size=(120, 40), run_before=before(keys))


def test_enqueue_form(snap_compare):
    assert snap_compare(static_app(), terminal_size=(120, 40), run_before=before(["e"]))


@pytest.mark.parametrize("size", SIZES)
def test_edit_and_retry_form(snap_compare, size):
    """The failed job's own arguments (markup in them shown as text), priority and queue."""
    assert snap_compare(static_app(), terminal_size=size, run_before=before(TO_DETAIL + ["E"]))


def test_edit_and_retry_form_with_bad_json(snap_compare):
    keys = [*TO_DETAIL, "E", "ctrl+u", *"[1,", "enter"]
    assert snap_compare(static_app(), terminal_size=(120, 40), run_before=before(keys))


def test_scale_form(snap_compare):
    """W on a supervisor's row: its first group's workers, ready to change."""
    keys = ["3", "down", "W"]
    assert snap_compare(static_app(), terminal_size=(120, 40), run_before=before(keys))


def test_read_only_jobs(snap_compare):
    app = static_app(read_only=True)
    assert snap_compare(app, terminal_size=(120, 40), run_before=before())


def test_error_banner(snap_compare):
    source = StaticSource(fail=ConnectionError("could not connect to server: Connection refused"))
    assert snap_compare(static_app(source), terminal_size=(120, 40), run_before=before())
