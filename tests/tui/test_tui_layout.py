"""The layout follows the terminal (issue 12, item 3): columns are shared out again on
every resize, a wide terminal gives its room to the text columns, and counts are as wide
as their widest value. Pilot tests assert widths and cell text; snapshots the looks at
80×24 and 200×60 on fixed data with a long error and 6-digit counts."""

from __future__ import annotations

import pytest
from rich.text import Text
from tui_helpers import before, press, run_pilot, static_app, wait_for
from tui_wide import BUSY_WORKERS, WIDE_JOBS, WideSource

from jobtui.tui.columns import Column, fit, layout_columns
from jobtui.tui.widgets.keyed_table import KeyedTable

FAILED = WIDE_JOBS[5]


def _widths(table: KeyedTable) -> dict[str, int]:
    """The widths of the columns on screen, as the DataTable itself holds them."""
    return {key.value: column.width for key, column in table.columns.items()}


def _shown(table: KeyedTable, key: str, column: str) -> str:
    """What the table holds in a cell: the text after the table cut it to its column."""
    return table.get_cell(key, column).plain


def test_resizing_from_80_to_120_to_200_columns_widens_the_error_column():
    async def scenario(pilot):
        table = pilot.app.screen.query_one("#jobs-table", KeyedTable)
        seen = []
        for size in ((120, 40), (200, 60)):
            error = _shown(table, FAILED.id, "info")
            seen.append((_widths(table)["info"], error))
            await pilot.resize_terminal(*size)
            await press(pilot)
            await wait_for(pilot, lambda w=seen[-1][0]: _widths(table)["info"] != w,
                           f"the columns laid out for {size}")  # fmt: skip
        seen.append((_widths(table)["info"], _shown(table, FAILED.id, "info")))
        widths = [width for width, _ in seen]
        assert widths[0] < widths[1] < widths[2], seen
        assert widths[2] >= 70  # most of a 200-column terminal goes to the error
        assert all(len(error) == width for width, error in seen)  # filled, cut to fit
        assert all(error.endswith("…") for _, error in seen)
        # at 120 columns the columns of the wide layout come back
        assert {"pri", "worker"} <= set(_widths(table))
        # and back at 80 columns they give way again
        await pilot.resize_terminal(80, 24)
        await press(pilot)
        await wait_for(pilot, lambda: "worker" not in _widths(table), "the 80-column layout")
        assert _widths(table)["info"] == widths[0]

    run_pilot(static_app(WideSource()), scenario, size=(80, 24))


def test_six_digit_counts_are_never_cut():
    async def scenario(pilot):
        await press(pilot, "3")
        table = pilot.app.screen.query_one("#workers-table", KeyedTable)
        widths = _widths(table)
        for worker in BUSY_WORKERS:
            for column, count in (("done", worker.jobs_done), ("failed", worker.jobs_failed)):
                assert _shown(table, worker.name, column) == f"{count:,}"
                assert widths[column] >= len(f"{count:,}"), (column, widths)
        # and in view at 80 columns, with no sideways scrolling: other columns give way
        assert sum(widths.values()) + 2 * len(widths) <= table.size.width - 1, widths

    run_pilot(static_app(WideSource()), scenario, size=(80, 24))


def test_the_cursor_stays_on_its_job_across_a_resize():
    async def scenario(pilot):
        await press(pilot, "down", "down", "down")
        table = pilot.app.screen.query_one("#jobs-table", KeyedTable)
        key = table.current_key()
        await pilot.resize_terminal(200, 60)
        await press(pilot)
        assert table.current_key() == key

    run_pilot(static_app(WideSource()), scenario, size=(80, 24))


# ---------------------------------------------------------------------- the arithmetic


def test_fixed_columns_take_their_widest_value_and_growing_ones_share_the_rest():
    columns = (Column("n", "n", 3), Column("text", "text", 10, grow=1),
               Column("more", "more", 10, grow=3))  # fmt: skip
    rows = [(Text("119,999"), Text("a"), Text("b"))]
    layout = layout_columns(columns, 101, rows)
    assert layout.widths[0] == 7
    assert sum(layout.widths) + 2 * 3 == 101  # every cell used
    assert layout.widths[2] - 10 == 3 * (layout.widths[1] - 10)  # by weight


def test_growing_columns_stop_at_their_limit_and_shrink_to_their_floor():
    columns = (Column("a", "a", 10, grow=1, max_width=12),
               Column("b", "b", 10, grow=1, min_width=4))  # fmt: skip
    assert layout_columns(columns, 60).widths == (12, 44)  # the rest to the open column
    assert layout_columns(columns, 20).widths == (10, 6)  # b gives 4 back; a at its floor
    assert layout_columns(columns, 5).widths == (10, 4)  # never below the floor: scroll


def test_columns_hide_below_their_width_and_unknown_width_keeps_the_base():
    columns = (Column("a", "a", 5), Column("b", "b", 5, hide_below=50))
    assert layout_columns(columns, 49).indexes == (0,)
    assert layout_columns(columns, 50).indexes == (0, 1)
    assert layout_columns(columns, None).widths == (5, 5)


@pytest.mark.parametrize("clip, expected", [("right", "jobtui.de…"), ("left", "…mail.send")])
def test_fit_cuts_with_an_ellipsis_and_keeps_styles(clip, expected):
    cell = Text("jobtui.demo.email.send", style="red")
    out = fit(cell, 10, clip)
    assert out.plain == expected and out.cell_len == 10
    assert str(out.style) == "red"
    assert fit(cell, 40, clip) is cell


# ---------------------------------------------------------------------- snapshots

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((200, 60), id="200x60")]


VIEWS = {"jobs": [], "workers": ["3"]}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("view", list(VIEWS))
def test_wide_data_view(snap_compare, view, size):
    """The long error fills the error column at 200 columns; 6-digit counts are whole."""
    assert snap_compare(static_app(WideSource()), terminal_size=size,
                        run_before=before(VIEWS[view]))  # fmt: skip
